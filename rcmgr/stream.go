package rcmgr

import (
	"fmt"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// streamScope is a stream's scope. It counts against its peer's scope,
// and against the transient scope until SetProtocol; then against its
// protocol and its peer's share of the protocol instead. SetService adds
// the service and the peer's share of the service. It always counts
// against the system scope.
type streamScope struct {
	scope
	dir  network.Direction
	peer *peerScope

	// Guarded by m.mu.
	proto     *protocolScope
	protoPeer *scope
	svc       *serviceScope
	svcPeer   *scope
}

var (
	_ network.StreamManagementScope = (*streamScope)(nil)
	_ network.StreamScope           = (*streamScope)(nil)
)

// PeerScope returns the scope of the stream's peer.
func (st *streamScope) PeerScope() network.PeerScope { return st.peer }

// ProtocolScope returns the scope of the stream's protocol, or nil before
// SetProtocol.
func (st *streamScope) ProtocolScope() network.ProtocolScope {
	st.m.mu.Lock()
	defer st.m.mu.Unlock()
	if st.proto == nil {
		return nil
	}
	return st.proto
}

// ServiceScope returns the scope of the stream's service, or nil before
// SetService.
func (st *streamScope) ServiceScope() network.ServiceScope {
	st.m.mu.Lock()
	defer st.m.mu.Unlock()
	if st.svc == nil {
		return nil
	}
	return st.svc
}

// SetProtocol moves the stream out of the transient scope into the scope
// of proto and the scope of its peer within proto. When their limits
// refuse, the stream stays where it was.
func (st *streamScope) SetProtocol(proto protocol.ID) error {
	m := st.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.done {
		return st.closedError()
	}
	if st.proto != nil {
		return fmt.Errorf("%s: %w to protocol %s", st.name(), ErrAlreadyAttached, st.proto.key)
	}
	pr := m.protocolLocked(proto)
	pp := m.peerOfLocked(&pr.scope, st.peer.peerID)
	defer func() {
		// moveLocked took the references the stream keeps.
		m.decRefLocked(pp)
		m.decRefLocked(&pr.scope)
		m.maybeSweepLocked()
	}()
	add := [2]*scope{pp, &pr.scope}
	drop := [1]*scope{m.transient}
	if err := m.moveLocked(&st.scope, add[:], drop[:]); err != nil {
		return err
	}
	st.proto, st.protoPeer = pr, pp
	st.setUpLocked()
	m.releaseUnnegotiatedLocked(st)
	return nil
}

// SetService adds the stream to the scope of service srv and the scope of
// its peer within srv. When their limits refuse, nothing changes.
func (st *streamScope) SetService(srv string) error {
	m := st.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.done {
		return st.closedError()
	}
	if st.svc != nil {
		return fmt.Errorf("%s: %w to service %s", st.name(), ErrAlreadyAttached, st.svc.key)
	}
	sv := m.serviceLocked(srv)
	sp := m.peerOfLocked(&sv.scope, st.peer.peerID)
	defer func() {
		m.decRefLocked(sp)
		m.decRefLocked(&sv.scope)
		m.maybeSweepLocked()
	}()
	add := [2]*scope{sp, &sv.scope}
	if err := m.moveLocked(&st.scope, add[:], nil); err != nil {
		return err
	}
	st.svc, st.svcPeer = sv, sp
	st.setUpLocked()
	return nil
}

// setUpLocked lists the scopes the stream counts against, narrowest
// first, which is the order in which they are checked.
func (st *streamScope) setUpLocked() {
	var ups [maxUp]*scope
	n := 0
	add := func(s *scope) { ups[n] = s; n++ }
	add(&st.peer.scope)
	if st.proto != nil {
		add(st.protoPeer)
		add(&st.proto.scope)
	}
	if st.svc != nil {
		add(st.svcPeer)
		add(&st.svc.scope)
	}
	if st.proto == nil {
		add(st.m.transient)
	}
	add(st.m.system)
	st.setUp(ups[:n]...)
}

// Done releases everything the stream and its spans hold, once.
func (st *streamScope) Done() {
	m := st.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.done {
		return
	}
	m.releaseUnnegotiatedLocked(st)
	m.unlinkOpenLocked(&st.scope)
	m.doneLocked(&st.scope)
	m.maybeSweepLocked()
}
