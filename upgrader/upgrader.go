// Package upgrader turns a raw connection into a libp2p connection:
// multistream-select picks a security protocol, its handshake proves the
// remote's identity, the connection moves to the peer's resource scope,
// and a stream multiplexer is agreed (inside the handshake when both
// sides support early negotiation, otherwise by multistream-select).
//
// On the dialing side the security protocol is proposed lazily: the
// multistream-select header and proposal travel in the same packet as
// the first handshake message, saving a round trip.
//
// It may import transport, multistream, sec, network and the vocabulary
// packages. It never imports a particular security protocol or
// multiplexer: they are handed to it.
package upgrader

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

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
	// their handshake at once; the accept loop waits beyond it.
	DefaultMaxInflightInbound = 64
	// DefaultAcceptQueue is how many upgraded inbound connections may wait
	// for Accept.
	DefaultAcceptQueue = 16
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

// Muxer is a stream multiplexer and its protocol ID.
type Muxer struct {
	ID  protocol.ID
	Mux network.Multiplexer
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
	// MaxInflightInbound bounds concurrent inbound handshakes; 0 means
	// DefaultMaxInflightInbound.
	MaxInflightInbound int
}

// Upgrader upgrades raw connections. It is safe for concurrent use.
type Upgrader struct {
	cfg       Config
	secIDs    []protocol.ID
	muxIDs    []protocol.ID
	secRouter multistream.Router[sec.Transport]
	muxRouter multistream.Router[network.Multiplexer]
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
	u := &Upgrader{cfg: cfg}
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

// Upgrade secures and multiplexes raw. dir says who dialed; for an
// outbound connection p is the peer that must answer, for an inbound one
// it may be empty. scope is the connection's resource scope, fresh from
// OpenConnection; Upgrade moves it to the peer's scope.
//
// Upgrade owns raw and scope: when it fails, it has closed raw and ended
// scope.
func (u *Upgrader) Upgrade(ctx context.Context, raw net.Conn, dir network.Direction, p peer.ID,
	scope network.ConnManagementScope, laddr, raddr ma.Multiaddr, transportName string) (_ *Conn, err error) {
	defer func() {
		if err != nil {
			raw.Close()
			scope.Done()
		}
	}()
	if dir == network.DirOutbound && p == "" {
		return nil, ErrNoPeer
	}

	// A cancelled context unblocks the handshake by expiring the socket.
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		raw.SetDeadline(d)
	}

	sconn, err := u.secure(ctx, raw, dir, p)
	if err != nil {
		return nil, u.fail(ctx, "security handshake", dir, p, raddr, err)
	}
	remote := sconn.RemotePeer()
	if dir == network.DirOutbound && remote != p {
		return nil, u.fail(ctx, "security handshake", dir, p, raddr, &sec.MismatchError{Expected: p, Actual: remote})
	}
	if err := scope.SetPeer(remote); err != nil {
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

// secure negotiates the security protocol and runs its handshake.
func (u *Upgrader) secure(ctx context.Context, raw net.Conn, dir network.Direction, p peer.ID) (sec.Conn, error) {
	if dir == network.DirOutbound {
		// Propose our first choice lazily: the proposal rides with the
		// first handshake message.
		st := u.cfg.Security[0]
		lc := &lazyConn{Conn: raw, lazy: multistream.NewLazyClient(raw, st.ID())}
		return st.SecureOutbound(ctx, lc, p)
	}
	_, st, err := u.secRouter.Negotiate(raw)
	if err != nil {
		return nil, fmt.Errorf("negotiating security: %w", err)
	}
	return st.SecureInbound(ctx, raw, p)
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
	lazy *multistream.LazyConn
}

func (c *lazyConn) Read(b []byte) (int, error)  { return c.lazy.Read(b) }
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
