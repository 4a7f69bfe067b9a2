package rcmgr

import (
	"fmt"
	"net/netip"

	"github.com/p2pnet/p2pnet/network"
)

// Shares divides the transient scope, which every new connection and
// stream starts in, among those who use it, so that no address, peer or
// connection can take more than a bounded part of it and lock the others
// out.
//
// A source is a group of remote addresses that count as one: those
// sharing their first IPv4Prefix bits (IPv4) or IPv6Prefix bits (IPv6).
// The per-source caps apply to the sources the per-IP limits apply to:
// not to allowlisted addresses, nor to loopback addresses unless the
// Manager is told so (WithLoopbackExempt).
//
// A cap of 0 caps nothing.
type Shares struct {
	// IPv4Prefix and IPv6Prefix group remote addresses into sources. 0
	// means 32 (each IPv4 address is a source) and 56 (each IPv6 /56,
	// what one site usually gets, is a source).
	IPv4Prefix int
	IPv6Prefix int

	// TransientConnsPerSource caps the inbound connections from one
	// source that are in the transient scope: those whose handshake has
	// not named their peer yet.
	TransientConnsPerSource int

	// UnnegotiatedStreamsPerConn, UnnegotiatedStreamsPerPeer and
	// UnnegotiatedStreamsPerSource cap the inbound streams that have not
	// named their protocol yet (which count against the transient scope)
	// on one connection, of one peer and from one source. A stream counts
	// against its connection once the manager knows it (see AttachConn;
	// at once when the peer has a single connection), and against the
	// source of that connection.
	UnnegotiatedStreamsPerConn   int
	UnnegotiatedStreamsPerPeer   int
	UnnegotiatedStreamsPerSource int

	// UnnegotiatedStreamsBurst lifts the three caps above while the
	// transient scope holds fewer inbound streams than this: a peer may
	// open a burst of streams at once while nobody else needs the room.
	// Past it, a new stream must fit its caps. 0 means no burst.
	UnnegotiatedStreamsBurst int
}

// The default prefix lengths of a source.
const (
	defaultIPv4Prefix = 32
	defaultIPv6Prefix = 56
)

// defaultShares returns the default shares of a transient scope limited
// by t; ScaledDefaultLimits documents them.
func defaultShares(t Limit) Shares {
	perStream := max(t.StreamsInbound/16, 1)
	return Shares{
		IPv4Prefix:                   defaultIPv4Prefix,
		IPv6Prefix:                   defaultIPv6Prefix,
		TransientConnsPerSource:      max(t.ConnsInbound/8, 1),
		UnnegotiatedStreamsPerConn:   perStream,
		UnnegotiatedStreamsPerPeer:   perStream,
		UnnegotiatedStreamsPerSource: perStream,
		UnnegotiatedStreamsBurst:     t.StreamsInbound / 4,
	}
}

// shareField is a field of Shares with its JSON name.
type shareField struct {
	name string
	get  func(*Shares) *int
	bits int // for a prefix length, the longest; 0 for a cap
}

// shareFields lists the fields of Shares in declaration order.
var shareFields = []shareField{
	{"IPv4Prefix", func(s *Shares) *int { return &s.IPv4Prefix }, 32},
	{"IPv6Prefix", func(s *Shares) *int { return &s.IPv6Prefix }, 128},
	{"TransientConnsPerSource", func(s *Shares) *int { return &s.TransientConnsPerSource }, 0},
	{"UnnegotiatedStreamsPerConn", func(s *Shares) *int { return &s.UnnegotiatedStreamsPerConn }, 0},
	{"UnnegotiatedStreamsPerPeer", func(s *Shares) *int { return &s.UnnegotiatedStreamsPerPeer }, 0},
	{"UnnegotiatedStreamsPerSource", func(s *Shares) *int { return &s.UnnegotiatedStreamsPerSource }, 0},
	{"UnnegotiatedStreamsBurst", func(s *Shares) *int { return &s.UnnegotiatedStreamsBurst }, 0},
}

// validate reports a negative field or a prefix length out of range.
func (s Shares) validate() error {
	for _, f := range shareFields {
		v := *f.get(&s)
		if v < 0 {
			return fmt.Errorf("%w: Shares.%s is negative (%d)", ErrInvalidLimits, f.name, v)
		}
		if f.bits > 0 && v > f.bits {
			return fmt.Errorf("%w: Shares.%s is %d, want 0 to %d", ErrInvalidLimits, f.name, v, f.bits)
		}
	}
	return nil
}

// The origins of the refusals of the shares, as LimitError.Origin and the
// refusal counts name them.
const (
	originTransientConnsPerSource      = "Shares.TransientConnsPerSource"
	originUnnegotiatedStreamsPerConn   = "Shares.UnnegotiatedStreamsPerConn"
	originUnnegotiatedStreamsPerPeer   = "Shares.UnnegotiatedStreamsPerPeer"
	originUnnegotiatedStreamsPerSource = "Shares.UnnegotiatedStreamsPerSource"
)

// sourceUse is what one source holds of the shares.
type sourceUse struct {
	transientConns int // inbound connections in the transient scope
	unnegotiated   int // inbound streams that have not named a protocol
}

// The bits of scope.shares, which say what a stream counts against as
// unnegotiated.
const (
	// shareUnnegotiated: the stream is inbound and has not named its
	// protocol; it counts against its peer's cap.
	shareUnnegotiated uint8 = 1 << iota
	// shareOnConn: it counts against the cap of its connection, from.
	shareOnConn
	// shareSource: it counts against the cap of from's source.
	shareSource
)

// sourceOf returns the source of ip.
func (m *Manager) sourceOf(ip netip.Addr) netip.Prefix {
	bits := m.limits.Shares.IPv6Prefix
	if ip.Is4() {
		bits = m.limits.Shares.IPv4Prefix
		if bits == 0 {
			bits = defaultIPv4Prefix
		}
	} else if bits == 0 {
		bits = defaultIPv6Prefix
	}
	p, _ := ip.Prefix(bits)
	return p
}

// sourceOfLocked returns the source the requests of s come from: that of
// the connection of the conn or stream s is (or is a span of), or the
// zero Prefix when it has none.
func sourceOfLocked(s *scope) netip.Prefix {
	if c := s.base().from; c != nil {
		return c.source()
	}
	return netip.Prefix{}
}

// addSourceLocked adds d to what source src holds.
func (m *Manager) addSourceLocked(src netip.Prefix, d sourceUse) {
	u := m.sources[src]
	u.transientConns += d.transientConns
	u.unnegotiated += d.unnegotiated
	if u == (sourceUse{}) {
		delete(m.sources, src)
	} else {
		m.sources[src] = u
	}
}

// shareRefusal builds the refusal of one more of r by a share.
func shareRefusal(scope string, kind ScopeKind, r Resource, used, limit int, origin string) *LimitError {
	return &LimitError{
		Scope:     scope,
		Kind:      kind,
		Resource:  r,
		Requested: 1,
		Used:      int64(used),
		Limit:     int64(limit),
		Allowed:   int64(limit),
		Origin:    origin,
	}
}

// transientConnRefusalLocked returns the refusal of one more inbound
// transient connection from src, or nil.
func (m *Manager) transientConnRefusalLocked(src netip.Prefix) *LimitError {
	limit := m.limits.Shares.TransientConnsPerSource
	if used := m.sources[src].transientConns; limit > 0 && used >= limit {
		return shareRefusal("ip "+src.String(), KindIP, ResourceConnsInbound, used, limit, originTransientConnsPerSource)
	}
	return nil
}

// releaseTransientConnLocked gives back the transient connection slot c
// holds, if any.
func (m *Manager) releaseTransientConnLocked(c *connScope) {
	if c.transientSlot {
		c.transientSlot = false
		m.addSourceLocked(c.source(), sourceUse{transientConns: -1})
	}
}

// streamConnLocked returns the connection an inbound stream of ps arrives
// on when the manager can tell (ps has a single connection), and the
// connection whose source the stream counts against (the first of ps's
// connections that counts towards the shares, else the first).
func (ps *peerScope) streamConnLocked() (on, from *connScope) {
	switch len(ps.conns) {
	case 0:
		return nil, nil
	case 1:
		return ps.conns[0], ps.conns[0]
	}
	for _, c := range ps.conns {
		if c.shared {
			return nil, c
		}
	}
	return nil, ps.conns[0]
}

// burstLocked reports whether the transient scope, holding others inbound
// streams besides the one asking, is within the burst that lifts the caps
// on unnegotiated streams.
func (m *Manager) burstLocked(others int) bool {
	return others < m.limits.Shares.UnnegotiatedStreamsBurst
}

// connCapRefusalLocked returns the refusal of one more unnegotiated
// inbound stream on c by c's cap, or nil.
func (m *Manager) connCapRefusalLocked(c *connScope) *LimitError {
	if limit := m.limits.Shares.UnnegotiatedStreamsPerConn; limit > 0 && c.unnegotiated >= limit {
		return shareRefusal(c.name(), KindConn, ResourceStreamsInbound, c.unnegotiated, limit, originUnnegotiatedStreamsPerConn)
	}
	return nil
}

// sourceCapRefusalLocked returns the refusal of one more unnegotiated
// inbound stream from the source of c by the source's cap, or nil.
func (m *Manager) sourceCapRefusalLocked(c *connScope) *LimitError {
	if !c.shared {
		return nil
	}
	limit := m.limits.Shares.UnnegotiatedStreamsPerSource
	if used := m.sources[c.source()].unnegotiated; limit > 0 && used >= limit {
		return shareRefusal("ip "+c.source().String(), KindIP, ResourceStreamsInbound, used, limit, originUnnegotiatedStreamsPerSource)
	}
	return nil
}

// unnegotiatedRefusalLocked returns the refusal of one more unnegotiated
// inbound stream of ps on connection on (nil when unknown) counting
// against the source of from (nil when none), or nil. It checks the
// narrowest cap first.
func (m *Manager) unnegotiatedRefusalLocked(ps *peerScope, on, from *connScope) *LimitError {
	if on != nil {
		if err := m.connCapRefusalLocked(on); err != nil {
			return err
		}
	}
	if limit := m.limits.Shares.UnnegotiatedStreamsPerPeer; limit > 0 && ps.unnegotiated >= limit {
		return shareRefusal(ps.name(), KindPeer, ResourceStreamsInbound, ps.unnegotiated, limit, originUnnegotiatedStreamsPerPeer)
	}
	if from != nil {
		return m.sourceCapRefusalLocked(from)
	}
	return nil
}

// addUnnegotiatedLocked counts st, an inbound stream, as unnegotiated
// against its peer, against from's cap when it arrived on from (onConn),
// and against from's source.
func (m *Manager) addUnnegotiatedLocked(st *streamScope, from *connScope, onConn bool) {
	st.shares = shareUnnegotiated
	st.peer.unnegotiated++
	st.from = from
	if from == nil {
		return
	}
	if onConn {
		st.shares |= shareOnConn
		from.unnegotiated++
	}
	if from.shared {
		st.shares |= shareSource
		m.addSourceLocked(from.source(), sourceUse{unnegotiated: 1})
	}
}

// releaseUnnegotiatedLocked stops counting st as unnegotiated.
func (m *Manager) releaseUnnegotiatedLocked(st *streamScope) {
	if st.shares&shareUnnegotiated == 0 {
		return
	}
	st.peer.unnegotiated--
	if st.shares&shareOnConn != 0 {
		st.from.unnegotiated--
	}
	if st.shares&shareSource != 0 {
		m.addSourceLocked(st.from.source(), sourceUse{unnegotiated: -1})
	}
	st.shares = 0
}

// AttachConn tells the manager of s that the inbound stream s arrived on
// the connection c, so that the connection's cap on unnegotiated streams
// (Shares.UnnegotiatedStreamsPerConn) and the cap of the connection's
// source apply to s while it has not named its protocol. The manager
// knows this by itself when the peer has a single connection; a host
// calls AttachConn on every inbound stream before negotiating its
// protocol, and resets the stream when AttachConn refuses it with an
// error wrapping network.ErrResourceLimitExceeded.
//
// AttachConn does nothing when s or c is not a scope of a Manager, when
// they belong to different Managers or peers, or when s has named its
// protocol or is done.
func AttachConn(s network.StreamScope, c network.ConnScope) error {
	st, ok := s.(*streamScope)
	if !ok {
		return nil
	}
	cs, ok := c.(*connScope)
	if !ok || cs.m != st.m {
		return nil
	}
	return st.m.attachConn(st, cs)
}

// AttachConn is the package's AttachConn as a method, for users that
// see the Manager only through an interface: the swarm calls it on every
// inbound stream when its resource manager has it.
func (m *Manager) AttachConn(s network.StreamScope, c network.ConnScope) error {
	return AttachConn(s, c)
}

// attachConn counts the unnegotiated stream st against connection c and
// its source instead of what it counted against so far.
func (m *Manager) attachConn(st *streamScope, c *connScope) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st.done || st.shares&shareUnnegotiated == 0 || c.peer != st.peer {
		return nil
	}
	if st.from == c && st.shares&shareOnConn != 0 {
		return nil
	}
	if !m.burstLocked(m.transient.use.NumStreamsInbound - 1) {
		err := m.connCapRefusalLocked(c)
		if err == nil && (st.from == nil || st.from.source() != c.source() || st.shares&shareSource == 0) {
			err = m.sourceCapRefusalLocked(c)
		}
		if err != nil {
			m.refuseLocked(err, c.source())
			return err
		}
	}
	m.releaseUnnegotiatedLocked(st)
	m.addUnnegotiatedLocked(st, c, true)
	return nil
}
