package upgrader

import (
	"log/slog"
	"net"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/sec"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// connAddrs is a network.ConnMultiaddrs of two addresses.
type connAddrs struct{ laddr, raddr ma.Multiaddr }

func (c connAddrs) LocalMultiaddr() ma.Multiaddr  { return c.laddr }
func (c connAddrs) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// gateAccept asks the gater whether raw, just accepted, may start its
// handshake; when not, it closes raw (with a reset, as for the other
// refusals before a handshake) and returns false.
func (l *Listener) gateAccept(raw net.Conn) bool {
	g := l.u.cfg.ConnectionGater
	if g == nil {
		return true
	}
	raddr, err := remoteMultiaddr(raw)
	if err != nil {
		return true // upgrade refuses it
	}
	if g.InterceptAccept(connAddrs{l.laddr, raddr}) {
		return true
	}
	slog.Debug("inbound connection refused", "from", raddr,
		"err", &connmgr.GatedError{Hook: connmgr.HookAccept, Addr: raddr})
	if tc, ok := raw.(lingerer); ok {
		tc.SetLinger(0)
	}
	raw.Close()
	return false
}

// lingerer is a connection whose socket can be told to reset on Close:
// *net.TCPConn, and the WebSocket transport's connections.
type lingerer interface{ SetLinger(sec int) error }

// remoteMultiaddr returns the address of raw's remote end: what raw says
// when it knows more than its net.Addr tells (a WebSocket connection is
// /…/tcp/N/ws), else its net.Addr as a multiaddr.
func remoteMultiaddr(raw net.Conn) (ma.Multiaddr, error) {
	if c, ok := raw.(interface{ RemoteMultiaddr() ma.Multiaddr }); ok {
		return c.RemoteMultiaddr(), nil
	}
	return manet.FromNetAddr(raw.RemoteAddr())
}

// gateSecured asks the gater whether the connection, secured with the
// remote peer known, may go on.
func (u *Upgrader) gateSecured(dir network.Direction, sconn sec.Conn, laddr, raddr ma.Multiaddr) error {
	g := u.cfg.ConnectionGater
	if g == nil || g.InterceptSecured(dir, sconn.RemotePeer(), connAddrs{laddr, raddr}) {
		return nil
	}
	return &connmgr.GatedError{Hook: connmgr.HookSecured, Peer: sconn.RemotePeer(), Addr: raddr}
}
