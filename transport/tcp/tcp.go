// Package tcp is the TCP transport: it dials and listens on
// /ip4|ip6/…/tcp/N addresses and hands the raw connections to the
// upgrader, which secures and multiplexes them.
//
// Sockets set SO_REUSEPORT, and a dial leaves from the port we listen on
// when there is one, so the remote observes our listen address (which
// hole punching needs). DNS names are resolved by the swarm before a
// dial reaches this package.
//
// It may import network, transport, upgrader and the vocabulary packages.
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/sys/unix"
)

// Name is the transport's name in network.ConnectionState.
const Name = "tcp"

// DefaultKeepAlive is the TCP keep-alive period of every connection.
const DefaultKeepAlive = 15 * time.Second

// Transport is the TCP transport.
type Transport struct {
	upgrader *upgrader.Upgrader
	rcmgr    network.ResourceManager

	tuples *tuples // four-tuples of our listen ports in use or closed lately

	mu        sync.Mutex       // guards the following
	listening map[int][]string // family (4 or 6) → host:port of our listeners
}

var _ transport.Transport = (*Transport)(nil)

// New returns a TCP transport that upgrades its connections with u and
// accounts for them in rcmgr (nil means network.NullResourceManager).
func New(u *upgrader.Upgrader, rcmgr network.ResourceManager) *Transport {
	if rcmgr == nil {
		rcmgr = &network.NullResourceManager{}
	}
	return &Transport{upgrader: u, rcmgr: rcmgr, tuples: newTuples(), listening: map[int][]string{}}
}

// Protocols returns ma.P_TCP.
func (t *Transport) Protocols() []int { return []int{ma.P_TCP} }

// CanDial reports whether addr is exactly /ip4|ip6/IP/tcp/PORT.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	_, _, err := tcpAddr(addr)
	return err == nil
}

// ErrUnsupportedAddr is returned for addresses that are not plain TCP
// addresses.
var ErrUnsupportedAddr = errors.New("tcp: not a /ip4|ip6/…/tcp/N address")

// tcpAddr checks that a is /ip4|ip6/IP/tcp/PORT and converts it.
func tcpAddr(a ma.Multiaddr) (*net.TCPAddr, int, error) {
	if len(a) != 2 || a[1].Code() != ma.P_TCP {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	var family int
	switch a[0].Code() {
	case ma.P_IP4:
		family = 4
	case ma.P_IP6:
		family = 6
	default:
		return nil, 0, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	na, err := manet.ToNetAddr(a)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnsupportedAddr, a, err)
	}
	ta, ok := na.(*net.TCPAddr)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	return ta, family, nil
}

// reusePort sets SO_REUSEADDR and SO_REUSEPORT on a socket before bind.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// Dial connects to p at raddr, reserving the connection in the resource
// manager first, and upgrades it. When p refuses our preferred security
// protocol, the upgrader dials raddr once more to offer the others,
// under the same reservation.
//
// Under network.WithSimultaneousConnect with isClient false (hole
// punching: the remote dials us at the same moment, and the two SYNs
// make one connection), the connection is upgraded as if it were
// inbound; see upgradeSimultaneous.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	ta, family, err := tcpAddr(raddr)
	if err != nil {
		return nil, err
	}
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, true, raddr)
	if err != nil {
		return nil, fmt.Errorf("tcp dial %s: %w", raddr, err)
	}
	sim, isClient, _ := network.GetSimultaneousConnect(ctx)
	dial := func(ctx context.Context) (net.Conn, ma.Multiaddr, error) {
		raw, laddr, err := t.dialAddr(ctx, ta, family, sim)
		if err != nil {
			return nil, nil, fmt.Errorf("tcp dial %s: %w", raddr, err)
		}
		return raw, laddr, nil
	}
	raw, laddr, err := dial(ctx)
	if err != nil {
		scope.Done()
		return nil, err
	}
	if sim && !isClient {
		return t.upgradeSimultaneous(ctx, raw, p, scope, laddr, raddr)
	}
	c, err := t.upgrader.UpgradeOutbound(ctx, raw, dial, p, scope, laddr, raddr, Name)
	if err != nil {
		return nil, err // UpgradeOutbound released raw and scope.
	}
	return c, nil
}

// upgradeSimultaneous upgrades raw, the outcome of a TCP simultaneous
// open under network.WithSimultaneousConnect with isClient false: both
// ends dialed, so the socket cannot say who is the multistream
// initiator. As DCUtR arranges (and go-libp2p does), the side told it is
// not the client takes the listener's part: it answers the security
// proposal and is the muxer's server. The other end must prove it is p.
func (t *Transport) upgradeSimultaneous(ctx context.Context, raw net.Conn, p peer.ID,
	scope network.ConnManagementScope, laddr, raddr ma.Multiaddr) (transport.CapableConn, error) {
	c, err := t.upgrader.Upgrade(ctx, raw, network.DirInbound, p, scope, laddr, raddr, Name)
	if err != nil {
		return nil, err // Upgrade released raw and scope.
	}
	if c.RemotePeer() != p {
		c.Close()
		return nil, fmt.Errorf("tcp dial %s: %w", raddr, &sec.MismatchError{Expected: p, Actual: c.RemotePeer()})
	}
	return c, nil
}

// dialAddr dials ta and returns the connection with its local address.
func (t *Transport) dialAddr(ctx context.Context, ta *net.TCPAddr, family int, punch bool) (net.Conn, ma.Multiaddr, error) {
	raw, err := t.dialRaw(ctx, ta, family, punch)
	if err != nil {
		return nil, nil, err
	}
	laddr, err := manet.FromNetAddr(raw.LocalAddr())
	if err != nil {
		raw.Close()
		return nil, nil, err
	}
	return raw, laddr, nil
}

// dialRaw dials from our listen port when we listen on the address
// family, falling back to an ephemeral port when that fails (for example
// because the 4-tuple is taken). It dials from an ephemeral port at once
// when a connection on that four-tuple is open or closed lately (see
// tuples), unless punch says the dial is a hole punch, which must leave
// from the listen port.
func (t *Transport) dialRaw(ctx context.Context, ta *net.TCPAddr, family int, punch bool) (net.Conn, error) {
	d := net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: DefaultKeepAlive, Interval: DefaultKeepAlive}}
	remote := ta.String()
	if local := t.reuseLocal(family, ta.IP.IsLoopback()); local != nil && (punch || !t.tuples.busy(canonical(ta.AddrPort()))) {
		rd := d
		rd.LocalAddr = local
		rd.Control = reusePort
		if c, err := rd.DialContext(ctx, tcpNetwork(family), remote); err == nil {
			return t.tuples.track(c), nil
		} else if ctx.Err() != nil {
			return nil, err
		}
	}
	return d.DialContext(ctx, tcpNetwork(family), remote)
}

// tcpNetwork is the Go network name of an address family: "tcp4" or
// "tcp6" (which makes an IPv6-only socket).
func tcpNetwork(family int) string {
	if family == 6 {
		return "tcp6"
	}
	return "tcp4"
}

// reuseLocal returns the local address to dial from: the port of one of
// our listeners of the family whose IP can reach the destination.
func (t *Transport) reuseLocal(family int, loopbackDst bool) *net.TCPAddr {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, hp := range t.listening[family] {
		la, err := net.ResolveTCPAddr("tcp", hp)
		if err != nil {
			continue
		}
		// A listener bound to loopback can only reach loopback; one bound
		// to a specific other IP cannot reach loopback.
		if la.IP.IsLoopback() != loopbackDst && !la.IP.IsUnspecified() {
			continue
		}
		return la
	}
	return nil
}

// Listen listens on laddr and returns a listener of upgraded
// connections.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	ta, family, err := tcpAddr(laddr)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{
		Control:         reusePort,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: DefaultKeepAlive, Interval: DefaultKeepAlive},
	}
	// tcp4 and tcp6, never plain "tcp": an unspecified IPv4 address would
	// otherwise become a dual-stack [::] socket, announced as /ip6/::, and
	// an /ip6/:: listener would also take IPv4 connections that arrive
	// with IPv4-mapped addresses.
	nl, err := lc.Listen(context.Background(), tcpNetwork(family), ta.String())
	if err != nil {
		return nil, fmt.Errorf("tcp listen %s: %w", laddr, err)
	}
	actual, err := manet.FromNetAddr(nl.Addr())
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("tcp listen %s: %w", laddr, err)
	}
	hp := nl.Addr().String()
	t.mu.Lock()
	t.listening[family] = append(t.listening[family], hp)
	t.mu.Unlock()
	l := t.upgrader.Listen(&trackingListener{nl, t.tuples}, actual, Name, func() { t.forget(family, hp) })
	return l, nil
}

// forget removes a closed listener from the reuse table.
func (t *Transport) forget(family int, hp string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.listening[family]
	for i, x := range l {
		if x == hp {
			t.listening[family] = append(l[:i:i], l[i+1:]...)
			return
		}
	}
}

// Close does nothing: the transport has no shared resources of its own.
func (t *Transport) Close() error { return nil }
