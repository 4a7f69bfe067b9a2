// Package event is the host's typed event bus and the events p2pnet
// emits on it.
//
// A producer gets an [Emitter] for one event type from [Bus.Emitter] and
// emits values of that type; a consumer subscribes to one or more types
// with [Bus.Subscribe] and reads them from [Subscription.Out]. Event
// types are named by a nil pointer to them: new(EvtPeerIdentificationCompleted).
//
// Delivery policy: each subscription has a bounded buffer (BufSize,
// default DefaultBufSize). Emit never blocks: when a subscriber's buffer
// is full, the event is dropped for that subscriber only and counted
// ([Subscription.Dropped], [Bus.Dropped]), so a slow or stuck subscriber
// cannot stall the swarm or identify, which emit from their own
// goroutines. A subscriber sees the events of each type in the order
// they were emitted (and events of different types in the order the
// emits happened, when they did not run at the same time). The bus runs
// no goroutine; closing a subscription closes its channel.
//
// Package event may import network, peer, protocol and crypto of
// p2pnet's, go-multiaddr and the standard library.
package event
