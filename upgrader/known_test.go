package upgrader

import (
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
)

// authedConn is a sec.Conn that only knows its remote peer.
type authedConn struct {
	sec.Conn
	remote peer.ID
}

func (c authedConn) RemotePeer() peer.ID { return c.remote }

func newTestUpgrader(t *testing.T) *Upgrader {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, err := noise.New(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := tls.New(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(Config{Security: []sec.Transport{n, tl}, Muxers: []Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func firstID(u *Upgrader, p peer.ID) protocol.ID { return u.outboundOrder(p)[0].ID() }

// TestKnownSecurity: what a peer took is remembered only for the peer
// that proved its ID, forgotten when it takes our first choice again,
// and the memory is bounded; concurrent use is safe.
func TestKnownSecurity(t *testing.T) {
	u := newTestUpgrader(t)
	u.learn("A", authedConn{remote: "A"}, tls.ID)
	if got := firstID(u, "A"); got != tls.ID {
		t.Errorf("A is proposed %s first; want %s", got, tls.ID)
	}
	if got := u.outboundOrder("A"); len(got) != 2 || got[1].ID() != noise.ID {
		t.Errorf("order for A: %v", got)
	}
	if got := firstID(u, "B"); got != noise.ID {
		t.Errorf("B is proposed %s first; want our first choice", got)
	}
	// A connection authenticated as someone else teaches nothing.
	u.learn("B", authedConn{remote: "C"}, tls.ID)
	if got := firstID(u, "B"); got != noise.ID {
		t.Errorf("B learnt from a connection to C")
	}
	u.learn("A", authedConn{remote: "A"}, noise.ID)
	if got := firstID(u, "A"); got != noise.ID || len(u.known) != 0 {
		t.Errorf("A still proposed %s first; %d peers remembered", got, len(u.known))
	}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range MaxKnownSecurity {
				p := peer.ID(fmt.Sprintf("peer-%d-%d", g, i))
				u.learn(p, authedConn{remote: p}, tls.ID)
				u.outboundOrder(p)
			}
		})
	}
	wg.Wait()
	if n := len(u.known); n != MaxKnownSecurity {
		t.Errorf("%d peers remembered; want at most %d", n, MaxKnownSecurity)
	}
}
