package websocket_test

import (
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport/websocket"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// refuseAccepts is a connection gater that refuses every inbound
// connection before its handshake, recording the addresses it was asked
// about.
type refuseAccepts struct {
	mu    sync.Mutex // guards addrs
	addrs []ma.Multiaddr
}

func (*refuseAccepts) InterceptPeerDial(peer.ID) bool               { return true }
func (*refuseAccepts) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (*refuseAccepts) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (*refuseAccepts) InterceptUpgraded(network.Conn) (bool, connmgr.DisconnectReason) {
	return true, 0
}
func (g *refuseAccepts) InterceptAccept(a network.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addrs = append(g.addrs, a.RemoteMultiaddr())
	return false
}

// TestGaterRefusal: the connection gater sees an inbound connection's
// WebSocket address before its handshake, and a refusal resets the
// socket (no TIME_WAIT left behind), as for TCP.
func TestGaterRefusal(t *testing.T) {
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := noise.New(priv, []protocol.ID{yamux.ID})
	if err != nil {
		t.Fatal(err)
	}
	g := &refuseAccepts{}
	u, err := upgrader.New(upgrader.Config{
		Security:        []sec.Transport{st},
		Muxers:          []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
		ConnectionGater: g,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := websocket.New(u, nil)
	l, err := tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0/ws"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The reset may come before the dial returns.
	var from string
	c, err := net.Dial("tcp4", l.Addr().String())
	if err == nil {
		from = c.LocalAddr().String()
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("dialing a listener that refuses: %v; want a reset", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.addrs) != 1 || g.addrs[0][len(g.addrs[0])-1].Code() != ma.P_WS ||
		(from != "" && g.addrs[0].String() != "/ip4/"+strings.Replace(from, ":", "/tcp/", 1)+"/ws") {
		t.Errorf("the gater was asked about %v; want the dialer's /ws address (%s)", g.addrs, from)
	}
}
