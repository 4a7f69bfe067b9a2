// Package upgrader turns a raw connection into a libp2p connection:
// multistream-select picks a security protocol, its handshake proves the
// remote's identity, the connection moves to the peer's resource scope,
// and a stream multiplexer is agreed (inside the handshake when both
// sides support early negotiation, otherwise by multistream-select).
//
// On the dialing side the security protocol is proposed lazily: the
// multistream-select header and proposal travel in the same packet as
// the first handshake message, saving a round trip. A listener that
// refuses it reads that handshake message as its next proposal and
// drops the connection, so the other protocols are offered on a fresh
// connection (see [Upgrader.UpgradeOutbound]); the protocol the peer
// took is remembered, and the next dial to it proposes that one first.
//
// It may import transport, multistream, sec, connmgr, network and the
// vocabulary packages. It never imports a particular security protocol or
// multiplexer: they are handed to it.
package upgrader

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of Config.
const (
	// DefaultInboundUpgradeTimeout bounds the security handshake of an
	// inbound connection, so a silent peer cannot hold a socket.
	DefaultInboundUpgradeTimeout = 15 * time.Second
	// DefaultMuxerNegotiationTimeout bounds the multiplexer negotiation.
	DefaultMuxerNegotiationTimeout = 60 * time.Second
	// DefaultMaxInflightInbound is how many inbound connections may be in
	// their handshake at once; a Listener shares them among source
	// addresses (see Config.MaxInflightPerGroup) and refuses or evicts
	// beyond it, never waits.
	DefaultMaxInflightInbound = 64
	// DefaultAcceptQueue is how many upgraded inbound connections may wait
	// for Accept.
	DefaultAcceptQueue = 16
	// MaxKnownSecurity is how many peers' security protocols an Upgrader
	// remembers after a fallback; beyond it, an arbitrary entry is
	// forgotten.
	MaxKnownSecurity = 4096
)

// Errors of the upgrader. They are wrapped with details.
var (
	// ErrNoSecurity is returned by New when no security protocol is
	// configured: p2pnet has no plaintext path.
	ErrNoSecurity = errors.New("upgrader: no security protocol configured")
	// ErrNoMuxer is returned by New when no multiplexer is configured.
	ErrNoMuxer = errors.New("upgrader: no stream multiplexer configured")
	// ErrNoPeer is returned when an outbound upgrade is not told which
	// peer to expect.
	ErrNoPeer = errors.New("upgrader: outbound upgrade needs the expected peer ID")
	// ErrUnknownMuxer is returned when the handshake agreed a multiplexer
	// we do not have.
	ErrUnknownMuxer = errors.New("upgrader: handshake selected an unknown multiplexer")
)

// Muxer is a stream multiplexer and its protocol ID. A Mux that is also a
// Refuser tells the remote side why the upgrader gives up a connection on
// which it was agreed.
type Muxer struct {
	ID  protocol.ID
	Mux network.Multiplexer
}

// Refuser is a multiplexer that can tell the remote side of a secured
// connection, in its own framing and before it runs on it, that the
// connection is refused with code. yamux.Transport is one: it writes a
// GoAway carrying the code.
type Refuser interface {
	Refuse(c net.Conn, code network.ConnErrorCode) error
}

// Config configures an Upgrader. Security and Muxers are in order of
// preference.
type Config struct {
	// Security protocols, in order of preference. Each one must have been
	// built with the IDs of Muxers for early negotiation.
	Security []sec.Transport
	// Muxers, in order of preference.
	Muxers []Muxer
	// ResourceManager accounts for inbound connections; nil means
	// network.NullResourceManager.
	ResourceManager network.ResourceManager
	// InboundUpgradeTimeout bounds an inbound handshake; 0 means
	// DefaultInboundUpgradeTimeout.
	InboundUpgradeTimeout time.Duration
	// MuxerNegotiationTimeout bounds multiplexer negotiation; 0 means
	// DefaultMuxerNegotiationTimeout.
	MuxerNegotiationTimeout time.Duration
	// MaxInflightInbound bounds concurrent inbound handshakes of each
	// Listener; 0 means DefaultMaxInflightInbound.
	MaxInflightInbound int
	// MaxInflightPerGroup caps the inbound handshakes of one group of
	// source addresses (see HandshakePrefixIPv4) in each Listener: a
	// connection from a group at its cap is closed at once. Handshakes
	// the Listener evicted count against their group until their
	// InboundUpgradeTimeout would have run out. 0 (or less) means
	// max(1, MaxInflightInbound/DefaultGroupShare): 8 of the default 64
	// slots, like rcmgr's default of 8 connections per address. A value
	// above MaxInflightInbound means MaxInflightInbound.
	MaxInflightPerGroup int
	// HandshakePrefixIPv4 and HandshakePrefixIPv6 say which source
	// addresses form one group for MaxInflightPerGroup and for eviction:
	// those sharing their first HandshakePrefixIPv4 bits (IPv4) or
	// HandshakePrefixIPv6 bits (IPv6). 0 (or less) means
	// DefaultHandshakePrefixIPv4 (32: each address is its own group, each
	// of 127.0.0.0/8 included) and DefaultHandshakePrefixIPv6 (56: what
	// one site usually gets); longer than the address means the whole
	// address.
	HandshakePrefixIPv4 int
	HandshakePrefixIPv6 int
	// ConnectionGater, if not nil, is asked InterceptAccept for each
	// inbound connection before its handshake and InterceptSecured after
	// every security handshake; a refusal closes the connection.
	ConnectionGater connmgr.ConnectionGater
	// Tracer, if not nil, is told of every upgrade: its time and outcome.
	Tracer transport.HandshakeTracer
}

// Upgrader upgrades raw connections. It is safe for concurrent use.
type Upgrader struct {
	cfg       Config
	secIDs    []protocol.ID
	muxIDs    []protocol.ID
	secRouter multistream.Router[sec.Transport]
	muxRouter multistream.Router[network.Multiplexer]

	knownMu sync.Mutex // guards the following
	// known maps a peer that refused our first choice to the security
	// protocol it took after a fallback. Only outbound upgrades add
	// entries, and only once the peer has proven its ID.
	known map[peer.ID]protocol.ID
}

// New returns an Upgrader.
func New(cfg Config) (*Upgrader, error) {
	if len(cfg.Security) == 0 {
		return nil, ErrNoSecurity
	}
	if len(cfg.Muxers) == 0 {
		return nil, ErrNoMuxer
	}
	if cfg.ResourceManager == nil {
		cfg.ResourceManager = &network.NullResourceManager{}
	}
	if cfg.InboundUpgradeTimeout <= 0 {
		cfg.InboundUpgradeTimeout = DefaultInboundUpgradeTimeout
	}
	if cfg.MuxerNegotiationTimeout <= 0 {
		cfg.MuxerNegotiationTimeout = DefaultMuxerNegotiationTimeout
	}
	if cfg.MaxInflightInbound <= 0 {
		cfg.MaxInflightInbound = DefaultMaxInflightInbound
	}
	u := &Upgrader{cfg: cfg, known: make(map[peer.ID]protocol.ID)}
	for _, s := range cfg.Security {
		u.secIDs = append(u.secIDs, s.ID())
		u.secRouter.AddHandler(s.ID(), s)
	}
	for _, m := range cfg.Muxers {
		u.muxIDs = append(u.muxIDs, m.ID)
		u.muxRouter.AddHandler(m.ID, m.Mux)
	}
	return u, nil
}

// MuxerIDs returns the multiplexer IDs in order of preference, for
// building security transports.
func (u *Upgrader) MuxerIDs() []protocol.ID { return append([]protocol.ID(nil), u.muxIDs...) }

// Redial opens a fresh raw connection to the address of the dial being
// upgraded, for [Upgrader.UpgradeOutbound]'s security fallback. It
// returns the connection and its local address, or an error after
// closing whatever it opened. It must give up when ctx ends.
type Redial func(ctx context.Context) (raw net.Conn, laddr ma.Multiaddr, err error)

// Upgrade secures and multiplexes raw. dir says who dialed; for an
// outbound connection p is the peer that must answer, for an inbound one
// it may be empty. scope is the connection's resource scope, fresh from
// OpenConnection; Upgrade moves it to the peer's scope.
//
// An outbound Upgrade proposes only one security protocol (the first
// configured, or the one p took last time): it is UpgradeOutbound
// without a way to redial.
//
// Upgrade owns raw and scope: when it fails, it has closed raw and ended
// scope.
func (u *Upgrader) Upgrade(ctx context.Context, raw net.Conn, dir network.Direction, p peer.ID,
	scope network.ConnManagementScope, laddr, raddr ma.Multiaddr, transportName string) (*Conn, error) {
	return u.upgrade(ctx, raw, nil, dir, p, scope, laddr, raddr, transportName)
}

// UpgradeOutbound secures and multiplexes raw, a connection we dialed
// to p at raddr from laddr, like Upgrade with network.DirOutbound, and
// falls back to our other security protocols when p refuses the first
// one proposed.
//
// The first proposal is lazy: it goes out with the first handshake
// message. A listener that refuses it takes those handshake bytes for a
// malformed proposal and drops the connection, so UpgradeOutbound then
// closes raw, calls redial once for a fresh connection and offers the
// remaining protocols on it in order of preference. Then p is
// remembered (at most MaxKnownSecurity peers), and the next upgrade to
// p proposes the protocol it took first. When p refuses every protocol,
// the error lists them and matches multistream.ErrNotSupported. A nil
// redial means no fallback.
//
// ctx bounds everything, the redial included. scope covers the redial:
// it is one logical dial. The returned Conn's local address is that of
// the connection in use, which after a redial is the one redial
// returned.
//
// UpgradeOutbound owns raw, any connection redial returns, and scope:
// when it fails, it has closed them and ended scope.
func (u *Upgrader) UpgradeOutbound(ctx context.Context, raw net.Conn, redial Redial, p peer.ID,
	scope network.ConnManagementScope, laddr, raddr ma.Multiaddr, transportName string) (*Conn, error) {
	return u.upgrade(ctx, raw, redial, network.DirOutbound, p, scope, laddr, raddr, transportName)
}

func (u *Upgrader) upgrade(ctx context.Context, raw net.Conn, redial Redial, dir network.Direction, p peer.ID,
	scope network.ConnManagementScope, laddr, raddr ma.Multiaddr, transportName string) (_ *Conn, err error) {
	if t := u.cfg.Tracer; t != nil {
		start := time.Now()
		defer func() { t.Handshake(dir, transportName, time.Since(start), err) }()
	}
	// A cancelled context unblocks the handshake by expiring the socket
	// in use, which a fallback replaces.
	cur := &currentConn{conn: raw}
	defer func() {
		if err != nil {
			cur.get().Close()
			scope.Done()
		}
	}()
	if dir == network.DirOutbound && p == "" {
		return nil, ErrNoPeer
	}
	stop := context.AfterFunc(ctx, cur.expire)
	defer stop()
	setCtxDeadline(ctx, raw)

	var sconn sec.Conn
	if dir == network.DirOutbound {
		sconn, raw, laddr, err = u.secureOutbound(ctx, cur, redial, p, laddr)
	} else {
		sconn, err = u.secureInbound(ctx, raw, p)
	}
	if err != nil {
		return nil, u.fail(ctx, "security handshake", dir, p, raddr, err)
	}
	if err := u.gateSecured(dir, sconn, laddr, raddr); err != nil {
		return nil, u.fail(ctx, "connection gater", dir, sconn.RemotePeer(), raddr, err)
	}
	remote := sconn.RemotePeer()
	if dir == network.DirOutbound && remote != p {
		return nil, u.fail(ctx, "security handshake", dir, p, raddr, &sec.MismatchError{Expected: p, Actual: remote})
	}
	if err := scope.SetPeer(remote); err != nil {
		u.refuse(sconn, err)
		return nil, u.fail(ctx, "resource manager", dir, remote, raddr, err)
	}

	state := sconn.ConnState()
	state.Transport = transportName
	var mux network.Multiplexer
	if state.StreamMultiplexer != "" {
		for _, m := range u.cfg.Muxers {
			if m.ID == state.StreamMultiplexer {
				mux = m.Mux
			}
		}
		if mux == nil {
			return nil, u.fail(ctx, "muxer selection", dir, remote, raddr, fmt.Errorf("%w: %s", ErrUnknownMuxer, state.StreamMultiplexer))
		}
		state.UsedEarlyMuxerNegotiation = true
	} else {
		deadline := time.Now().Add(u.cfg.MuxerNegotiationTimeout)
		if d, ok := ctx.Deadline(); !ok || deadline.Before(d) {
			raw.SetDeadline(deadline)
		}
		state.StreamMultiplexer, mux, err = u.negotiateMuxer(sconn, dir)
		if err != nil {
			return nil, u.fail(ctx, "muxer negotiation", dir, remote, raddr, err)
		}
		state.UsedEarlyMuxerNegotiation = false
	}
	if !stop() {
		return nil, u.fail(ctx, "upgrade", dir, remote, raddr, ctx.Err())
	}
	raw.SetDeadline(time.Time{})

	mc, err := mux.NewConn(sconn, dir == network.DirInbound, scope.PeerScope())
	if err != nil {
		return nil, u.fail(ctx, "muxer", dir, remote, raddr, err)
	}
	return &Conn{
		MuxedConn: mc,
		sconn:     sconn,
		scope:     scope,
		laddr:     laddr,
		raddr:     raddr,
		state:     state,
	}, nil
}

// refuse tells the remote side of sconn that the resource manager refused
// the connection with err, when the multiplexer agreed in the handshake
// can say so (see Refuser): go-libp2p and p2pnet dialers then see why,
// not just a closed connection. Without early negotiation no multiplexer
// is agreed yet, and nothing is said.
func (u *Upgrader) refuse(sconn sec.Conn, err error) {
	id := sconn.ConnState().StreamMultiplexer
	if id == "" || !errors.Is(err, network.ErrResourceLimitExceeded) {
		return
	}
	for _, m := range u.cfg.Muxers {
		if r, ok := m.Mux.(Refuser); ok && m.ID == id {
			_ = r.Refuse(sconn, network.ConnResourceLimitExceeded) // best effort: the connection closes anyway
			return
		}
	}
}

// fail wraps an upgrade error with what failed and with whom; when the
// context ended, its error is included so callers can see it.
func (u *Upgrader) fail(ctx context.Context, what string, dir network.Direction, p peer.ID, raddr ma.Multiaddr, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); cerr == nil && ok && !time.Now().Before(d) {
		// The socket's deadline, set from the context's, fired first.
		cerr = context.DeadlineExceeded
	}
	if cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w (%w)", err, cerr)
	}
	who := "peer " + p.String()
	if p == "" {
		who = "unknown peer"
	}
	return &UpgradeError{Step: what, Direction: dir, Peer: who, Addr: raddr, Err: err}
}

// UpgradeError says which step of an upgrade failed, with whom, and why.
type UpgradeError struct {
	Step      string
	Direction network.Direction
	Peer      string
	Addr      ma.Multiaddr
	Err       error
}

func (e *UpgradeError) Error() string {
	return fmt.Sprintf("%s upgrade with %s at %s: %s failed: %v", e.Direction, e.Peer, e.Addr, e.Step, e.Err)
}

// Unwrap returns the cause.
func (e *UpgradeError) Unwrap() error { return e.Err }

// secureInbound answers the dialer's security proposals and runs the
// handshake of the protocol agreed.
func (u *Upgrader) secureInbound(ctx context.Context, raw net.Conn, p peer.ID) (sec.Conn, error) {
	_, st, err := u.secRouter.Negotiate(raw)
	if err != nil {
		return nil, fmt.Errorf("negotiating security: %w", err)
	}
	return st.SecureInbound(ctx, raw, p)
}

// secureOutbound proposes our security protocols to p, the known-good
// one first and lazily, and runs the handshake of the one p takes. When
// p refuses the lazy proposal, it closes that connection, redials once
// and offers the others there. It returns the secured connection with
// the raw connection and local address under it, which the redial may
// have changed (laddr is raw's); cur always holds the raw connection in
// use.
func (u *Upgrader) secureOutbound(ctx context.Context, cur *currentConn, redial Redial, p peer.ID, laddr ma.Multiaddr) (sec.Conn, net.Conn, ma.Multiaddr, error) {
	raw := cur.get()
	order := u.outboundOrder(p)
	sconn, err := secureLazy(ctx, raw, order[0], p)
	if err == nil {
		u.learn(p, sconn, order[0].ID())
		return sconn, raw, laddr, nil
	}
	if !errors.Is(err, multistream.ErrNotSupported) {
		return nil, nil, nil, err
	}
	u.forget(p) // what p took last time, if anything, is stale
	if len(order) == 1 || redial == nil {
		return nil, nil, nil, refusedError(order[:1])
	}
	// The listener took our pipelined handshake bytes for a proposal and
	// is closing this connection: offer the others on a fresh one.
	raw.Close()
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	raw, laddr, err = redial(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("peer refused %s; redialing to offer %s: %w", order[0].ID(), idList(order[1:]), err)
	}
	cur.set(raw)
	setCtxDeadline(ctx, raw)
	rest := order[1:]
	var id protocol.ID
	if len(rest) == 1 {
		// Nothing follows the last choice, so it may be proposed lazily
		// too: a refusal ends the dial either way.
		id = rest[0].ID()
		sconn, err = secureLazy(ctx, raw, rest[0], p)
	} else {
		id, sconn, err = secureSelect(ctx, raw, rest, p)
	}
	if errors.Is(err, multistream.ErrNotSupported) {
		return nil, nil, nil, refusedError(order)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	u.learn(p, sconn, id)
	return sconn, raw, laddr, nil
}

// secureLazy runs st's outbound handshake on raw, proposing st with the
// first handshake message. An error matches multistream.ErrNotSupported
// exactly when the listener refused st.
func secureLazy(ctx context.Context, raw net.Conn, st sec.Transport, p peer.ID) (sec.Conn, error) {
	lc := &lazyConn{Conn: raw, lazy: multistream.NewLazyClient(raw, st.ID())}
	sconn, err := st.SecureOutbound(ctx, lc, p)
	if err != nil && lc.refused.Load() && !errors.Is(err, multistream.ErrNotSupported) {
		// The handshake reported the refusal in its own words.
		err = fmt.Errorf("%w (%w)", &multistream.NotSupportedError{Protocols: []protocol.ID{st.ID()}}, err)
	}
	return sconn, err
}

// secureSelect negotiates one of sts with multistream-select on raw,
// waiting for each answer, then runs its handshake. It returns the
// protocol agreed.
func secureSelect(ctx context.Context, raw net.Conn, sts []sec.Transport, p peer.ID) (protocol.ID, sec.Conn, error) {
	ids := make([]protocol.ID, len(sts))
	for i, st := range sts {
		ids[i] = st.ID()
	}
	id, err := multistream.SelectOneOf(ids, raw)
	if err != nil {
		return "", nil, err
	}
	for _, st := range sts {
		if st.ID() == id {
			sconn, err := st.SecureOutbound(ctx, raw, p)
			return id, sconn, err
		}
	}
	return "", nil, fmt.Errorf("%w: %q", multistream.ErrUnexpectedResponse, id)
}

// refusedError is the error of a dial whose peer refused every
// protocol in offered.
func refusedError(offered []sec.Transport) error {
	ids := make([]protocol.ID, len(offered))
	for i, st := range offered {
		ids[i] = st.ID()
	}
	return fmt.Errorf("security protocols refused by peer: offered %s: %w", idList(offered), &multistream.NotSupportedError{Protocols: ids})
}

// idList names security protocols for an error: "/noise, /tls/1.0.0".
func idList(sts []sec.Transport) string {
	var b strings.Builder
	for i, st := range sts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(st.ID()))
	}
	return b.String()
}

// outboundOrder returns our security protocols in the order to propose
// them to p: the one p took after a fallback first, then the others in
// order of preference.
func (u *Upgrader) outboundOrder(p peer.ID) []sec.Transport {
	u.knownMu.Lock()
	id, ok := u.known[p]
	u.knownMu.Unlock()
	if !ok {
		return u.cfg.Security
	}
	order := make([]sec.Transport, 0, len(u.cfg.Security))
	for _, st := range u.cfg.Security {
		if st.ID() == id {
			order = append(order, st)
		}
	}
	for _, st := range u.cfg.Security {
		if st.ID() != id {
			order = append(order, st)
		}
	}
	return order
}

// learn records that p took the security protocol id on sconn, an
// outbound connection: remembered when it is not our first choice,
// forgotten when it is. Nothing is learnt unless sconn's remote proved
// to be p.
func (u *Upgrader) learn(p peer.ID, sconn sec.Conn, id protocol.ID) {
	if sconn.RemotePeer() != p {
		return
	}
	u.knownMu.Lock()
	defer u.knownMu.Unlock()
	if id == u.secIDs[0] {
		delete(u.known, p)
		return
	}
	if old, ok := u.known[p]; ok && old == id {
		return
	}
	if len(u.known) >= MaxKnownSecurity {
		for q := range u.known { // an arbitrary entry: map order is random
			delete(u.known, q)
			break
		}
	}
	u.known[p] = id
}

// forget drops what we remembered about p.
func (u *Upgrader) forget(p peer.ID) {
	u.knownMu.Lock()
	defer u.knownMu.Unlock()
	delete(u.known, p)
}

// currentConn holds the raw connection an upgrade is using, so that the
// context's end can expire it even after a fallback has replaced it.
type currentConn struct {
	mu      sync.Mutex // guards the following
	conn    net.Conn
	expired bool
}

// pastDeadline fails reads and writes at once.
var pastDeadline = time.Unix(1, 0)

func (c *currentConn) get() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// set makes conn the connection in use, expiring it if the context has
// already ended.
func (c *currentConn) set(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	if c.expired {
		conn.SetDeadline(pastDeadline)
	}
}

// expire fails every read and write on the connection in use, now and
// after set.
func (c *currentConn) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expired = true
	c.conn.SetDeadline(pastDeadline)
}

// setCtxDeadline gives conn the context's deadline, if it has one.
func setCtxDeadline(ctx context.Context, conn net.Conn) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
}

// negotiateMuxer picks a multiplexer with multistream-select.
func (u *Upgrader) negotiateMuxer(sconn sec.Conn, dir network.Direction) (protocol.ID, network.Multiplexer, error) {
	if dir == network.DirOutbound {
		id, err := multistream.SelectOneOf(u.muxIDs, sconn)
		if err != nil {
			return "", nil, err
		}
		for _, m := range u.cfg.Muxers {
			if m.ID == id {
				return id, m.Mux, nil
			}
		}
		return "", nil, fmt.Errorf("%w: %s", ErrUnknownMuxer, id)
	}
	id, mux, err := u.muxRouter.Negotiate(sconn)
	return id, mux, err
}

// lazyConn is a net.Conn whose reads and writes go through a lazy
// multistream-select client, and whose other methods reach the socket.
type lazyConn struct {
	net.Conn
	lazy    *multistream.LazyConn
	refused atomic.Bool // a Read saw the listener refuse the proposal
}

func (c *lazyConn) Read(b []byte) (int, error) {
	n, err := c.lazy.Read(b)
	if err != nil && errors.Is(err, multistream.ErrNotSupported) {
		c.refused.Store(true)
	}
	return n, err
}

func (c *lazyConn) Write(b []byte) (int, error) { return c.lazy.Write(b) }

// Conn is an upgraded connection: a multiplexed connection that knows
// its peers, addresses, security and resource scope.
type Conn struct {
	network.MuxedConn

	sconn        sec.Conn
	scope        network.ConnManagementScope
	laddr, raddr ma.Multiaddr
	state        network.ConnectionState
	closeOnce    sync.Once
}

var _ transport.CapableConn = (*Conn)(nil)

// Close closes the multiplexer and the socket and releases the
// connection's resources.
func (c *Conn) Close() error {
	err := c.MuxedConn.Close()
	c.closeOnce.Do(c.scope.Done)
	return err
}

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.sconn.LocalPeer() }

// RemotePeer returns the authenticated remote peer ID.
func (c *Conn) RemotePeer() peer.ID { return c.sconn.RemotePeer() }

// RemotePublicKey returns the remote peer's public key.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.sconn.RemotePublicKey() }

// ConnState returns the transport, security protocol and multiplexer of
// the connection.
func (c *Conn) ConnState() network.ConnectionState { return c.state }

// LocalMultiaddr returns our end's address.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.laddr }

// RemoteMultiaddr returns the remote end's address.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// Scope returns the connection's resource scope.
func (c *Conn) Scope() network.ConnScope { return c.scope }
