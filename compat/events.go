package compat

import (
	"fmt"
	"reflect"
	"sync"

	levent "github.com/libp2p/go-libp2p/core/event"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
)

// busBuffer is the buffer of the p2pnet subscription behind each
// go-libp2p subscription. p2pnet's bus drops events for a full buffer
// where go-libp2p's blocks the emitter; go-libp2p's libraries ask for
// large buffers (kad-dht: 256), which this matches.
const busBuffer = 256

// eventPair is an event type of p2pnet's and go-libp2p's counterpart.
type eventPair struct {
	ours, theirs reflect.Type
}

func pairOf[O, T any]() eventPair {
	return eventPair{reflect.TypeFor[O](), reflect.TypeFor[T]()}
}

// eventPairs are the events the host emits, in both vocabularies.
var eventPairs = []eventPair{
	pairOf[event.EvtPeerConnectednessChanged, levent.EvtPeerConnectednessChanged](),
	pairOf[event.EvtPeerIdentificationCompleted, levent.EvtPeerIdentificationCompleted](),
	pairOf[event.EvtPeerIdentificationFailed, levent.EvtPeerIdentificationFailed](),
	pairOf[event.EvtPeerProtocolsUpdated, levent.EvtPeerProtocolsUpdated](),
	pairOf[event.EvtLocalProtocolsUpdated, levent.EvtLocalProtocolsUpdated](),
	pairOf[event.EvtLocalAddressesUpdated, levent.EvtLocalAddressesUpdated](),
	pairOf[event.EvtLocalReachabilityChanged, levent.EvtLocalReachabilityChanged](),
	pairOf[event.EvtNATDeviceTypeChanged, levent.EvtNATDeviceTypeChanged](),
}

func ourType(theirs reflect.Type) (reflect.Type, bool) {
	for _, p := range eventPairs {
		if p.theirs == theirs {
			return p.ours, true
		}
	}
	return nil, false
}

// Libp2pEvent converts one of the host's events (a value, as p2pnet's
// bus delivers it) to go-libp2p's event of the same name. Connections in
// events become go-libp2p connections backed by the p2pnet ones. Values
// of other types are returned unchanged with ok false. SignedPeerRecord
// fields stay nil: p2pnet's events do not carry the record.
func Libp2pEvent(ev any) (_ any, ok bool) {
	switch e := ev.(type) {
	case event.EvtPeerConnectednessChanged:
		return levent.EvtPeerConnectednessChanged{Peer: lpeer.ID(e.Peer), Connectedness: lnetwork.Connectedness(e.Connectedness)}, true
	case event.EvtPeerIdentificationCompleted:
		return levent.EvtPeerIdentificationCompleted{
			Peer: lpeer.ID(e.Peer), Conn: Libp2pConn(e.Conn), ListenAddrs: e.ListenAddrs,
			Protocols: Libp2pProtocolIDs(e.Protocols), AgentVersion: e.AgentVersion,
			ProtocolVersion: e.ProtocolVersion, ObservedAddr: e.ObservedAddr,
		}, true
	case event.EvtPeerIdentificationFailed:
		return levent.EvtPeerIdentificationFailed{Peer: lpeer.ID(e.Peer), Reason: Libp2pError(e.Reason)}, true
	case event.EvtPeerProtocolsUpdated:
		return levent.EvtPeerProtocolsUpdated{Peer: lpeer.ID(e.Peer), Added: Libp2pProtocolIDs(e.Added), Removed: Libp2pProtocolIDs(e.Removed)}, true
	case event.EvtLocalProtocolsUpdated:
		return levent.EvtLocalProtocolsUpdated{Added: Libp2pProtocolIDs(e.Added), Removed: Libp2pProtocolIDs(e.Removed)}, true
	case event.EvtLocalAddressesUpdated:
		conv := func(us []event.UpdatedAddress) []levent.UpdatedAddress {
			if us == nil {
				return nil
			}
			out := make([]levent.UpdatedAddress, len(us))
			for i, u := range us {
				out[i] = levent.UpdatedAddress{Address: u.Address, Action: levent.AddrAction(u.Action)}
			}
			return out
		}
		return levent.EvtLocalAddressesUpdated{Diffs: e.Diffs, Current: conv(e.Current), Removed: conv(e.Removed)}, true
	case event.EvtLocalReachabilityChanged:
		return levent.EvtLocalReachabilityChanged{Reachability: lnetwork.Reachability(e.Reachability)}, true
	case event.EvtNATDeviceTypeChanged:
		return levent.EvtNATDeviceTypeChanged{
			TransportProtocol: lnetwork.NATTransportProtocol(e.TransportProtocol),
			NatDeviceType:     lnetwork.NATDeviceType(e.NatDeviceType),
		}, true
	}
	return ev, false
}

// P2PNetEvent is Libp2pEvent the other way. A connection in an event
// converts only if it is backed by a p2pnet connection (else it is nil).
func P2PNetEvent(ev any) (_ any, ok bool) {
	switch e := ev.(type) {
	case levent.EvtPeerConnectednessChanged:
		return event.EvtPeerConnectednessChanged{Peer: peer.ID(e.Peer), Connectedness: network.Connectedness(e.Connectedness)}, true
	case levent.EvtPeerIdentificationCompleted:
		c, _ := P2PNetConn(e.Conn)
		return event.EvtPeerIdentificationCompleted{
			Peer: peer.ID(e.Peer), Conn: c, ListenAddrs: e.ListenAddrs,
			Protocols: P2PNetProtocolIDs(e.Protocols), AgentVersion: e.AgentVersion,
			ProtocolVersion: e.ProtocolVersion, ObservedAddr: e.ObservedAddr,
		}, true
	case levent.EvtPeerIdentificationFailed:
		return event.EvtPeerIdentificationFailed{Peer: peer.ID(e.Peer), Reason: P2PNetError(e.Reason)}, true
	case levent.EvtPeerProtocolsUpdated:
		return event.EvtPeerProtocolsUpdated{Peer: peer.ID(e.Peer), Added: P2PNetProtocolIDs(e.Added), Removed: P2PNetProtocolIDs(e.Removed)}, true
	case levent.EvtLocalProtocolsUpdated:
		return event.EvtLocalProtocolsUpdated{Added: P2PNetProtocolIDs(e.Added), Removed: P2PNetProtocolIDs(e.Removed)}, true
	case levent.EvtLocalAddressesUpdated:
		conv := func(us []levent.UpdatedAddress) []event.UpdatedAddress {
			if us == nil {
				return nil
			}
			out := make([]event.UpdatedAddress, len(us))
			for i, u := range us {
				out[i] = event.UpdatedAddress{Address: u.Address, Action: event.AddrAction(u.Action)}
			}
			return out
		}
		return event.EvtLocalAddressesUpdated{Diffs: e.Diffs, Current: conv(e.Current), Removed: conv(e.Removed)}, true
	case levent.EvtLocalReachabilityChanged:
		return event.EvtLocalReachabilityChanged{Reachability: network.Reachability(e.Reachability)}, true
	case levent.EvtNATDeviceTypeChanged:
		return event.EvtNATDeviceTypeChanged{
			TransportProtocol: network.NATTransportProtocol(e.TransportProtocol),
			NatDeviceType:     network.NATDeviceType(e.NatDeviceType),
		}, true
	}
	return ev, false
}

// bus is the host's event bus seen as go-libp2p's event.Bus.
type bus struct{ b *event.Bus }

var _ levent.Bus = bus{}

// Subscribe subscribes to go-libp2p event types (a nil pointer to one,
// or a []any of them). The host's events arrive converted to go-libp2p's
// types; other types pass through p2pnet's bus unchanged, so a
// library's own events reach its own subscribers. go-libp2p's
// subscription options (eventbus.BufSize, eventbus.Name) configure
// go-libp2p's own bus and cannot be read here: they are ignored, and
// every subscription buffers busBuffer events. The wildcard subscription
// is not supported (an error matching errors.ErrUnsupported).
func (b bus) Subscribe(eventType any, _ ...levent.SubscriptionOpt) (levent.Subscription, error) {
	if eventType == levent.WildcardSubscription {
		return nil, fmt.Errorf("compat: wildcard event subscription: %w", ErrUnsupported)
	}
	list, ok := eventType.([]any)
	if !ok {
		list = []any{eventType}
	}
	ours := make([]any, len(list))
	for i, et := range list {
		t := reflect.TypeOf(et)
		if t == nil || t.Kind() != reflect.Pointer {
			return nil, fmt.Errorf("compat: event type %T: need a pointer to the event type", et)
		}
		ours[i] = et
		if o, ok := ourType(t.Elem()); ok {
			ours[i] = reflect.New(o).Interface()
		}
	}
	s, err := b.b.Subscribe(ours, event.BufSize(busBuffer))
	if err != nil {
		return nil, fmt.Errorf("compat: %w", err)
	}
	sub := &subscription{in: s, out: make(chan any), done: make(chan struct{})}
	sub.wg.Go(sub.run)
	return sub, nil
}

// Emitter returns an emitter for an event type the host does not emit
// itself (a library's own type), on p2pnet's bus. go-libp2p's
// eventbus.Stateful option is honoured. The host's own event types are
// refused (an error matching errors.ErrUnsupported): p2pnet emits them.
func (b bus) Emitter(eventType any, opts ...levent.EmitterOpt) (levent.Emitter, error) {
	t := reflect.TypeOf(eventType)
	if t != nil && t.Kind() == reflect.Pointer {
		if _, ok := ourType(t.Elem()); ok {
			return nil, fmt.Errorf("compat: emitter of %v: the p2pnet host emits it itself: %w", t.Elem(), ErrUnsupported)
		}
	}
	var ourOpts []event.EmitterOpt
	stateful := reflect.ValueOf(eventbus.Stateful).Pointer()
	for _, o := range opts {
		if reflect.ValueOf(o).Pointer() == stateful {
			ourOpts = append(ourOpts, event.Stateful())
		}
	}
	e, err := b.b.Emitter(eventType, ourOpts...)
	if err != nil {
		return nil, fmt.Errorf("compat: %w", err)
	}
	return e, nil
}

// GetAllEventTypes returns the go-libp2p types of the events the host
// emits.
func (b bus) GetAllEventTypes() []reflect.Type {
	out := make([]reflect.Type, len(eventPairs))
	for i, p := range eventPairs {
		out[i] = p.theirs
	}
	return out
}

// subscription converts a p2pnet subscription's events. Like go-libp2p's
// bus, it hands events over one at a time on an unbuffered channel; the
// p2pnet subscription behind it buffers.
type subscription struct {
	in   *event.Subscription
	out  chan any
	done chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once
}

func (s *subscription) run() {
	defer close(s.out)
	for ev := range s.in.Out() {
		ev, _ = Libp2pEvent(ev)
		select {
		case s.out <- ev:
		case <-s.done:
			return
		}
	}
}

func (s *subscription) Out() <-chan any { return s.out }
func (s *subscription) Name() string    { return s.in.Name() }

// Close ends the subscription; Out's channel closes.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.in.Close()
		s.wg.Wait()
	})
	return nil
}
