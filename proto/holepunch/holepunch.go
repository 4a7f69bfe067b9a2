// Package holepunch implements DCUtR, Direct Connection Upgrade through
// Relay (https://github.com/libp2p/specs/blob/master/relay/DCUtR.md): two
// peers joined by a relayed (limited) connection exchange their public
// addresses over it, measure its round-trip time, and dial each other at
// the same moment, so that both NATs see outbound traffic and let the
// other's packets in: a TCP simultaneous open from the listen port, or
// QUIC hole punching from the listen socket.
//
// Roles follow the spec: the peer that received the relayed connection
// (B) initiates: it opens /libp2p/dcutr, sends CONNECT, measures the time
// to the answering CONNECT, sends SYNC and dials after half that time; the
// other peer (A) dials as soon as SYNC arrives. A is the client of the
// direct connection (network.WithSimultaneousConnect with isClient true),
// B the server, as in go-libp2p since v0.41; B switches to client on its
// last attempt, as go-libp2p does, in case the peer takes the roles the
// other way round (go-libp2p before v0.41). B tries up to MaxAttempts
// times on the same stream. The swarm prefers the direct connection once
// it exists.
//
// Connection reversal (the spec's "connection reversal"): when A has a
// public address, B first dials A directly at the addresses identify
// gave it, as an ordinary dial; only when that fails does it hole-punch.
// B waits for identify on the relayed connection before it starts (see
// [IdentifyWait]), so that A's addresses are in the peerstore.
//
// Package holepunch may import network, peer, peerstore, protocol of
// p2pnet's, go-multiaddr, protowire and the standard library. It never
// imports the host: it declares the [Host] it needs.
package holepunch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// ID is the DCUtR protocol.
const ID protocol.ID = "/libp2p/dcutr"

// Defaults, go-libp2p's.
const (
	// MaxAttempts is how many CONNECT/SYNC rounds the initiator runs
	// before it gives up (the spec: "retry twice").
	MaxAttempts = 3
	// DefaultStreamTimeout bounds a whole exchange on one stream.
	DefaultStreamTimeout = time.Minute
	// DefaultDialTimeout bounds the direct dial of one attempt.
	DefaultDialTimeout = 5 * time.Second
	// maxAddrs caps the addresses a message carries and that we dial.
	maxAddrs = 16
)

// Errors of a hole punch.
var (
	// ErrNoAddrs is the error of an attempt with no public address of the
	// peer's to dial.
	ErrNoAddrs = errors.New("holepunch: the peer sent no public address")
	// ErrUnexpected is the error of a message of the wrong type.
	ErrUnexpected = errors.New("holepunch: unexpected message")
	// ErrClosed is the error of a hole punch cut short by Close.
	ErrClosed = errors.New("holepunch: service closed")
)

// Host is what the service needs of a libp2p host.
type Host interface {
	// ID returns our peer ID.
	ID() peer.ID
	// Network returns the network whose limited connections are upgraded.
	Network() network.Network
	// Peerstore is where the peer's punched addresses are put for the dial.
	Peerstore() peerstore.Peerstore
	// Addrs returns our listen addresses.
	Addrs() []ma.Multiaddr
	// NewStream opens a stream for one of pids, proposed lazily.
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
}

// Result is the outcome of one hole punch with a peer, on either side.
type Result struct {
	Peer peer.ID
	// Initiator is true on the side that ran the exchange (B).
	Initiator bool
	// Reversed is true when B reached the peer by connection reversal,
	// a plain direct dial to its public address, without hole punching.
	Reversed bool
	// Attempts is how many CONNECT/SYNC rounds ran.
	Attempts int
	// Conn is the direct connection, nil on failure.
	Conn network.Conn
	// Elapsed is the time from the start of the exchange to the end.
	Elapsed time.Duration
	// Err is why the punch failed, nil on success.
	Err error
}

// TransportStats counts the attempts of one transport. An attempt of a
// transport is a round in which we dialed at least one of the peer's
// addresses of it; it succeeded when the direct connection that round
// made is of that transport, and failed otherwise.
type TransportStats struct {
	Attempts, Successes, Failures uint64
	// Time is the sum over successes of the time from the start of the
	// exchange to the direct connection.
	Time time.Duration
}

// Option configures a Service.
type Option func(*Service)

// ObservedAddrs sets where the service learns the addresses peers see us
// at (identify's ObservedAddrs). Default: none; only our listen
// addresses that are public are offered.
func ObservedAddrs(f func() []ma.Multiaddr) Option {
	return func(s *Service) { s.observed = f }
}

// PublicPrefixes adds IP ranges whose addresses count as public, beyond
// the default (global unicast addresses outside the private, shared and
// documentation ranges), so that a namespace lab can use documentation
// ranges.
func PublicPrefixes(ps ...netip.Prefix) Option {
	return func(s *Service) { s.public = append(s.public, ps...) }
}

// OnResult sets a function called with the result of every hole punch,
// on the service's goroutine: it must not block.
func OnResult(f func(Result)) Option {
	return func(s *Service) { s.onResult = f }
}

// IdentifyWait sets how the service waits for identify on a relayed
// connection before it starts an exchange (identify's IdentifyWait), so
// that the peer's public addresses are known for connection reversal.
// Default: it does not wait, and reverses only to addresses already in
// the peerstore.
func IdentifyWait(f func(network.Conn) <-chan struct{}) Option {
	return func(s *Service) { s.identifyWait = f }
}

// DialTimeout sets how long each attempt's direct dial may take.
// Default: DefaultDialTimeout.
func DialTimeout(d time.Duration) Option {
	return func(s *Service) { s.dialTimeout = d }
}

// dialFunc dials p directly at addrs under network.WithSimultaneousConnect.
type dialFunc func(ctx context.Context, p peer.ID, addrs []ma.Multiaddr, isClient bool) (network.Conn, error)

// Service runs DCUtR on both sides: it serves /libp2p/dcutr and starts an
// exchange whenever a relayed connection arrives.
type Service struct {
	h           Host
	observed    func() []ma.Multiaddr
	public      []netip.Prefix
	onResult    func(Result)
	dialTimeout time.Duration
	dial        dialFunc // swarm dial; tests replace it
	// dialReverse dials p for connection reversal; tests replace it.
	dialReverse func(ctx context.Context, p peer.ID) (network.Conn, error)
	// identifyWait waits for identify on a connection; nil: no wait.
	identifyWait func(network.Conn) <-chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	notif  *network.NotifyBundle

	mu     sync.Mutex // guards the following
	active map[peer.ID]bool
	stats  map[string]*TransportStats
	closed bool
}

// New starts the service on h.
func New(h Host, opts ...Option) *Service {
	s := &Service{
		h:           h,
		dialTimeout: DefaultDialTimeout,
		active:      map[peer.ID]bool{},
		stats:       map[string]*TransportStats{},
	}
	for _, o := range opts {
		o(s)
	}
	s.dial = s.swarmDial
	s.dialReverse = s.swarmDialReverse
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.notif = &network.NotifyBundle{ConnectedF: s.connected}
	h.SetStreamHandler(ID, s.handle)
	h.Network().Notify(s.notif)
	return s
}

// Close stops serving, cancels the exchanges under way and waits for
// them.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(ID)
	s.h.Network().StopNotify(s.notif)
	s.cancel()
	s.wg.Wait()
	return nil
}

// Stats returns the counters per transport ("tcp", "quic", …).
func (s *Service) Stats() map[string]TransportStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]TransportStats, len(s.stats))
	for k, v := range s.stats {
		out[k] = *v
	}
	return out
}

// goLocked runs f on a goroutine Close waits for, unless closed.
func (s *Service) goLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// connected starts an exchange when a relayed connection arrives: the
// inbound side initiates.
func (s *Service) connected(_ network.Network, c network.Conn) {
	st := c.Stat()
	if !st.Limited || st.Direction != network.DirInbound {
		return
	}
	p := c.RemotePeer()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[p] {
		return
	}
	if s.goLocked(func() {
		if s.identifyWait != nil {
			select {
			case <-s.identifyWait(c):
			case <-s.ctx.Done():
			}
		}
		s.report(s.Initiate(s.ctx, p))
	}) {
		s.active[p] = true
	}
}

// report passes r to OnResult and ends the peer's exchange.
func (s *Service) report(r Result) {
	if r.Initiator {
		s.mu.Lock()
		delete(s.active, r.Peer)
		s.mu.Unlock()
	}
	if r.Err != nil {
		slog.Debug("hole punch failed", "peer", r.Peer, "initiator", r.Initiator, "attempts", r.Attempts, "err", r.Err)
	} else {
		slog.Debug("hole punch succeeded", "peer", r.Peer, "initiator", r.Initiator, "addr", r.Conn.RemoteMultiaddr(), "elapsed", r.Elapsed)
	}
	if s.onResult != nil {
		s.onResult(r)
	}
}

// Initiate runs the initiator's side of DCUtR with p over a limited
// connection (B's role): up to MaxAttempts rounds of CONNECT, CONNECT,
// SYNC and a dial after half the measured round-trip time. It returns
// at once with success when a direct connection to p already exists,
// and tries connection reversal first when the peerstore has a public
// address of p's. The service calls it by itself for inbound relayed
// connections.
func (s *Service) Initiate(ctx context.Context, p peer.ID) (r Result) {
	start := time.Now()
	r = Result{Peer: p, Initiator: true}
	defer func() { r.Elapsed = time.Since(start) }()
	if c := s.directConn(p); c != nil {
		r.Conn = c
		return r
	}
	if c, err := s.reverse(ctx, p); c != nil {
		r.Conn, r.Reversed = c, true
		return r
	} else if err != nil {
		slog.Debug("holepunch: connection reversal failed, hole punching", "peer", p, "err", err)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultStreamTimeout)
	defer cancel()
	str, err := s.h.NewStream(network.WithNoDial(network.WithAllowLimitedConn(ctx, "hole punch"), "hole punch"), p, ID)
	if err != nil {
		r.Err = fmt.Errorf("holepunch: opening a stream to %s: %w", p, err)
		return r
	}
	defer str.Reset() // a no-op after Close
	defer context.AfterFunc(ctx, func() { str.Reset() })()
	str.SetDeadline(start.Add(DefaultStreamTimeout))
	for r.Attempts < MaxAttempts {
		r.Attempts++
		r.Conn, r.Err = s.initiateRound(ctx, str, p, start, r.Attempts == MaxAttempts)
		if r.Err == nil || ctx.Err() != nil || errors.Is(r.Err, ErrUnexpected) || errors.Is(r.Err, ErrMalformed) {
			break
		}
	}
	if r.Err == nil {
		str.Close()
	} else if ctx.Err() != nil && s.ctx.Err() != nil {
		r.Err = fmt.Errorf("%w: %w", ErrClosed, r.Err)
	}
	return r
}

// initiateRound runs one round of the initiator, dialing as the server of
// the direct connection unless isClient.
func (s *Service) initiateRound(ctx context.Context, str network.Stream, p peer.ID, start time.Time, isClient bool) (network.Conn, error) {
	sent := time.Now()
	if err := WriteMessage(str, NewMessage(TypeConnect, s.ownAddrs())); err != nil {
		return nil, fmt.Errorf("holepunch: sending CONNECT: %w", err)
	}
	var m Message
	if err := ReadMessage(str, &m); err != nil {
		return nil, fmt.Errorf("holepunch: reading CONNECT: %w", err)
	}
	if m.Type != TypeConnect {
		return nil, fmt.Errorf("%w: %s instead of CONNECT", ErrUnexpected, m.Type)
	}
	rtt := time.Since(sent)
	addrs := s.publicOf(m.Addrs())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// As the QUIC server of the direct connection we only send packets
	// that open our own NAT for the peer's Initial, which the peer sends
	// as soon as SYNC reaches it: so they start before SYNC leaves. The
	// spec's RTT/2 wait synchronises TCP's simultaneous open; an Initial
	// that beats our first packet to our NAT is dropped and resent only
	// after quic-go's 200 ms probe timeout, which the lab saw in most
	// tries on a loaded machine.
	quicAddrs, others := splitQUIC(addrs)
	var early *punched
	var earlyDone <-chan struct{} // nil, never ready, without an early punch
	if !isClient && len(quicAddrs) > 0 {
		early = &punched{done: make(chan struct{})}
		earlyDone = early.done
		go func() {
			defer close(early.done)
			early.c, early.err = s.punch(ctx, p, quicAddrs, false, start)
		}()
		defer func() { cancel(); <-early.done }()
		addrs = others
	}
	if err := WriteMessage(str, &Message{Type: TypeSync}); err != nil {
		return nil, fmt.Errorf("holepunch: sending SYNC: %w", err)
	}
	if early != nil && len(addrs) == 0 {
		<-early.done
		return early.c, early.err
	}
	if len(addrs) == 0 {
		return nil, ErrNoAddrs
	}
	t := time.NewTimer(rtt / 2)
	select {
	case <-t.C:
	case <-earlyDone:
		if early.err == nil {
			t.Stop()
			return early.c, nil
		}
		<-t.C
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	}
	c, err := s.punch(ctx, p, addrs, isClient, start)
	if err != nil && early != nil {
		<-early.done // the QUIC punch may still succeed
		if early.err == nil {
			return early.c, nil
		}
	}
	return c, err
}

// punched is the outcome of a punch run on a goroutine of its own, once
// done is closed.
type punched struct {
	done chan struct{}
	c    network.Conn
	err  error
}

// splitQUIC separates addrs into QUIC addresses and the others.
func splitQUIC(addrs []ma.Multiaddr) (quic, others []ma.Multiaddr) {
	for _, a := range addrs {
		if transportOf(a) == "quic" {
			quic = append(quic, a)
		} else {
			others = append(others, a)
		}
	}
	return quic, others
}

// handle serves /libp2p/dcutr (A's role): for each CONNECT it answers
// CONNECT, and on SYNC dials at once, while it waits for the next round.
func (s *Service) handle(str network.Stream) {
	start := time.Now()
	p := str.Conn().RemotePeer()
	if !str.Conn().Stat().Limited {
		// Only a relayed connection has anything to upgrade.
		str.Reset()
		return
	}
	str.SetDeadline(start.Add(DefaultStreamTimeout))
	defer context.AfterFunc(s.ctx, func() { str.Reset() })()
	var dials sync.WaitGroup
	defer dials.Wait()
	for round := 1; round <= MaxAttempts; round++ {
		var m Message
		if err := ReadMessage(str, &m); err != nil {
			if round == 1 {
				slog.Debug("holepunch: reading CONNECT", "peer", p, "err", err)
			}
			break // EOF: the initiator is done
		}
		if m.Type != TypeConnect {
			str.Reset()
			return
		}
		addrs := s.publicOf(m.Addrs())
		if err := WriteMessage(str, NewMessage(TypeConnect, s.ownAddrs())); err != nil {
			str.Reset()
			return
		}
		if err := ReadMessage(str, &m); err != nil || m.Type != TypeSync {
			str.Reset()
			return
		}
		dials.Add(1)
		go func() {
			defer dials.Done()
			r := Result{Peer: p, Attempts: round}
			if len(addrs) == 0 {
				r.Err = ErrNoAddrs
			} else {
				r.Conn, r.Err = s.punch(s.ctx, p, addrs, true, start)
			}
			r.Elapsed = time.Since(start)
			s.report(r)
		}()
	}
	str.Close()
}

// punch dials p at addrs for one attempt and counts the outcome.
func (s *Service) punch(ctx context.Context, p peer.ID, addrs []ma.Multiaddr, isClient bool, start time.Time) (network.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.dialTimeout)
	defer cancel()
	c, err := s.dial(ctx, p, addrs, isClient)
	if c == nil || c.Stat().Limited {
		// The peer's dial may have won the race.
		c = s.directConn(p)
	}
	if c != nil {
		err = nil
	} else if err == nil {
		err = fmt.Errorf("holepunch: dial to %s gave a limited connection", p)
	}
	won := ""
	if c != nil {
		won = transportOf(c.RemoteMultiaddr())
	}
	elapsed := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tr := range transportsOf(addrs) {
		ts := s.stats[tr]
		if ts == nil {
			ts = &TransportStats{}
			s.stats[tr] = ts
		}
		ts.Attempts++
		if tr == won {
			ts.Successes++
			ts.Time += elapsed
		} else {
			ts.Failures++
		}
	}
	if err != nil {
		return nil, fmt.Errorf("holepunch: direct dial to %s: %w", p, err)
	}
	return c, nil
}

// reverse dials p directly, as an ordinary dial (no simultaneous open),
// when the peerstore holds a public direct address of p's: connection
// reversal. It returns nil and no error when there is no such address.
func (s *Service) reverse(ctx context.Context, p peer.ID) (network.Conn, error) {
	if len(s.publicOf(s.h.Peerstore().Addrs(p))) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.dialTimeout)
	defer cancel()
	c, err := s.dialReverse(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("holepunch: connection reversal to %s: %w", p, err)
	}
	if c.Stat().Limited {
		return nil, fmt.Errorf("holepunch: connection reversal to %s gave a limited connection", p)
	}
	return c, nil
}

// swarmDialReverse is the default dialReverse: an ordinary direct dial
// by the swarm, to the addresses in the peerstore.
func (s *Service) swarmDialReverse(ctx context.Context, p peer.ID) (network.Conn, error) {
	return s.h.Network().DialPeer(network.WithForceDirectDial(ctx, "connection reversal"), p)
}

// swarmDial is the default dialFunc: the swarm dials every address at
// once, directly, with the simultaneous-connect role.
func (s *Service) swarmDial(ctx context.Context, p peer.ID, addrs []ma.Multiaddr, isClient bool) (network.Conn, error) {
	s.h.Peerstore().AddAddrs(p, addrs, peerstore.TempAddrTTL)
	ctx = network.WithForceDirectDial(ctx, "hole punch")
	ctx = network.WithSimultaneousConnect(ctx, isClient, "hole punch")
	return s.h.Network().DialPeer(ctx, p)
}

// directConn returns an open connection to p that is not limited, or nil.
func (s *Service) directConn(p peer.ID) network.Conn {
	for _, c := range s.h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !c.IsClosed() {
			return c
		}
	}
	return nil
}

// ownAddrs returns the addresses we offer: those peers observe us at,
// then our listen addresses, the public ones only, each once.
func (s *Service) ownAddrs() []ma.Multiaddr {
	var all []ma.Multiaddr
	if s.observed != nil {
		all = append(all, s.observed()...)
	}
	all = append(all, s.h.Addrs()...)
	return s.publicOf(all)
}

// publicOf returns the addresses of addrs that are direct and public,
// without duplicates, at most maxAddrs of them.
func (s *Service) publicOf(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if len(out) == maxAddrs {
			break
		}
		if !s.IsPublic(a) || slices.ContainsFunc(out, a.Equal) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// nonPublic are the ranges global unicast addresses are not public in:
// private, shared (CGNAT) and documentation ranges.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// IsPublic reports whether a is a direct address (not a circuit) whose IP
// is public: in a PublicPrefixes range, or global unicast outside the
// private, shared and documentation ranges.
func (s *Service) IsPublic(a ma.Multiaddr) bool {
	if len(a) == 0 {
		return false
	}
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			return false
		}
	}
	var ip netip.Addr
	switch a[0].Code() {
	case ma.P_IP4, ma.P_IP6:
		var ok bool
		if ip, ok = netip.AddrFromSlice(a[0].RawValue()); !ok {
			return false
		}
		ip = ip.Unmap()
	default:
		return false
	}
	for _, p := range s.public {
		if p.Contains(ip) {
			return true
		}
	}
	if !ip.IsGlobalUnicast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// transportOf names the transport of a direct address: "quic" for
// QUIC, "tcp" for TCP, "" otherwise.
func transportOf(a ma.Multiaddr) string {
	quic, tcp := false, false
	for _, c := range a {
		switch c.Code() {
		case ma.P_QUIC_V1:
			quic = true
		case ma.P_TCP:
			tcp = true
		}
	}
	switch {
	case quic:
		return "quic"
	case tcp:
		return "tcp"
	}
	return ""
}

// transportsOf returns the transports of addrs, each once.
func transportsOf(addrs []ma.Multiaddr) []string {
	var out []string
	for _, a := range addrs {
		if t := transportOf(a); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
