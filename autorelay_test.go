package p2pnet

import (
	"context"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"

	ma "github.com/multiformats/go-multiaddr"
)

// waitRelayAddrs waits until h's relay addresses satisfy ok.
func waitRelayAddrs(ctx context.Context, t *testing.T, h *Host, what string, ok func([]ma.Multiaddr) bool) []ma.Multiaddr {
	t.Helper()
	for {
		changed := h.RelayAddrsChanged()
		if addrs := h.RelayAddrs(); ok(addrs) {
			return addrs
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("%s: relay addresses %v", what, h.RelayAddrs())
		}
	}
}

// TestAutoRelay: A is connected to two relays and told it is Private:
// it reserves on as many as AutoRelays says (one), announces the
// circuit address, and C reaches A through it. Told it is Public, A
// drops the reservation.
func TestAutoRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	loop := ListenAddrStrings("/ip4/127.0.0.1/tcp/0")
	var relays []*Host
	for range 2 {
		r, err := New(loop, EnableRelayService())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		relays = append(relays, r)
	}
	a, err := New(loop, AutoRelays(1))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ids, err := a.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close()
	for _, r := range relays {
		if err := a.Connect(ctx, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	for seen := 0; seen < len(relays); {
		select {
		case <-ids.Out():
			seen++
		case <-ctx.Done():
			t.Fatal("relays not identified")
		}
	}
	if addrs := a.RelayAddrs(); len(addrs) != 0 {
		t.Fatalf("relay addresses %v before A is Private", addrs)
	}
	reach, err := a.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), event.Stateful())
	if err != nil {
		t.Fatal(err)
	}
	defer reach.Close()
	reach.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate})
	circ := waitRelayAddrs(ctx, t, a, "Private", func(as []ma.Multiaddr) bool { return len(as) > 0 })
	if !ma.Contains(a.Addrs(), circ[0]) {
		t.Errorf("Addrs %v lacks the circuit address %s", a.Addrs(), circ[0])
	}
	_, via := peer.SplitAddr(circ[0].Decapsulate(ma.StringCast("/p2p-circuit")))
	for _, c := range circ {
		if _, id := peer.SplitAddr(c.Decapsulate(ma.StringCast("/p2p-circuit"))); id != via {
			t.Errorf("reserved on two relays (%s, %s) with AutoRelays(1)", via, id)
		}
	}

	c, err := New(loop)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: circ}); err != nil {
		t.Fatalf("C through A's relay: %v", err)
	}
	if conns := c.Network().ConnsToPeer(a.ID()); len(conns) != 1 || !conns[0].Stat().Limited {
		t.Errorf("C's connections to A: %v, want one relayed (limited)", conns)
	}

	reach.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic})
	waitRelayAddrs(ctx, t, a, "Public", func(as []ma.Multiaddr) bool { return len(as) == 0 })
	if ok, _ := a.Peerstore().SupportsProtocols(via, relay.ProtoHop); len(ok) == 0 {
		t.Errorf("the relay's hop protocol is forgotten")
	}
}
