package connmgr

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeNet hands connections to a manager's notifee as a swarm would: a
// closed connection fires Disconnected.
type fakeNet struct {
	network.Network // nil: the notifee does not use it
	n               network.Notifiee

	mu    sync.Mutex
	conns []*fakeConn
}

func newFakeNet(m *Manager) *fakeNet { return &fakeNet{n: m.Notifee()} }

var connIDs atomic.Uint64

// fakeConn is the part of a network.Conn the manager uses.
type fakeConn struct {
	network.Conn // nil: calling anything else panics
	net          *fakeNet
	p            peer.ID
	id           string
	raddr        ma.Multiaddr
	streams      int
	closed       atomic.Bool
}

func (c *fakeConn) RemotePeer() peer.ID           { return c.p }
func (c *fakeConn) ID() string                    { return c.id }
func (c *fakeConn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }
func (c *fakeConn) IsClosed() bool                { return c.closed.Load() }
func (c *fakeConn) GetStreams() []network.Stream  { return make([]network.Stream, c.streams) }
func (c *fakeConn) Close() error {
	if !c.closed.Swap(true) {
		c.net.n.Disconnected(c.net, c)
	}
	return nil
}

// connect opens a connection to p.
func (f *fakeNet) connect(p peer.ID) *fakeConn {
	n := connIDs.Add(1)
	c := &fakeConn{net: f, p: p, id: fmt.Sprint(n), raddr: ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+n%60000))}
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
	f.n.Connected(f, c)
	return c
}

// open counts the connections not closed, and those of each peer.
func (f *fakeNet) open() (n int, byPeer map[peer.ID]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	byPeer = map[peer.ID]int{}
	for _, c := range f.conns {
		if !c.IsClosed() {
			n++
			byPeer[c.p]++
		}
	}
	return n, byPeer
}

func peerN(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%04d", i)) }

func newManager(t *testing.T, low, high int, opts ...Option) *Manager {
	t.Helper()
	m, err := New(low, high, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func trimNow(m *Manager) { m.TrimOpenConns(context.Background()) }
