package upgrader_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/conformance"
	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type node struct {
	id   peer.ID
	priv ic.PrivKey
	u    *upgrader.Upgrader
}

// secNames are the security protocols, by the name tests use.
var secNames = []string{"noise", "tls"}

func newSecurity(t testing.TB, name string, priv ic.PrivKey, muxers []protocol.ID) sec.Transport {
	t.Helper()
	var st sec.Transport
	var err error
	switch name {
	case "noise":
		st, err = noise.New(priv, muxers)
	case "tls":
		st, err = tls.New(priv, muxers)
	default:
		t.Fatalf("unknown security %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newNode makes an upgrader with the given security protocols (in order)
// and yamux; earlyMuxers are the IDs offered inside the handshake (nil:
// none, which forces multistream-select for the muxer).
func newNode(t testing.TB, secs []string, earlyMuxers []protocol.ID, rcmgr network.ResourceManager) *node {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	var sts []sec.Transport
	for _, s := range secs {
		sts = append(sts, newSecurity(t, s, priv, earlyMuxers))
	}
	u, err := upgrader.New(upgrader.Config{
		Security:        sts,
		Muxers:          []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
		ResourceManager: rcmgr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &node{id: id, priv: priv, u: u}
}

var (
	addrA = ma.StringCast("/ip4/127.0.0.1/tcp/1")
	addrB = ma.StringCast("/ip4/127.0.0.1/tcp/2")
)

type upgraded struct {
	c   *upgrader.Conn
	err error
}

// upgradePair upgrades both ends of a raw pair concurrently: a dials b,
// expecting the peer ID want.
func upgradePair(ctx context.Context, a, b *node, ra, rb net.Conn, want peer.ID) (dialer, listener upgraded) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		dialer.c, dialer.err = a.u.Upgrade(ctx, ra, network.DirOutbound, want, &network.NullScope{}, addrA, addrB, "test")
	}()
	go func() {
		defer wg.Done()
		listener.c, listener.err = b.u.Upgrade(ctx, rb, network.DirInbound, "", &network.NullScope{}, addrB, addrA, "test")
	}()
	wg.Wait()
	return dialer, listener
}

func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-ch
	if s == nil {
		t.Fatal("accept failed")
	}
	return c, s
}

// memPair is the in-memory leg of the matrix. It buffers like a socket:
// over net.Pipe, which has no buffer at all, the dialer's pipelined
// proposal and first handshake message would wait for a reader that is
// itself waiting to answer.
func memPair(testing.TB) (net.Conn, net.Conn) { return memconn.Pair(0) }

var rawPairs = []struct {
	name string
	make func(testing.TB) (net.Conn, net.Conn)
}{{"mem", memPair}, {"tcp", tcpPair}}

// TestConformance runs the behaviour suite over {Noise, TLS} × yamux, over
// net.Pipe and loopback TCP.
func TestConformance(t *testing.T) {
	for _, secName := range secNames {
		for _, rp := range rawPairs {
			t.Run(secName+"/"+rp.name, func(t *testing.T) {
				conformance.Run(t, func(t *testing.T) conformance.Pair {
					a := newNode(t, []string{secName}, []protocol.ID{yamux.ID}, nil)
					b := newNode(t, []string{secName}, []protocol.ID{yamux.ID}, nil)
					ra, rb := rp.make(t)
					d, l := upgradePair(context.Background(), a, b, ra, rb, b.id)
					if d.err != nil || l.err != nil {
						t.Fatalf("upgrade: dialer %v, listener %v", d.err, l.err)
					}
					return conformance.Pair{Dialer: d.c, Listener: l.c, Kill: func() { rb.Close() }}
				}, conformance.Options{})
			})
		}
	}
}

func TestConnectionState(t *testing.T) {
	for _, secName := range secNames {
		for _, early := range []bool{true, false} {
			name := secName + "/early"
			var offered []protocol.ID
			if early {
				offered = []protocol.ID{yamux.ID}
			} else {
				name = secName + "/multistream"
			}
			t.Run(name, func(t *testing.T) {
				a := newNode(t, []string{secName}, offered, nil)
				b := newNode(t, []string{secName}, offered, nil)
				ra, rb := tcpPair(t)
				d, l := upgradePair(context.Background(), a, b, ra, rb, b.id)
				if d.err != nil || l.err != nil {
					t.Fatalf("upgrade: dialer %v, listener %v", d.err, l.err)
				}
				defer d.c.Close()
				defer l.c.Close()
				want := network.ConnectionState{
					StreamMultiplexer:         yamux.ID,
					Security:                  map[string]protocol.ID{"noise": noise.ID, "tls": tls.ID}[secName],
					Transport:                 "test",
					UsedEarlyMuxerNegotiation: early,
				}
				for _, c := range []*upgrader.Conn{d.c, l.c} {
					if got := c.ConnState(); got != want {
						t.Errorf("ConnState = %+v; want %+v", got, want)
					}
				}
				if d.c.RemotePeer() != b.id || l.c.RemotePeer() != a.id || d.c.LocalPeer() != a.id {
					t.Error("peer IDs wrong")
				}
				if !d.c.RemotePublicKey().Equals(b.priv.GetPublic()) {
					t.Error("remote public key wrong")
				}
				if !d.c.LocalMultiaddr().Equal(addrA) || !d.c.RemoteMultiaddr().Equal(addrB) {
					t.Error("multiaddrs wrong")
				}
			})
		}
	}
}

// TestSecurityNegotiation: the listener supports both protocols, in
// either order; the dialer's first choice wins.
func TestSecurityNegotiation(t *testing.T) {
	for _, dialerSecs := range [][]string{{"noise", "tls"}, {"tls", "noise"}} {
		a := newNode(t, dialerSecs, []protocol.ID{yamux.ID}, nil)
		b := newNode(t, []string{"tls", "noise"}, []protocol.ID{yamux.ID}, nil)
		ra, rb := tcpPair(t)
		d, l := upgradePair(context.Background(), a, b, ra, rb, b.id)
		if d.err != nil || l.err != nil {
			t.Fatalf("upgrade: dialer %v, listener %v", d.err, l.err)
		}
		want := map[string]protocol.ID{"noise": noise.ID, "tls": tls.ID}[dialerSecs[0]]
		if got := l.c.ConnState().Security; got != want {
			t.Errorf("dialer preferring %v got %s; want %s", dialerSecs, got, want)
		}
		d.c.Close()
		l.c.Close()
	}
}

// TestSecurityUnsupported: the dialer proposes a protocol the listener
// lacks; both fail cleanly.
func TestSecurityUnsupported(t *testing.T) {
	a := newNode(t, []string{"tls"}, nil, nil)
	b := newNode(t, []string{"noise"}, nil, nil)
	ra, rb := tcpPair(t)
	d, l := upgradePair(context.Background(), a, b, ra, rb, b.id)
	if !errors.Is(d.err, multistream.ErrNotSupported) {
		t.Errorf("dialer error %v; want ErrNotSupported", d.err)
	}
	if l.err == nil {
		t.Error("listener upgrade succeeded")
	}
}

// TestWrongPeer: the remote proves a key other than the expected one.
func TestWrongPeer(t *testing.T) {
	for _, secName := range secNames {
		t.Run(secName, func(t *testing.T) {
			a := newNode(t, []string{secName}, []protocol.ID{yamux.ID}, nil)
			b := newNode(t, []string{secName}, []protocol.ID{yamux.ID}, nil)
			impostor := newNode(t, []string{secName}, nil, nil)
			ra, rb := tcpPair(t)
			d, l := upgradePair(context.Background(), a, b, ra, rb, impostor.id)
			if d.err == nil {
				d.c.Close()
				t.Fatal("dial to the wrong peer succeeded")
			}
			if l.c != nil {
				l.c.Close()
			}
			if !errors.Is(d.err, sec.ErrPeerIDMismatch) {
				t.Errorf("error %v; want sec.ErrPeerIDMismatch", d.err)
			}
			var ue *upgrader.UpgradeError
			if !errors.As(d.err, &ue) || ue.Direction != network.DirOutbound {
				t.Errorf("error %v is not an outbound UpgradeError", d.err)
			}
			for _, id := range []peer.ID{b.id, impostor.id} {
				if !contains(d.err.Error(), id.String()) {
					t.Errorf("error %q does not name %s", d.err, id)
				}
			}
			// The socket was closed: the remote reads EOF or an error.
			if _, err := rb.Read(make([]byte, 1)); err == nil {
				t.Error("the socket of a failed upgrade is still open")
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// countingScope records what the upgrader does with a connection scope.
type countingScope struct {
	network.NullScope
	setPeer atomic.Value
	refuse  bool
	done    atomic.Int32
}

func (s *countingScope) SetPeer(p peer.ID) error {
	if s.refuse {
		return network.ErrResourceLimitExceeded
	}
	s.setPeer.Store(p)
	return nil
}

func (s *countingScope) Done() { s.done.Add(1) }

func TestScope(t *testing.T) {
	a := newNode(t, []string{"noise"}, []protocol.ID{yamux.ID}, nil)
	b := newNode(t, []string{"noise"}, []protocol.ID{yamux.ID}, nil)

	t.Run("success", func(t *testing.T) {
		ra, rb := memconn.Pair(0)
		ds, ls := &countingScope{}, &countingScope{}
		var wg sync.WaitGroup
		var dc, lc *upgrader.Conn
		var derr, lerr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			dc, derr = a.u.Upgrade(context.Background(), ra, network.DirOutbound, b.id, ds, addrA, addrB, "test")
		}()
		go func() {
			defer wg.Done()
			lc, lerr = b.u.Upgrade(context.Background(), rb, network.DirInbound, "", ls, addrB, addrA, "test")
		}()
		wg.Wait()
		if derr != nil || lerr != nil {
			t.Fatal(derr, lerr)
		}
		if ds.setPeer.Load() != b.id || ls.setPeer.Load() != a.id {
			t.Error("SetPeer was not called with the authenticated peer")
		}
		if dc.Scope() != network.ConnScope(ds) {
			t.Error("Scope is not the connection's scope")
		}
		dc.Close()
		dc.Close()
		lc.Close()
		if ds.done.Load() != 1 || ls.done.Load() != 1 {
			t.Errorf("Done called %d and %d times; want once each", ds.done.Load(), ls.done.Load())
		}
	})

	t.Run("refused at SetPeer", func(t *testing.T) {
		ra, rb := memconn.Pair(0)
		ds, ls := &countingScope{refuse: true}, &countingScope{}
		var wg sync.WaitGroup
		var derr, lerr error
		var lc *upgrader.Conn
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, derr = a.u.Upgrade(context.Background(), ra, network.DirOutbound, b.id, ds, addrA, addrB, "test")
		}()
		go func() {
			defer wg.Done()
			lc, lerr = b.u.Upgrade(context.Background(), rb, network.DirInbound, "", ls, addrB, addrA, "test")
		}()
		wg.Wait()
		if lc != nil {
			lc.Close()
		}
		if !errors.Is(derr, network.ErrResourceLimitExceeded) {
			t.Errorf("dialer error %v; want ErrResourceLimitExceeded", derr)
		}
		if ds.done.Load() != 1 {
			t.Errorf("refused scope Done %d times; want 1", ds.done.Load())
		}
		_ = lerr
	})
}

// TestInboundTimeout: a peer that connects and says nothing is dropped
// when the inbound upgrade timeout expires, exactly.
func TestInboundTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newNode(t, []string{"noise"}, nil, nil)
		ra, rb := net.Pipe()
		defer ra.Close()
		ctx, cancel := context.WithTimeout(context.Background(), upgrader.DefaultInboundUpgradeTimeout)
		defer cancel()
		start := time.Now()
		scope := &countingScope{}
		_, err := b.u.Upgrade(ctx, rb, network.DirInbound, "", scope, addrB, addrA, "test")
		if err == nil {
			t.Fatal("upgrade with a silent peer succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v; want it to mention the deadline", err)
		}
		if d := time.Since(start); d != 15*time.Second {
			t.Errorf("gave up after %v; want 15s", d)
		}
		if scope.done.Load() != 1 {
			t.Error("scope not released")
		}
	})
}

// TestCancel: cancelling the context stops a handshake in progress.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newNode(t, []string{"tls"}, nil, nil)
		ra, rb := net.Pipe()
		defer rb.Close()
		// The remote reads what we send and never answers.
		go io.Copy(io.Discard, rb)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(3*time.Second, cancel)
		start := time.Now()
		_, err := a.u.Upgrade(ctx, ra, network.DirOutbound, "QmPeer", &network.NullScope{}, addrA, addrB, "test")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v; want context.Canceled", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("returned after %v; want 3s", d)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	if _, err := upgrader.New(upgrader.Config{Muxers: []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}}); !errors.Is(err, upgrader.ErrNoSecurity) {
		t.Errorf("no security: %v", err)
	}
	priv, _, _ := ic.GenerateEd25519Key(rand.Reader)
	st, _ := noise.New(priv, nil)
	if _, err := upgrader.New(upgrader.Config{Security: []sec.Transport{st}}); !errors.Is(err, upgrader.ErrNoMuxer) {
		t.Errorf("no muxer: %v", err)
	}
	u, _ := upgrader.New(upgrader.Config{Security: []sec.Transport{st}, Muxers: []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}})
	ra, rb := net.Pipe()
	defer rb.Close()
	if _, err := u.Upgrade(context.Background(), ra, network.DirOutbound, "", &network.NullScope{}, addrA, addrB, "t"); !errors.Is(err, upgrader.ErrNoPeer) {
		t.Errorf("outbound without a peer: %v", err)
	}
}
