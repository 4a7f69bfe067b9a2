package fakehost

import (
	"errors"
	"io"
	"testing"
	"testing/synctest"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const echoID = protocol.ID("/echo/1.0.0")

func echo(s network.Stream) {
	defer s.Close()
	io.Copy(s, s)
}

func TestNewStreamNegotiatesLazily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := New(t), New(t)
		if _, err := a.NewStream(t.Context(), b.ID(), echoID); !errors.Is(err, network.ErrNoConn) {
			t.Fatalf("NewStream before Link: %v, want ErrNoConn", err)
		}
		Link(a, b)
		b.SetStreamHandler(echoID, echo)
		s, err := a.NewStream(t.Context(), b.ID(), echoID)
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("hello"))
		s.CloseWrite()
		if got, err := io.ReadAll(s); string(got) != "hello" || err != nil {
			t.Fatalf("echo = %q, %v", got, err)
		}
		synctest.Wait()
		in := b.Inbound()
		if len(in) != 1 || in[0].BytesRead() != 5 || in[0].BytesWritten() != 5 || b.InboundCount(echoID) != 1 {
			t.Fatalf("inbound streams %v, %d negotiated", in, b.InboundCount(echoID))
		}
		if in[0].Conn().RemotePeer() != a.ID() || s.Conn().RemotePeer() != b.ID() {
			t.Error("streams name the wrong peers")
		}
	})
}

// counter counts notifications.
type counter struct{ connected, disconnected int }

func (c *counter) bundle() *network.NotifyBundle {
	return &network.NotifyBundle{
		ConnectedF:    func(network.Network, network.Conn) { c.connected++ },
		DisconnectedF: func(network.Network, network.Conn) { c.disconnected++ },
	}
}

func TestDisconnectResetsStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewWithKey(t, ic.ECDSA), New(t)
		var ca, cb counter
		a.Network().Notify(ca.bundle())
		b.Network().Notify(cb.bundle())
		b.SetStreamHandler(echoID, echo)
		ab, ba := Connect(a, b, ma.StringCast("/ip4/127.0.0.1/tcp/1"), ma.StringCast("/ip4/127.0.0.1/tcp/2"))
		if !ab.RemotePublicKey().Equals(b.PrivKey().GetPublic()) || !ba.RemoteMultiaddr().Equal(ab.LocalMultiaddr()) {
			t.Error("the ends disagree")
		}
		s, err := a.NewStream(t.Context(), b.ID(), echoID)
		if err != nil {
			t.Fatal(err)
		}
		ab.Disconnect()
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read after Disconnect: %v, want ErrReset", err)
		}
		if _, err := ab.NewStream(t.Context()); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("NewStream on a closed conn: %v", err)
		}
		if ca != (counter{1, 1}) || cb != (counter{1, 1}) || ab.Opened() != 2 {
			t.Fatalf("notifications %v and %v, %d streams opened", ca, cb, ab.Opened())
		}
		synctest.Wait()
		a.CheckScopes()
		b.CheckScopes()
	})
}

func TestScopeLimitsMemory(t *testing.T) {
	h := New(t)
	h.SetMemLimit(10)
	s := h.newScope()
	if err := s.ReserveMemory(11, 0); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("reserve over the limit: %v", err)
	}
	if err := s.ReserveMemory(10, 0); err != nil {
		t.Fatal(err)
	}
	if len(h.Scopes()) != 1 || s.Stat().Memory != 10 {
		t.Fatalf("scopes %v", h.Scopes())
	}
	s.ReleaseMemory(10)
	for _, srv := range []string{"a", "a"} {
		if err := s.SetService(srv); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetService("b"); !errors.Is(err, ErrServiceSet) || s.Service() != "a" {
		t.Fatalf("second service: %v, service %q", err, s.Service())
	}
}
