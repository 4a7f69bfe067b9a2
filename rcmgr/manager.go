package rcmgr

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// idleSweep is how many unused scopes may wait for removal before the
// manager removes them all; GC removes them at once.
const idleSweep = 64

// idleDelay is the longest an unused scope waits for removal when fewer
// than idleSweep wait: a host with few connections would otherwise keep
// the per-peer and per-protocol scopes of its finished streams for good.
// Streams opened within it reuse the scopes, so bursts still cost no
// scope churn.
const idleDelay = 100 * time.Millisecond

// Manager is the resource manager: a network.ResourceManager that
// accounts for memory, streams, connections and file descriptors in a
// DAG of scopes and refuses what would exceed a Limit.
//
// One mutex guards all the accounting. Every reservation reaches the
// system scope, so per-scope locks would all meet there anyway; one lock
// makes each reservation, move and release atomic (it happens in every
// scope it concerns, or in none) and costs one lock instead of six.
type Manager struct {
	limits         Limits
	allowlist      allowlist
	exemptLoopback bool

	mu        sync.Mutex // guards the following and the mutable fields of every scope
	closed    bool
	system    *scope
	transient *scope
	// The allowlisted scopes stand in for system and transient for
	// connections from allowlisted addresses.
	allowSystem    *scope
	allowTransient *scope
	peers          map[peer.ID]*peerScope
	protocols      map[protocol.ID]*protocolScope // nil when empty
	services       map[string]*serviceScope       // nil when empty
	open           *scope                         // first open conn or stream; linked by prev/next
	idle           []*scope                       // scopes that became unused, removed by the next sweep
	sweepTimer     *time.Timer                    // sweeps idleDelay after a scope is queued; nil while none waits
	sweepArmed     bool                           // sweepTimer is running
	nextID         uint64                         // the last id given to a conn, stream or span
	count          [numKinds]int                  // live scopes by kind
	refused        [numKinds][numResources]uint64 // refusals by kind of scope and resource
	refusedBy      map[refusalKey]uint64          // refusals by limit, kind of scope and resource
	perIP          ipLimiter
	sources        map[netip.Prefix]sourceUse // what each source holds of the Shares
	log            refusalLog
}

var _ network.ResourceManager = (*Manager)(nil)

// Option configures a Manager.
type Option func(*config) error

// config is what the options set.
type config struct {
	allow          allowlist
	ipv4, ipv6     []SubnetLimit
	exemptLoopback bool
	logger         *slog.Logger
	logInterval    time.Duration
}

// WithAllowlist lets connections from the given addresses use the
// AllowlistedSystem and AllowlistedTransient scopes when the System or
// Transient limits refuse them, and exempts them from the per-IP
// connection limits. An address is /ip4/A or /ip6/A (one address),
// optionally followed by /ipcidr/N (a network), optionally followed by
// /p2p/ID: such an entry admits only that peer, which SetPeer checks.
func WithAllowlist(addrs ...ma.Multiaddr) Option {
	return func(c *config) error {
		for _, a := range addrs {
			e, err := parseAllowEntry(a)
			if err != nil {
				return err
			}
			c.allow = append(c.allow, e)
		}
		return nil
	}
}

// WithConnLimitsPerIP replaces the limits on inbound connections from one
// address or subnet (DefaultConnLimitsPerIPv4 and DefaultConnLimitsPerIPv6).
// A nil slice keeps the default for its family; an empty one removes the
// limits.
func WithConnLimitsPerIP(ipv4, ipv6 []SubnetLimit) Option {
	return func(c *config) error {
		if ipv4 != nil {
			if err := validateSubnetLimits(ipv4, 32); err != nil {
				return err
			}
			c.ipv4 = ipv4
		}
		if ipv6 != nil {
			if err := validateSubnetLimits(ipv6, 128); err != nil {
				return err
			}
			c.ipv6 = ipv6
		}
		return nil
	}
}

// WithLoopbackExempt says whether connections from loopback addresses
// (127.0.0.0/8 and ::1) are exempt from the per-IP connection limits and
// from the per-source caps of the Shares. They are by default. Without the
// exemption each loopback address counts as a host of its own (each of
// 127.0.0.0/8 is its own IPv4 /32, and ::1 is alone in its IPv6 /56), so
// that attacks from many addresses can be reproduced on one machine, as
// `p2pnet listen --limit-loopback` does.
func WithLoopbackExempt(exempt bool) Option {
	return func(c *config) error {
		c.exemptLoopback = exempt
		return nil
	}
}

// New returns a Manager enforcing limits. It fails when a limit is
// negative or an option is invalid.
func New(limits Limits, opts ...Option) (*Manager, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	c := config{
		ipv4:           DefaultConnLimitsPerIPv4,
		ipv6:           DefaultConnLimitsPerIPv6,
		exemptLoopback: true,
		logInterval:    DefaultRefusalLogInterval,
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	m := &Manager{
		limits:         limits.clone(),
		allowlist:      c.allow,
		exemptLoopback: c.exemptLoopback,
		peers:          make(map[peer.ID]*peerScope),
		perIP:          newIPLimiter(c.ipv4, c.ipv6),
		refusedBy:      make(map[refusalKey]uint64),
		sources:        make(map[netip.Prefix]sourceUse),
		log:            refusalLog{logger: c.logger, interval: c.logInterval},
	}
	top := func(k ScopeKind, l *Limit, ups ...*scope) *scope {
		s := &scope{m: m, kind: k, limit: l, refs: 1} // the manager's reference, never dropped
		s.setUp(ups...)
		for _, u := range ups {
			u.refs++
		}
		m.count[k]++
		return s
	}
	m.system = top(KindSystem, &m.limits.System)
	m.transient = top(KindTransient, &m.limits.Transient, m.system)
	m.allowSystem = top(KindAllowlistedSystem, &m.limits.AllowlistedSystem)
	m.allowTransient = top(KindAllowlistedTransient, &m.limits.AllowlistedTransient, m.allowSystem)
	return m, nil
}

// Close makes OpenConnection and OpenStream fail with an error wrapping
// network.ErrResourceScopeClosed. Scopes already open keep working until
// they are done. The Manager has no goroutine to stop (Close stops the
// timer of the delayed sweep; see idleDelay), but Close logs the
// summary of the refusals not yet logged at once (see WithRefusalLog) and
// waits for a summary being logged.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	if m.sweepTimer != nil {
		m.sweepTimer.Stop()
		m.sweepArmed = false
	}
	line := m.log.stopLocked()
	m.mu.Unlock()
	line.write()
	m.log.wg.Wait()
	return nil
}

// ViewSystem calls f with the system scope.
func (m *Manager) ViewSystem(f func(network.ResourceScope) error) error {
	return f(m.system)
}

// ViewTransient calls f with the transient scope.
func (m *Manager) ViewTransient(f func(network.ResourceScope) error) error {
	return f(m.transient)
}

// ViewService calls f with the scope of service srv, creating it if
// needed. The scope stays alive during the call, and afterwards while it
// holds anything.
func (m *Manager) ViewService(srv string, f func(network.ServiceScope) error) error {
	m.mu.Lock()
	s := m.serviceLocked(srv)
	m.mu.Unlock()
	defer m.unview(&s.scope)
	return f(s)
}

// ViewProtocol calls f with the scope of protocol proto, creating it if
// needed.
func (m *Manager) ViewProtocol(proto protocol.ID, f func(network.ProtocolScope) error) error {
	m.mu.Lock()
	s := m.protocolLocked(proto)
	m.mu.Unlock()
	defer m.unview(&s.scope)
	return f(s)
}

// ViewPeer calls f with the scope of peer p, creating it if needed.
func (m *Manager) ViewPeer(p peer.ID, f func(network.PeerScope) error) error {
	m.mu.Lock()
	s := m.peerLocked(p)
	m.mu.Unlock()
	defer m.unview(&s.scope)
	return f(s)
}

// unview drops the reference a View took.
func (m *Manager) unview(s *scope) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decRefLocked(s)
	m.maybeSweepLocked()
}

// OpenConnection opens the scope of a new connection in the transient
// scope. It refuses when the per-IP limits, the source's share of
// transient connections (inbound only) or the Conn, Transient or System
// limits refuse; a connection from an allowlisted address that the normal
// scopes refuse is retried in the allowlisted ones.
func (m *Manager) OpenConnection(dir network.Direction, usefd bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	ip, hasIP := endpointIP(endpoint)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errManagerClosed
	}
	allowlisted := hasIP && m.allowlist.containsAny(ip)

	m.nextID++
	c := &connScope{
		scope:    scope{m: m, kind: KindConn, id: m.nextID, limit: &m.limits.Conn},
		dir:      dir,
		endpoint: endpoint,
	}
	if hasIP {
		c.ip, c.from = ip, c
		c.shared = !allowlisted && !(m.exemptLoopback && ip.IsLoopback())
	}
	if c.shared && dir == network.DirInbound {
		if err := m.perIP.addLocked(ip); err != nil {
			m.refuseLocked(err, c.source())
			return nil, err
		}
		c.ipCounted = true
		if err := m.transientConnRefusalLocked(c.source()); err != nil {
			m.perIP.removeLocked(ip)
			m.refuseLocked(err, c.source())
			return nil, err
		}
	}

	d := connDelta(dir, usefd)
	c.setUp(m.transient, m.system)
	err := m.reserveLocked(&c.scope, &d, network.ReservationPriorityAlways)
	if err != nil && allowlisted {
		c.setUp(m.allowTransient, m.allowSystem)
		c.allowlisted = true
		err = m.reserveLocked(&c.scope, &d, network.ReservationPriorityAlways)
	}
	if err != nil {
		if c.ipCounted {
			m.perIP.removeLocked(c.ip)
		}
		return nil, err
	}
	for _, u := range c.ups() {
		u.refs++
	}
	if c.ipCounted {
		m.addSourceLocked(c.source(), sourceUse{transientConns: 1})
		c.transientSlot = true
	}
	m.linkOpenLocked(&c.scope)
	return c, nil
}

// OpenStream opens the scope of a new stream with peer p, in the peer's
// scope and the transient scope. An inbound stream also counts as
// unnegotiated against its peer, its connection (when p has a single
// one; see AttachConn) and that connection's source until SetProtocol, and
// is refused when the Shares cap those and the transient scope is past
// the burst.
func (m *Manager) OpenStream(p peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errManagerClosed
	}
	ps := m.peerLocked(p)
	m.nextID++
	st := &streamScope{
		scope: scope{m: m, kind: KindStream, id: m.nextID, limit: &m.limits.Stream},
		dir:   dir,
		peer:  ps,
	}
	st.setUp(&ps.scope, m.transient, m.system)
	d := streamDelta(dir)
	on, from := ps.streamConnLocked()
	st.from = from
	var buf [16]*scope
	chain := st.appendChain(buf[:0])
	err := m.checkChainLocked(chain, &d, network.ReservationPriorityAlways, sourceOfLocked(&st.scope))
	if err == nil && dir == network.DirInbound && !m.burstLocked(m.transient.use.NumStreamsInbound) {
		if le := m.unnegotiatedRefusalLocked(ps, on, from); le != nil {
			m.refuseLocked(le, sourceOfLocked(&st.scope))
			err = le
		}
	}
	if err != nil {
		m.decRefLocked(&ps.scope)
		m.maybeSweepLocked()
		return nil, err
	}
	for _, x := range chain {
		addUse(&x.use, &d)
	}
	if dir == network.DirInbound {
		m.addUnnegotiatedLocked(st, from, on != nil)
	}
	// The reference peerLocked took is now the stream's.
	m.transient.refs++
	m.system.refs++
	m.linkOpenLocked(&st.scope)
	return st, nil
}

// GC removes every peer, protocol and service scope (and per-peer scope
// of a protocol or service) that holds nothing and that nothing refers
// to. The manager also does this by itself whenever idleSweep scopes have
// become unused, and idleDelay after one became unused, so calling GC is
// never necessary; it makes the set of
// live scopes exact, which tests and snapshots like.
func (m *Manager) GC() {
	m.mu.Lock()
	defer m.mu.Unlock()
	queue := func(s *scope) {
		if !s.queued && s.refs == 0 {
			s.queued = true
			m.idle = append(m.idle, s)
		}
	}
	for _, s := range m.services {
		for _, c := range s.children {
			queue(c)
		}
		queue(&s.scope)
	}
	for _, s := range m.protocols {
		for _, c := range s.children {
			queue(c)
		}
		queue(&s.scope)
	}
	for _, s := range m.peers {
		queue(&s.scope)
	}
	m.sweepLocked()
}

// reserveLocked reserves d at priority prio in s and every scope it
// counts against, or in none.
func (m *Manager) reserveLocked(s *scope, d *delta, prio uint8) error {
	if s.done {
		return s.closedError()
	}
	var buf [16]*scope
	chain := s.appendChain(buf[:0])
	if err := m.checkChainLocked(chain, d, prio, sourceOfLocked(s)); err != nil {
		return err
	}
	for _, x := range chain {
		addUse(&x.use, d)
	}
	return nil
}

// checkChainLocked checks that every scope of chain can take d at
// priority prio, and counts the first refusal as coming from src.
func (m *Manager) checkChainLocked(chain []*scope, d *delta, prio uint8, src netip.Prefix) error {
	for _, x := range chain {
		if err := x.checkLocked(d, prio); err != nil {
			m.refuseLocked(err, src)
			return err
		}
	}
	return nil
}

// moveLocked makes s's use count against the scopes in add and no longer
// against those in drop, taking a reference on each added scope and
// dropping one on each dropped scope. The scopes in add are checked first
// (at priority Always), and on refusal nothing changes. The caller then
// sets s's up list.
func (m *Manager) moveLocked(s *scope, add, drop []*scope) error {
	if s.done {
		return s.closedError()
	}
	for _, x := range add {
		if err := x.checkLocked(&s.use, network.ReservationPriorityAlways); err != nil {
			m.refuseLocked(err, sourceOfLocked(s))
			return err
		}
	}
	for _, x := range add {
		addUse(&x.use, &s.use)
		x.refs++
	}
	for _, x := range drop {
		subUse(&x.use, &s.use)
		m.decRefLocked(x)
	}
	return nil
}

// doneLocked ends s: it releases what s holds from every scope above it,
// ends the spans below it, and drops the references s holds.
func (m *Manager) doneLocked(s *scope) {
	if s.done {
		return
	}
	var buf [16]*scope
	chain := s.appendChain(buf[:0])
	for _, x := range chain[1:] {
		subUse(&x.use, &s.use)
	}
	s.use = network.ScopeStat{}
	m.endSpansLocked(s)
	if o := s.owner; o != nil {
		if s.prev != nil {
			s.prev.next = s.next
		} else {
			o.spans = s.next
		}
		if s.next != nil {
			s.next.prev = s.prev
		}
		s.prev, s.next = nil, nil
		m.decRefLocked(o)
	} else {
		for _, u := range s.ups() {
			m.decRefLocked(u)
		}
		s.setUp()
	}
	s.done = true
	m.count[s.kind]--
}

// endSpansLocked ends the spans below s, which is ending: what they hold
// is part of what s holds, so s releases it.
func (m *Manager) endSpansLocked(s *scope) {
	for sp := s.spans; sp != nil; {
		next := sp.next
		m.endSpansLocked(sp)
		sp.use = network.ScopeStat{}
		sp.done = true
		sp.prev, sp.next = nil, nil
		s.refs--
		m.count[KindSpan]--
		sp = next
	}
	s.spans = nil
}

// decRefLocked drops a reference to s, and queues s for removal when it
// is collectable, unreferenced and empty.
func (m *Manager) decRefLocked(s *scope) {
	s.refs--
	m.queueIfIdleLocked(s)
}

// queueIfIdleLocked queues s for removal when it is collectable,
// unreferenced and empty.
func (m *Manager) queueIfIdleLocked(s *scope) {
	if s.refs > 0 || s.queued || s.done || !collectable(s.kind) || s.use != (network.ScopeStat{}) {
		return
	}
	s.queued = true
	m.idle = append(m.idle, s)
	if !m.sweepArmed && !m.closed {
		m.sweepArmed = true
		if m.sweepTimer == nil {
			m.sweepTimer = time.AfterFunc(idleDelay, m.timedSweep)
		} else {
			m.sweepTimer.Reset(idleDelay)
		}
	}
}

// timedSweep is the sweep idleDelay after a scope was queued.
func (m *Manager) timedSweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepArmed = false
	m.sweepLocked()
	// A quiet moment: neither the queue's array nor the timer is needed
	// until scopes become unused again. (Scopes the sweep itself queued,
	// such as a protocol after its last per-peer scope, armed the timer
	// again, but the sweep removed them too.)
	if len(m.idle) == 0 {
		m.idle = nil
		if m.sweepArmed {
			m.sweepTimer.Stop()
			m.sweepArmed = false
		}
		m.sweepTimer = nil
	}
}

// maybeSweepLocked sweeps once enough scopes wait.
func (m *Manager) maybeSweepLocked() {
	if len(m.idle) >= idleSweep {
		m.sweepLocked()
	}
}

// sweepLocked removes the queued scopes that are still unused; removing a
// per-peer scope may queue its protocol or service, which the same sweep
// removes.
func (m *Manager) sweepLocked() {
	for len(m.idle) > 0 {
		s := m.idle[len(m.idle)-1]
		m.idle[len(m.idle)-1] = nil
		m.idle = m.idle[:len(m.idle)-1]
		s.queued = false
		if s.done || s.refs > 0 || s.use != (network.ScopeStat{}) {
			continue
		}
		switch s.kind {
		case KindPeer:
			delete(m.peers, s.peerID)
		case KindProtocol:
			delete(m.protocols, protocol.ID(s.key))
			if len(m.protocols) == 0 {
				m.protocols = nil // see protocolLocked
			}
		case KindService:
			delete(m.services, s.key)
			if len(m.services) == 0 {
				m.services = nil
			}
		case KindProtocolPeer, KindServicePeer:
			delete(s.parent.children, s.peerID)
			m.decRefLocked(s.parent)
		}
		for _, u := range s.ups() {
			m.decRefLocked(u)
		}
		s.setUp()
		s.done = true
		m.count[s.kind]--
	}
	// The queue's array would otherwise stay as large as the largest
	// batch it ever held.
	if cap(m.idle) > idleSweep {
		m.idle = nil
	}
}

// peerLocked returns p's scope, creating it if needed, with a reference
// for the caller.
func (m *Manager) peerLocked(p peer.ID) *peerScope {
	s := m.peers[p]
	if s == nil {
		l, ok := limitFor(m.limits.Peer, p, &m.limits.PeerDefault)
		s = &peerScope{scope: scope{m: m, kind: KindPeer, peerID: p, limit: l, override: ok}}
		m.attachTopLocked(&s.scope)
		m.peers[p] = s
	}
	s.refs++
	return s
}

// protocolLocked returns proto's scope, creating it if needed, with a
// reference for the caller.
func (m *Manager) protocolLocked(proto protocol.ID) *protocolScope {
	s := m.protocols[proto]
	if s == nil {
		l, ok := limitFor(m.limits.Protocol, proto, &m.limits.ProtocolDefault)
		s = &protocolScope{scope{m: m, kind: KindProtocol, key: string(proto), limit: l, override: ok}}
		m.attachTopLocked(&s.scope)
		if m.protocols == nil {
			// Dropped when empty: a map keeps its table after its
			// last delete, and a host whose streams all ended (an idle
			// one) needs none.
			m.protocols = make(map[protocol.ID]*protocolScope)
		}
		m.protocols[proto] = s
	}
	s.refs++
	return s
}

// serviceLocked returns srv's scope, creating it if needed, with a
// reference for the caller.
func (m *Manager) serviceLocked(srv string) *serviceScope {
	s := m.services[srv]
	if s == nil {
		l, ok := limitFor(m.limits.Service, srv, &m.limits.ServiceDefault)
		s = &serviceScope{scope{m: m, kind: KindService, key: srv, limit: l, override: ok}}
		m.attachTopLocked(&s.scope)
		if m.services == nil {
			m.services = make(map[string]*serviceScope) // dropped when empty, as protocols
		}
		m.services[srv] = s
	}
	s.refs++
	return s
}

// attachTopLocked places a new peer, protocol or service scope under the
// system scope.
func (m *Manager) attachTopLocked(s *scope) {
	s.setUp(m.system)
	m.system.refs++
	m.count[s.kind]++
}

// peerOfLocked returns the scope of peer p within a protocol or service,
// creating it if needed, with a reference for the caller. Such a scope
// counts against nothing by itself: the streams that use it list the
// protocol or service and the system too.
func (m *Manager) peerOfLocked(parent *scope, p peer.ID) *scope {
	s := parent.children[p]
	if s == nil {
		s = &scope{m: m, peerID: p, key: parent.key, parent: parent}
		if parent.kind == KindProtocol {
			s.kind = KindProtocolPeer
			s.limit, s.override = limitFor(m.limits.ProtocolPeer, protocol.ID(parent.key), &m.limits.ProtocolPeerDefault)
		} else {
			s.kind = KindServicePeer
			s.limit, s.override = limitFor(m.limits.ServicePeer, parent.key, &m.limits.ServicePeerDefault)
		}
		if parent.children == nil {
			parent.children = make(map[peer.ID]*scope)
		}
		parent.children[p] = s
		parent.refs++
		m.count[s.kind]++
	}
	s.refs++
	return s
}

// limitFor returns the override for key, or def, and whether it is an
// override.
func limitFor[K comparable](overrides map[K]Limit, key K, def *Limit) (*Limit, bool) {
	if l, ok := overrides[key]; ok {
		return &l, true
	}
	return def, false
}

// linkOpenLocked adds a conn or stream to the list of open ones.
func (m *Manager) linkOpenLocked(s *scope) {
	s.next = m.open
	if m.open != nil {
		m.open.prev = s
	}
	m.open = s
	m.count[s.kind]++
}

// unlinkOpenLocked removes a conn or stream from the list of open ones.
func (m *Manager) unlinkOpenLocked(s *scope) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		m.open = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	}
	s.prev, s.next = nil, nil
}

// connDelta is what a connection reserves.
func connDelta(dir network.Direction, usefd bool) delta {
	var d delta
	if dir == network.DirInbound {
		d.NumConnsInbound = 1
	} else {
		d.NumConnsOutbound = 1
	}
	if usefd {
		d.NumFD = 1
	}
	return d
}

// streamDelta is what a stream reserves.
func streamDelta(dir network.Direction) delta {
	var d delta
	if dir == network.DirInbound {
		d.NumStreamsInbound = 1
	} else {
		d.NumStreamsOutbound = 1
	}
	return d
}
