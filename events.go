package p2pnet

import (
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// hostEvents is the host's event bus, its emitters, and what they need
// to remember to emit changes.
type hostEvents struct {
	h   *Host
	bus *event.Bus

	connectedness, identified, idFailed, peerProtos, localProtos, localAddrs *event.Emitter

	notifiee *network.NotifyBundle

	mu     sync.Mutex // guards the following; held while emitting, to keep order
	conn   map[peer.ID]network.Connectedness
	protos []protocol.ID
	addrs  []ma.Multiaddr
}

// EventBus returns the host's event bus. The host emits
// EvtPeerConnectednessChanged, EvtPeerIdentificationCompleted,
// EvtPeerIdentificationFailed, EvtPeerProtocolsUpdated,
// EvtLocalProtocolsUpdated and EvtLocalAddressesUpdated (statefully: a
// new subscriber gets the current addresses at once).
func (h *Host) EventBus() *event.Bus { return h.events.bus }

// newHostEvents makes the bus and the host's emitters, and registers for
// the swarm's notifications.
func newHostEvents(h *Host) *hostEvents {
	bus := event.NewBus()
	em := func(t any, opts ...event.EmitterOpt) *event.Emitter {
		e, err := bus.Emitter(t, opts...)
		if err != nil {
			panic(err) // the types are ours: a bug
		}
		return e
	}
	e := &hostEvents{
		h:             h,
		bus:           bus,
		connectedness: em(new(event.EvtPeerConnectednessChanged)),
		identified:    em(new(event.EvtPeerIdentificationCompleted)),
		idFailed:      em(new(event.EvtPeerIdentificationFailed)),
		peerProtos:    em(new(event.EvtPeerProtocolsUpdated)),
		localProtos:   em(new(event.EvtLocalProtocolsUpdated)),
		localAddrs:    em(new(event.EvtLocalAddressesUpdated), event.Stateful()),
		conn:          map[peer.ID]network.Connectedness{},
	}
	e.notifiee = &network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { e.connectednessChanged(c.RemotePeer()) },
		DisconnectedF: func(_ network.Network, c network.Conn) { e.connectednessChanged(c.RemotePeer()) },
		ListenF:       func(network.Network, ma.Multiaddr) { e.addrsChanged() },
		ListenCloseF:  func(network.Network, ma.Multiaddr) { e.addrsChanged() },
	}
	h.swarm.Notify(e.notifiee)
	return e
}

// close stops the notifications and closes the emitters.
func (e *hostEvents) close() {
	if e == nil {
		return
	}
	e.h.swarm.StopNotify(e.notifiee)
	for _, em := range []*event.Emitter{e.connectedness, e.identified, e.idFailed, e.peerProtos, e.localProtos, e.localAddrs} {
		em.Close()
	}
}

// connectednessChanged emits our connectedness to p if it changed.
func (e *hostEvents) connectednessChanged(p peer.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.h.swarm.Connectedness(p)
	if e.conn[p] == now {
		return
	}
	if now == network.NotConnected {
		delete(e.conn, p)
	} else {
		e.conn[p] = now
	}
	e.connectedness.Emit(event.EvtPeerConnectednessChanged{Peer: p, Connectedness: now})
}

// protocolsChanged emits the protocols the host started and stopped
// serving since the last call.
func (e *hostEvents) protocolsChanged() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.h.router.Protocols()
	var added, removed []protocol.ID
	for _, p := range now {
		if !slices.Contains(e.protos, p) {
			added = append(added, p)
		}
	}
	for _, p := range e.protos {
		if !slices.Contains(now, p) {
			removed = append(removed, p)
		}
	}
	e.protos = now
	if len(added)+len(removed) > 0 {
		e.localProtos.Emit(event.EvtLocalProtocolsUpdated{Added: added, Removed: removed})
	}
}

// addrsChanged emits the host's addresses if they changed, and reports
// whether they did.
func (e *hostEvents) addrsChanged() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.h.Addrs()
	ev := event.EvtLocalAddressesUpdated{Diffs: true}
	changed := len(now) != len(e.addrs)
	for _, a := range now {
		act := event.Maintained
		if !ma.Contains(e.addrs, a) {
			act, changed = event.Added, true
		}
		ev.Current = append(ev.Current, event.UpdatedAddress{Address: a, Action: act})
	}
	for _, a := range e.addrs {
		if !ma.Contains(now, a) {
			ev.Removed = append(ev.Removed, event.UpdatedAddress{Address: a, Action: event.Removed})
		}
	}
	if !changed {
		return false
	}
	e.addrs = now
	e.localAddrs.Emit(ev)
	return true
}

// identifyEvents is how the identify service reports to the bus.
func (e *hostEvents) identifyEvents() identify.Events {
	return identify.Events{
		Identified: func(c network.Conn, r identify.Result) {
			e.identified.Emit(event.EvtPeerIdentificationCompleted{
				Peer: c.RemotePeer(), Conn: c, ListenAddrs: r.ListenAddrs, Protocols: r.Protocols,
				ProtocolVersion: r.ProtocolVersion, AgentVersion: r.AgentVersion, ObservedAddr: r.ObservedAddr,
			})
		},
		Failed: func(c network.Conn, err error) {
			e.idFailed.Emit(event.EvtPeerIdentificationFailed{Peer: c.RemotePeer(), Reason: err})
		},
		ProtocolsUpdated: func(p peer.ID, added, removed []protocol.ID) {
			e.peerProtos.Emit(event.EvtPeerProtocolsUpdated{Peer: p, Added: added, Removed: removed})
		},
	}
}
