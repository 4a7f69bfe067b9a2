package testtransport

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTransport(t *testing.T, n *Network) (*Transport, peer.ID) {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpt, err := New(n, priv)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	return tpt, id
}

func TestDialBehaviours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork()
		a, _ := newTransport(t, n)
		b, bid := newTransport(t, n)
		addr := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		if _, err := a.Dial(t.Context(), addr, bid); !errors.Is(err, ErrConnRefused) {
			t.Fatalf("dial without listener: %v", err)
		}
		l, err := b.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/1"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()

		errX := errors.New("x")
		a.SetBehaviour(addr, Behaviour{Delay: time.Second, Err: errX})
		start := time.Now()
		if _, err := a.Dial(t.Context(), addr, bid); !errors.Is(err, errX) || time.Since(start) != time.Second {
			t.Fatalf("failing dial: %v after %v", err, time.Since(start))
		}
		a.SetBehaviour(addr, Behaviour{Limited: true})
		c, err := a.Dial(t.Context(), addr, bid)
		if err != nil {
			t.Fatal(err)
		}
		in, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if !c.(*Conn).Stat().Limited || !in.(*Conn).Stat().Limited || c.RemotePeer() != bid || in.RemotePeer() != c.LocalPeer() {
			t.Errorf("connection ends do not match")
		}
		if a.Dials(addr) != 3 || len(a.DialLog()) != 3 {
			t.Errorf("dials counted: %d", a.Dials(addr))
		}

		s, err := c.OpenStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		r, err := in.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			s.Write([]byte("hi"))
			s.CloseWrite()
		}()
		if got, err := io.ReadAll(r); err != nil || string(got) != "hi" {
			t.Fatalf("read %q, %v", got, err)
		}
		r.Reset()
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Errorf("read after the remote reset: %v", err)
		}
		s.Close()

		s2, err := c.OpenStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if !in.IsClosed() {
			t.Errorf("closing one end left the other open")
		}
		if _, err := in.AcceptStream(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("AcceptStream after close: %v", err)
		}
		if _, err := s2.Read(make([]byte, 1)); err == nil {
			t.Errorf("stream survived its connection")
		}
		l.Close()
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after close: %v", err)
		}
	})
}
