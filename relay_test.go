package p2pnet_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/proto/relay"

	ma "github.com/multiformats/go-multiaddr"
)

// waitRelayAddrs waits until h holds a reservation.
func waitRelayAddrs(ctx context.Context, t *testing.T, h *p2pnet.Host) []ma.Multiaddr {
	t.Helper()
	for {
		ch := h.RelayAddrsChanged()
		if a := h.RelayAddrs(); len(a) > 0 {
			return a
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("no reservation in time")
		}
	}
}

// disconnectWaiter returns a channel closed when n has no connection to p.
func disconnectWaiter(n network.Network, p peer.ID) <-chan struct{} {
	ch := make(chan struct{})
	var once = make(chan struct{}, 1)
	once <- struct{}{}
	nb := &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		if c.RemotePeer() == p && n.Connectedness(p) == network.NotConnected {
			select {
			case <-once:
				close(ch)
			default:
			}
		}
	}}
	n.Notify(nb)
	return ch
}

func TestRelayEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const dataLimit = 64 << 10
	r := newHost(t, p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		p2pnet.EnableRelayService(relay.WithLimit(time.Minute, dataLimit)))
	b := newHost(t, p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.StaticRelays(r.P2PAddrs()[0]))
	a := newHost(t, p2pnet.ListenAddrs())

	circ := waitRelayAddrs(ctx, t, b)
	if got := r.RelayService().NumReservations(); got != 1 {
		t.Fatalf("relay holds %d reservations, want 1", got)
	}
	found := false
	for _, x := range b.Addrs() {
		found = found || x.Equal(circ[0])
	}
	if !found {
		t.Fatalf("Addrs %v lacks the relayed address %v", b.Addrs(), circ[0])
	}

	b.SetStreamHandler("/echo", func(s network.Stream) {
		io.Copy(s, s)
		s.Close()
	})
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: circ}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	if c := a.Network().Connectedness(b.ID()); c != network.Limited {
		t.Fatalf("Connectedness = %v, want Limited", c)
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) != 1 || !conns[0].Stat().Limited {
		t.Fatalf("connections %v: want one limited", conns)
	}
	if _, err := a.NewStream(network.WithNoDial(ctx, "test"), b.ID(), "/echo"); !errors.Is(err, network.ErrLimitedConn) {
		t.Fatalf("NewStream on a limited connection: %v, want ErrLimitedConn", err)
	}
	if _, err := ping.PingOnce(ctx, a, b.ID()); err != nil {
		t.Fatalf("ping through the relay: %v", err)
	}

	// Echo until the relay's data limit ends the circuit.
	gone := disconnectWaiter(a.Network(), b.ID())
	goneB := disconnectWaiter(b.Network(), a.ID())
	s, err := a.NewStream(network.WithAllowLimitedConn(ctx, "test"), b.ID(), "/echo")
	if err != nil {
		t.Fatalf("NewStream with WithAllowLimitedConn: %v", err)
	}
	buf := make([]byte, 4096)
	var echoed int
	var rerr error
	for echoed < 4*dataLimit {
		if _, err := s.Write(buf); err != nil {
			rerr = err
			break
		}
		n, err := io.ReadFull(s, buf)
		echoed += n
		if err != nil {
			rerr = err
			break
		}
	}
	if rerr == nil {
		t.Fatalf("echoed %d bytes through a circuit limited to %d", echoed, dataLimit)
	}
	if echoed > dataLimit {
		t.Fatalf("echoed %d bytes through a circuit limited to %d", echoed, dataLimit)
	}
	t.Logf("circuit ended after %d bytes echoed: %v", echoed, rerr)
	s.Reset()
	select {
	case <-gone:
	case <-ctx.Done():
		t.Fatal("A kept its relayed connection after the limit")
	}
	select {
	case <-goneB:
	case <-ctx.Done():
		t.Fatal("B kept its relayed connection after the limit")
	}

	// Relayed again, then direct: new streams take the direct connection.
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: circ}); err != nil {
		t.Fatalf("second connect through the relay: %v", err)
	}
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.TempAddrTTL)
	if _, err := a.Network().DialPeer(network.WithForceDirectDial(ctx, "test"), b.ID()); err != nil {
		t.Fatalf("direct dial: %v", err)
	}
	if c := a.Network().Connectedness(b.ID()); c != network.Connected {
		t.Fatalf("Connectedness = %v after a direct dial, want Connected", c)
	}
	s, err = a.NewStream(ctx, b.ID(), "/echo")
	if err != nil {
		t.Fatalf("NewStream with a direct connection: %v", err)
	}
	if s.Conn().Stat().Limited {
		t.Fatal("a new stream took the limited connection over the direct one")
	}
	s.Reset()
}
