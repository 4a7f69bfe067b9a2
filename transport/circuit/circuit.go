// Package circuit is the circuit relay v2 transport: it dials
// /…/p2p/RELAY/p2p-circuit/p2p/TARGET addresses by asking the relay
// (hop protocol, CONNECT) to join us to TARGET, and accepts the circuits
// a relay opens to us (stop protocol) once listening on /p2p-circuit.
// The circuit is a stream of our connection to the relay; it is secured
// and multiplexed by the upgrader like a TCP socket. When the relay
// announced a limit, the connection's Stat().Limited is true, so that
// the swarm refuses streams on it unless the context allows limited
// connections, and prefers any direct connection to the same peer.
//
// Reservations (telling a relay to accept circuits for us) are made by
// [Reserve]; the host keeps them fresh.
//
// Package circuit may import network, peer, peerstore, protocol,
// transport, upgrader, proto/relay (for the wire messages) and what
// those import.
package circuit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// Name is the transport's name in network.ConnectionState.
const Name = "p2p-circuit"

// HandshakeTimeout bounds the hop and stop exchanges when the context
// has no deadline.
const HandshakeTimeout = time.Minute

// Errors of the transport.
var (
	// ErrNotCircuit is the error of an address that is not a circuit
	// address through a named relay.
	ErrNotCircuit = errors.New("circuit: not a /p2p/RELAY/p2p-circuit address")
	// ErrClosed is the error of a closed listener or transport.
	ErrClosed = fmt.Errorf("circuit: closed: %w", net.ErrClosed)
)

// Host is what the transport needs of a libp2p host: a way to reach the
// relay and to serve the stop protocol.
type Host interface {
	// Connect makes sure we are connected to pi.ID, dialing pi.Addrs.
	Connect(ctx context.Context, pi peer.AddrInfo) error
	// NewStream opens a stream to p for the first of pids.
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
}

// Transport dials and accepts relayed connections.
type Transport struct {
	h     Host
	u     *upgrader.Upgrader
	rcmgr network.ResourceManager

	mu       sync.Mutex // guards the following
	listener *Listener  // the one /p2p-circuit listener, or nil
}

var _ transport.Transport = (*Transport)(nil)

// New returns a transport reaching relays through h, upgrading circuits
// with u and accounting them in rcmgr (nil: network.NullResourceManager).
func New(h Host, u *upgrader.Upgrader, rcmgr network.ResourceManager) *Transport {
	if rcmgr == nil {
		rcmgr = &network.NullResourceManager{}
	}
	return &Transport{h: h, u: u, rcmgr: rcmgr}
}

// Protocols returns ma.P_CIRCUIT.
func (t *Transport) Protocols() []int { return []int{ma.P_CIRCUIT} }

// Close stops accepting circuits.
func (t *Transport) Close() error {
	t.mu.Lock()
	l := t.listener
	t.mu.Unlock()
	if l != nil {
		l.Close()
	}
	return nil
}

// splitCircuit splits a circuit address into the relay's address
// (without its /p2p), the relay's ID and the target's ID (empty when
// the address ends with /p2p-circuit).
func splitCircuit(a ma.Multiaddr) (relayAddr ma.Multiaddr, relayID, target peer.ID, err error) {
	i := -1
	for j, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			i = j
			break
		}
	}
	if i < 1 || a[i-1].Code() != ma.P_P2P {
		return nil, "", "", ErrNotCircuit
	}
	relayID, err = peer.IDFromBytes(a[i-1].RawValue())
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: relay ID: %w", ErrNotCircuit, err)
	}
	rest := a[i+1:]
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && rest[0].Code() == ma.P_P2P:
		target, err = peer.IDFromBytes(rest[0].RawValue())
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: target ID: %w", ErrNotCircuit, err)
		}
	default:
		return nil, "", "", fmt.Errorf("%w: %s after /p2p-circuit", ErrNotCircuit, rest)
	}
	return a[: i-1 : i-1], relayID, target, nil
}

// CanDial reports whether addr is /…/p2p/RELAY/p2p-circuit, with or
// without a /p2p/TARGET.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	_, _, _, err := splitCircuit(addr)
	return err == nil
}

// Dial reaches p through the relay named in raddr: it connects to the
// relay if needed, asks it to connect us to p, and upgrades the circuit.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	relayAddr, relayID, target, err := splitCircuit(raddr)
	if err != nil {
		return nil, err
	}
	if target != "" && target != p {
		return nil, fmt.Errorf("circuit: address of %s dialed for %s", target, p)
	}
	raddr = withoutTarget(raddr)
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, false, raddr)
	if err != nil {
		return nil, fmt.Errorf("circuit: %w", err)
	}
	if len(relayAddr) > 0 {
		if err := t.h.Connect(ctx, peer.AddrInfo{ID: relayID, Addrs: []ma.Multiaddr{relayAddr}}); err != nil {
			scope.Done()
			return nil, fmt.Errorf("circuit: connecting to relay %s: %w", relayID, err)
		}
	}
	raw, lim, err := t.connect(ctx, relayID, p)
	if err != nil {
		scope.Done()
		return nil, err
	}
	redial := func(ctx context.Context) (net.Conn, ma.Multiaddr, error) {
		c, _, err := t.connect(ctx, relayID, p)
		if err != nil {
			return nil, nil, err
		}
		return c, circuitMultiaddr(relayID), nil
	}
	c, err := t.u.UpgradeOutbound(ctx, raw, redial, p, scope, circuitMultiaddr(relayID), raddr, Name)
	if err != nil {
		return nil, err // UpgradeOutbound released raw and scope.
	}
	return &Conn{Conn: c, limit: lim}, nil
}

func withoutTarget(a ma.Multiaddr) ma.Multiaddr {
	if n := len(a); n > 0 && a[n-1].Code() == ma.P_P2P && n >= 2 && a[n-2].Code() == ma.P_CIRCUIT {
		return a[: n-1 : n-1]
	}
	return a
}

// connect sends CONNECT for p to the relay and returns the circuit.
func (t *Transport) connect(ctx context.Context, relayID, p peer.ID) (*streamConn, *relay.Limit, error) {
	s, err := t.h.NewStream(ctx, relayID, relay.ProtoHop)
	if err != nil {
		return nil, nil, fmt.Errorf("circuit: hop stream to relay %s: %w", relayID, err)
	}
	setHandshakeDeadline(ctx, s)
	if err := relay.WriteMessage(s, &relay.HopMessage{Type: relay.HopConnect, Peer: &relay.Peer{ID: p}}); err != nil {
		s.Reset()
		return nil, nil, fmt.Errorf("circuit: connect request to relay %s: %w", relayID, err)
	}
	var resp relay.HopMessage
	if err := relay.ReadMessage(s, &resp); err != nil {
		s.Reset()
		return nil, nil, fmt.Errorf("circuit: connect answer of relay %s: %w", relayID, err)
	}
	if resp.Type != relay.HopStatus {
		s.Reset()
		return nil, nil, fmt.Errorf("circuit: relay %s answered connect with hop message type %d: %w", relayID, resp.Type, relay.ErrMalformed)
	}
	if resp.Status != relay.StatusOK {
		s.Close()
		return nil, nil, fmt.Errorf("circuit: through relay %s to %s: %w", relayID, p, &relay.StatusError{Status: resp.Status, Op: "connect"})
	}
	s.SetDeadline(time.Time{})
	return newStreamConn(s, relayID), resp.Limit, nil
}

func setHandshakeDeadline(ctx context.Context, s network.Stream) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(HandshakeTimeout)
	}
	s.SetDeadline(d)
}

// Listen listens on /p2p-circuit: it serves the stop protocol, and
// Accept returns the circuits relays open to us. One listener at a
// time.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	if len(laddr) != 1 || laddr[0].Code() != ma.P_CIRCUIT {
		return nil, fmt.Errorf("circuit: can listen only on /p2p-circuit, not %s", laddr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.listener != nil {
		return nil, errors.New("circuit: already listening")
	}
	l := &Listener{t: t, addr: laddr, conns: make(chan *Conn), done: make(chan struct{})}
	t.listener = l
	t.h.SetStreamHandler(relay.ProtoStop, l.handleStop)
	return l, nil
}

// Listener accepts relayed connections.
type Listener struct {
	t         *Transport
	addr      ma.Multiaddr
	conns     chan *Conn
	done      chan struct{}
	closeOnce sync.Once
}

var _ transport.Listener = (*Listener)(nil)

// Accept returns the next relayed connection, upgraded.
func (l *Listener) Accept() (transport.CapableConn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close stops accepting circuits.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.t.mu.Lock()
		if l.t.listener == l {
			l.t.listener = nil
		}
		l.t.mu.Unlock()
		l.t.h.RemoveStreamHandler(relay.ProtoStop)
	})
	return nil
}

// Addr returns a net.Addr for /p2p-circuit.
func (l *Listener) Addr() net.Addr { return circuitAddr{l.addr} }

// Multiaddr returns /p2p-circuit.
func (l *Listener) Multiaddr() ma.Multiaddr { return l.addr }

// handleStop serves a relay's stop stream: it accepts the circuit and
// upgrades it as an inbound connection.
func (l *Listener) handleStop(s network.Stream) {
	relayID := s.Conn().RemotePeer()
	s.SetDeadline(time.Now().Add(HandshakeTimeout))
	var msg relay.StopMessage
	if err := relay.ReadMessage(s, &msg); err != nil {
		stopRefuse(s, relay.StatusMalformedMessage, err)
		return
	}
	if msg.Type != relay.StopConnect {
		stopRefuse(s, relay.StatusUnexpectedMessage, fmt.Errorf("stop message of type %d", msg.Type))
		return
	}
	if msg.Peer == nil {
		stopRefuse(s, relay.StatusMalformedMessage, errors.New("stop connect without a peer"))
		return
	}
	select {
	case <-l.done:
		stopRefuse(s, relay.StatusConnectionFailed, ErrClosed)
		return
	default:
	}
	src := msg.Peer.ID
	raddr := circuitMultiaddr(relayID)
	scope, err := l.t.rcmgr.OpenConnection(network.DirInbound, false, raddr)
	if err != nil {
		stopRefuse(s, relay.StatusResourceLimitExceeded, err)
		return
	}
	if err := relay.WriteMessage(s, &relay.StopMessage{Type: relay.StopStatus, Status: relay.StatusOK}); err != nil {
		scope.Done()
		s.Reset()
		return
	}
	s.SetDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	defer cancel()
	go func() { // closing the listener cuts the handshake short
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	c, err := l.t.u.Upgrade(ctx, newStreamConn(s, relayID), network.DirInbound, "", scope, raddr, raddr, Name)
	if err != nil {
		slog.Debug("circuit: inbound upgrade failed", "relay", relayID, "from", src, "err", err)
		return // Upgrade released the stream and the scope.
	}
	if c.RemotePeer() != src {
		slog.Debug("circuit: relay named another initiator", "relay", relayID, "named", src, "actual", c.RemotePeer())
		c.Close()
		return
	}
	conn := &Conn{Conn: c, limit: msg.Limit}
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	}
}

// stopRefuse answers a stop request with status and closes the stream.
func stopRefuse(s network.Stream, status relay.Status, why error) {
	slog.Debug("circuit: stop request refused", "relay", s.Conn().RemotePeer(), "status", status, "err", why)
	if err := relay.WriteMessage(s, &relay.StopMessage{Type: relay.StopStatus, Status: status}); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// circuitMultiaddr returns /p2p/RELAY/p2p-circuit.
func circuitMultiaddr(relayID peer.ID) ma.Multiaddr {
	a, err := ma.NewMultiaddr("/p2p/" + relayID.String() + "/p2p-circuit")
	if err != nil {
		return nil
	}
	return a
}

// Conn is a relayed connection.
type Conn struct {
	*upgrader.Conn
	limit *relay.Limit
}

var _ transport.CapableConn = (*Conn)(nil)

// Stat reports the connection as Limited when the relay announced a
// limit.
func (c *Conn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Limited: c.limit != nil}}
}

// Limit returns what the relay allows the circuit (zero: no limit).
func (c *Conn) Limit() (d time.Duration, data int64) {
	if c.limit == nil {
		return 0, 0
	}
	return time.Duration(c.limit.Duration) * time.Second, int64(c.limit.Data)
}
