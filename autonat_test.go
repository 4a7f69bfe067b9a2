package p2pnet

import (
	"context"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
)

// TestAutoNATLoopback runs AutoNAT between two real hosts on loopback,
// counted public: B serves AutoNAT (and checks nothing itself), A runs
// the default client; B dials A back from its dial-back host, and A's
// host emits Public on its bus and reports it from Reachability.
func TestAutoNATLoopback(t *testing.T) {
	loopback := []string{"127.0.0.0/8"}
	a, err := New(ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), PublicCIDRs(loopback...))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), PublicCIDRs(loopback...), EnableAutoNATService(), DisableAutoNAT())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Reachability() != network.ReachabilityUnknown {
		t.Errorf("a host without the AutoNAT client knows its reachability: %v", b.Reachability())
	}
	sub, err := a.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-sub.Out():
			if r := ev.(event.EvtLocalReachabilityChanged).Reachability; r != network.ReachabilityPublic {
				continue // Unknown first, as the stateful emitter replays it
			}
		case <-ctx.Done():
			t.Fatalf("no Public reachability within 30 s (now %v)", a.Reachability())
		}
		break
	}
	if got := a.Reachability(); got != network.ReachabilityPublic {
		t.Fatalf("Reachability() = %v", got)
	}
}
