package flood

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"
)

// attacker is a misbehaving peer built from the layers below the swarm:
// a TCP transport with Noise and yamux, and no resource manager. Unlike a
// host, it opens a new connection on every dial, serves nothing (it
// resets every stream the victim opens, identify's included) and opens
// streams only when told to, so the victim sees nothing of it but the
// flood.
type attacker struct {
	id peer.ID
	tr *tcp.Transport

	wg sync.WaitGroup // counts the connections' accept loops

	mu    sync.Mutex // guards the following
	conns []*attackConn
}

func newAttacker(t testing.TB) *attacker {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := noise.New(priv, []protocol.ID{yamux.ID})
	if err != nil {
		t.Fatal(err)
	}
	u, err := upgrader.New(upgrader.Config{
		Security: []sec.Transport{st},
		Muxers:   []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
	})
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{id: id, tr: tcp.New(u, nil)}
	t.Cleanup(a.close)
	return a
}

// attackConn is one of the attacker's connections.
type attackConn struct {
	transport.CapableConn
	// dropped is closed once the connection has ended, by either side.
	dropped chan struct{}
}

// dial opens a new connection to the victim. The victim may still refuse
// it after dial returns: the dialer's side of the handshake ends first.
func (a *attacker) dial(ctx context.Context, victim peer.AddrInfo) (*attackConn, error) {
	tc, err := a.tr.Dial(ctx, victim.Addrs[0], victim.ID)
	if err != nil {
		return nil, err
	}
	c := &attackConn{CapableConn: tc, dropped: make(chan struct{})}
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	a.wg.Go(func() {
		defer close(c.dropped)
		for {
			s, err := tc.AcceptStream()
			if err != nil {
				return
			}
			s.Reset()
		}
	})
	return c, nil
}

// stream opens a stream speaking proto; the proposal travels with the
// first write.
func (c *attackConn) stream(ctx context.Context, proto protocol.ID) (*attackStream, error) {
	ms, err := c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return &attackStream{LazyConn: multistream.NewLazyClient(ms, proto), ms: ms}, nil
}

// attackStream is a stream of the attacker, negotiated lazily.
type attackStream struct {
	*multistream.LazyConn
	ms network.MuxedStream
}

// Reset resets the stream.
func (s *attackStream) Reset() { s.ms.Reset() }

// close closes every connection and waits for their accept loops.
func (a *attacker) close() {
	a.mu.Lock()
	conns := a.conns
	a.conns = nil
	a.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	a.wg.Wait()
}
