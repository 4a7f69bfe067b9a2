package rcmgr

import (
	"fmt"
	"strconv"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// ScopeKind says what a scope accounts for.
type ScopeKind uint8

// The kinds of scope. KindIP is not a scope but the per-IP connection
// limit, which refuses like one.
const (
	KindSystem ScopeKind = iota
	KindTransient
	KindAllowlistedSystem
	KindAllowlistedTransient
	KindService
	KindServicePeer
	KindProtocol
	KindProtocolPeer
	KindPeer
	KindConn
	KindStream
	KindSpan
	KindIP

	numKinds = iota
)

var kindNames = [numKinds]string{
	KindSystem:               "system",
	KindTransient:            "transient",
	KindAllowlistedSystem:    "allowlisted_system",
	KindAllowlistedTransient: "allowlisted_transient",
	KindService:              "service",
	KindServicePeer:          "service_peer",
	KindProtocol:             "protocol",
	KindProtocolPeer:         "protocol_peer",
	KindPeer:                 "peer",
	KindConn:                 "conn",
	KindStream:               "stream",
	KindSpan:                 "span",
	KindIP:                   "ip",
}

// String returns the kind in snake case, as metrics label it:
// "system", "protocol_peer", …
func (k ScopeKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "ScopeKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText writes the kind as String does.
func (k ScopeKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText writes the resource as FieldName does.
func (r Resource) MarshalText() ([]byte, error) { return []byte(r.FieldName()), nil }

// collectable reports whether scopes of kind k are created on demand and
// removed once unused.
func collectable(k ScopeKind) bool {
	switch k {
	case KindService, KindServicePeer, KindProtocol, KindProtocolPeer, KindPeer:
		return true
	}
	return false
}

// maxUp is the most scopes a scope counts against besides itself: a
// stream with a protocol and a service counts against its peer, protocol
// peer, protocol, service peer, service and the system.
const maxUp = 6

// scope is the accounting of one node of the DAG. Every kind of scope is
// a scope; the exported behaviours (PeerScope, ConnManagementScope, …)
// come from small types that embed it.
//
// A scope counts against itself and, for DAG scopes, the scopes in up,
// which is the complete list of its ancestors (a stream lists its peer,
// its protocol and the system, not just its peer). A span counts against
// itself and everything its owner counts against.
//
// The small fields are kept together so that the struct packs without
// padding: every connection holds three scopes (its own, its peer's and
// a span of its muxer).
type scope struct {
	m    *Manager
	kind ScopeKind
	// override says the limit came from one of the override maps of
	// Limits.
	override bool

	// Guarded by m.mu.
	done   bool
	queued bool // in m.idle
	nup    uint8
	shares uint8 // streams: what the stream counts against as unnegotiated (shareUnnegotiated, …)

	// The identity, fixed at creation; which fields are set depends on
	// kind.
	id     uint64  // conns, streams and spans
	peerID peer.ID // peers, and peers of protocols and services
	key    string  // protocols and services (and their peers): the protocol ID or service name
	// limit is the scope's limit (nil for spans, which have none).
	limit *Limit
	owner *scope // spans: the scope the span was begun on

	// The rest is guarded by m.mu.
	// from is the connection whose remote address the requests of a conn
	// (itself) or stream come from, when known: its source (see Shares)
	// is where refusals come from.
	from  *connScope
	refs  int // holders: scopes listing this one in up, spans, views
	use   network.ScopeStat
	up    [maxUp]*scope
	spans *scope // first open span begun on this scope
	// prev and next link a span into its owner's list of spans, and a
	// conn or stream into the manager's list of live ones.
	prev, next *scope
	children   map[peer.ID]*scope // services and protocols: per-peer scopes
	parent     *scope             // service and protocol peers: the service or protocol
}

// base returns the conn, stream or DAG scope whose reservations s's
// count as: s itself, or for a span the scope it was begun on, or that
// scope's.
func (s *scope) base() *scope {
	for s.owner != nil {
		s = s.owner
	}
	return s
}

// ups returns the scopes s counts against besides itself.
func (s *scope) ups() []*scope { return s.up[:s.nup] }

// setUp replaces the scopes s counts against, without touching refs.
func (s *scope) setUp(ups ...*scope) {
	copy(s.up[:], ups)
	for i := len(ups); i < int(s.nup); i++ {
		s.up[i] = nil
	}
	s.nup = uint8(len(ups))
}

// appendChain appends s and every scope a reservation in s also reserves
// in: the owners of a span up to the first DAG scope, then that scope's
// ancestors.
func (s *scope) appendChain(buf []*scope) []*scope {
	x := s
	for {
		buf = append(buf, x)
		if x.owner == nil {
			break
		}
		x = x.owner
	}
	return append(buf, x.ups()...)
}

// name returns the scope as error messages and snapshots name it.
func (s *scope) name() string {
	switch s.kind {
	case KindSystem:
		return "system"
	case KindTransient:
		return "transient"
	case KindAllowlistedSystem:
		return "allowlisted system"
	case KindAllowlistedTransient:
		return "allowlisted transient"
	case KindService:
		return "service " + s.key
	case KindServicePeer:
		return "service " + s.key + " / peer " + s.peerID.String()
	case KindProtocol:
		return "protocol " + s.key
	case KindProtocolPeer:
		return "protocol " + s.key + " / peer " + s.peerID.String()
	case KindPeer:
		return "peer " + s.peerID.String()
	case KindConn:
		return "conn " + strconv.FormatUint(s.id, 10)
	case KindStream:
		return "stream " + strconv.FormatUint(s.id, 10)
	case KindSpan:
		return "span " + strconv.FormatUint(s.id, 10) + " of " + s.owner.name()
	}
	return s.kind.String()
}

// origin names the field of Limits that s's limit came from.
func (s *scope) origin() string {
	switch s.kind {
	case KindSystem:
		return "System"
	case KindTransient:
		return "Transient"
	case KindAllowlistedSystem:
		return "AllowlistedSystem"
	case KindAllowlistedTransient:
		return "AllowlistedTransient"
	case KindService:
		if s.override {
			return "Service[" + strconv.Quote(s.key) + "]"
		}
		return "ServiceDefault"
	case KindServicePeer:
		if s.override {
			return "ServicePeer[" + strconv.Quote(s.key) + "]"
		}
		return "ServicePeerDefault"
	case KindProtocol:
		if s.override {
			return "Protocol[" + strconv.Quote(s.key) + "]"
		}
		return "ProtocolDefault"
	case KindProtocolPeer:
		if s.override {
			return "ProtocolPeer[" + strconv.Quote(s.key) + "]"
		}
		return "ProtocolPeerDefault"
	case KindPeer:
		if s.override {
			return "Peer[" + strconv.Quote(s.peerID.String()) + "]"
		}
		return "PeerDefault"
	case KindConn:
		return "Conn"
	case KindStream:
		return "Stream"
	}
	return ""
}

// closedError is the error of using s after it is done.
func (s *scope) closedError() error {
	return fmt.Errorf("%s: %w", s.name(), network.ErrResourceScopeClosed)
}

// checkLocked reports whether s can take d more at priority prio (which
// applies to memory only). It checks the resources in their order.
func (s *scope) checkLocked(d *delta, prio uint8) *LimitError {
	l := s.limit
	if l == nil {
		return nil // spans have no limits of their own
	}
	u := &s.use
	if d.Memory != 0 {
		allowed := memoryThreshold(l.Memory, prio)
		// allowed and the use are never negative, so this cannot overflow.
		if d.Memory > allowed-u.Memory {
			return s.refusal(ResourceMemory, d.Memory, u.Memory, l.Memory, allowed, prio)
		}
	}
	if d.NumStreamsInbound != 0 || d.NumStreamsOutbound != 0 {
		if err := s.checkCount(ResourceStreamsInbound, d.NumStreamsInbound, u.NumStreamsInbound, l.StreamsInbound); err != nil {
			return err
		}
		if err := s.checkCount(ResourceStreamsOutbound, d.NumStreamsOutbound, u.NumStreamsOutbound, l.StreamsOutbound); err != nil {
			return err
		}
		if err := s.checkCount(ResourceStreams, d.NumStreamsInbound+d.NumStreamsOutbound, u.NumStreamsInbound+u.NumStreamsOutbound, l.Streams); err != nil {
			return err
		}
	}
	if d.NumConnsInbound != 0 || d.NumConnsOutbound != 0 || d.NumFD != 0 {
		if err := s.checkCount(ResourceConnsInbound, d.NumConnsInbound, u.NumConnsInbound, l.ConnsInbound); err != nil {
			return err
		}
		if err := s.checkCount(ResourceConnsOutbound, d.NumConnsOutbound, u.NumConnsOutbound, l.ConnsOutbound); err != nil {
			return err
		}
		if err := s.checkCount(ResourceConns, d.NumConnsInbound+d.NumConnsOutbound, u.NumConnsInbound+u.NumConnsOutbound, l.Conns); err != nil {
			return err
		}
		if err := s.checkCount(ResourceFD, d.NumFD, u.NumFD, l.FD); err != nil {
			return err
		}
	}
	return nil
}

// checkCount checks a request for req more of a counted resource r.
func (s *scope) checkCount(r Resource, req, used, limit int) *LimitError {
	// limit and used are never negative, so this cannot overflow.
	if req == 0 || req <= limit-used {
		return nil
	}
	return s.refusal(r, int64(req), int64(used), int64(limit), int64(limit), 0)
}

// refusal builds the error of a refused request.
func (s *scope) refusal(r Resource, req, used, limit, allowed int64, prio uint8) *LimitError {
	return &LimitError{
		Scope:     s.name(),
		Kind:      s.kind,
		Resource:  r,
		Requested: req,
		Used:      used,
		Limit:     limit,
		Priority:  prio,
		Allowed:   allowed,
		Origin:    s.origin(),
	}
}

// addUse adds d to u.
func addUse(u, d *network.ScopeStat) {
	u.Memory += d.Memory
	u.NumStreamsInbound += d.NumStreamsInbound
	u.NumStreamsOutbound += d.NumStreamsOutbound
	u.NumConnsInbound += d.NumConnsInbound
	u.NumConnsOutbound += d.NumConnsOutbound
	u.NumFD += d.NumFD
}

// subUse takes d from u.
func subUse(u, d *network.ScopeStat) {
	u.Memory -= d.Memory
	u.NumStreamsInbound -= d.NumStreamsInbound
	u.NumStreamsOutbound -= d.NumStreamsOutbound
	u.NumConnsInbound -= d.NumConnsInbound
	u.NumConnsOutbound -= d.NumConnsOutbound
	u.NumFD -= d.NumFD
}

// ReserveMemory reserves size bytes in the scope and every scope above
// it, or in none.
func (s *scope) ReserveMemory(size int, prio uint8) error {
	if size < 0 {
		return fmt.Errorf("%s: %w of %d bytes", s.name(), ErrNegativeMemory, size)
	}
	d := delta{Memory: int64(size)}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reserveLocked(s, &d, prio)
}

// ReleaseMemory releases size bytes. A scope never releases more than it
// holds: the excess, and any release after Done, is ignored.
func (s *scope) ReleaseMemory(size int) {
	if size <= 0 {
		return
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.done {
		return
	}
	d := delta{Memory: min(int64(size), s.use.Memory)}
	var buf [16]*scope
	for _, x := range s.appendChain(buf[:0]) {
		subUse(&x.use, &d)
	}
	// A peer, protocol or service scope kept after its View returned may
	// have just become empty.
	m.queueIfIdleLocked(s)
}

// Stat returns what the scope holds, including what the scopes below it
// hold.
func (s *scope) Stat() network.ScopeStat {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.use
}

// BeginSpan begins a span below the scope.
func (s *scope) BeginSpan() (network.ResourceScopeSpan, error) {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.done {
		return nil, s.closedError()
	}
	m.nextID++
	sp := &spanScope{scope: scope{m: m, kind: KindSpan, id: m.nextID, owner: s}}
	sp.next = s.spans
	if s.spans != nil {
		s.spans.prev = &sp.scope
	}
	s.spans = &sp.scope
	s.refs++
	m.count[KindSpan]++
	return sp, nil
}

// spanScope is a span: a scope whose reservations end with it.
type spanScope struct {
	scope
}

var _ network.ResourceScopeSpan = (*spanScope)(nil)

// Done releases everything the span and the spans below it hold, once.
func (s *spanScope) Done() {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doneLocked(&s.scope)
	m.maybeSweepLocked()
}

// peerScope is a peer's scope.
type peerScope struct {
	scope

	// Guarded by m.mu.
	conns        []*connScope // its open connections, in the order SetPeer named them
	unnegotiated int          // its inbound streams that have not named a protocol
}

var _ network.PeerScope = (*peerScope)(nil)

// Peer returns the peer.
func (s *peerScope) Peer() peer.ID { return s.peerID }

// protocolScope is a protocol's scope.
type protocolScope struct {
	scope
}

var _ network.ProtocolScope = (*protocolScope)(nil)

// Protocol returns the protocol.
func (s *protocolScope) Protocol() protocol.ID { return protocol.ID(s.key) }

// serviceScope is a service's scope.
type serviceScope struct {
	scope
}

var _ network.ServiceScope = (*serviceScope)(nil)

// Name returns the service's name.
func (s *serviceScope) Name() string { return s.key }
