package event

import (
	"errors"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOrderPerSubscriber(t *testing.T) {
	b := NewBus()
	sub, err := b.Subscribe([]any{new(EvtLocalReachabilityChanged), new(EvtPeerConnectednessChanged)}, BufSize(200))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ea, _ := b.Emitter(new(EvtLocalReachabilityChanged))
	eb, _ := b.Emitter(new(EvtPeerConnectednessChanged))
	defer ea.Close()
	defer eb.Close()
	for i := range 100 {
		if i%2 == 0 {
			ea.Emit(EvtLocalReachabilityChanged{Reachability: network.Reachability(i)})
		} else {
			eb.Emit(EvtPeerConnectednessChanged{Peer: peer.ID(rune('a' + i%26)), Connectedness: network.Connectedness(i)})
		}
	}
	for i := range 100 {
		ev := <-sub.Out()
		switch e := ev.(type) {
		case EvtLocalReachabilityChanged:
			if int(e.Reachability) != i {
				t.Fatalf("event %d: reachability %d", i, e.Reachability)
			}
		case EvtPeerConnectednessChanged:
			if int(e.Connectedness) != i {
				t.Fatalf("event %d: connectedness %d", i, e.Connectedness)
			}
		default:
			t.Fatalf("event %d: %T", i, ev)
		}
	}
}

// TestSlowSubscriberDropsAndCounts: a full buffer drops for that
// subscriber only, counts the drop, and never blocks the emitter.
func TestSlowSubscriberDropsAndCounts(t *testing.T) {
	b := NewBus()
	slow, _ := b.Subscribe(new(EvtLocalProtocolsUpdated), BufSize(4))
	fast, _ := b.Subscribe(new(EvtLocalProtocolsUpdated), BufSize(64))
	defer slow.Close()
	defer fast.Close()
	em, _ := b.Emitter(new(EvtLocalProtocolsUpdated))
	defer em.Close()
	for range 10 {
		if err := em.Emit(EvtLocalProtocolsUpdated{}); err != nil {
			t.Fatal(err)
		}
	}
	if slow.Dropped() != 6 || fast.Dropped() != 0 || b.Dropped() != 6 {
		t.Fatalf("dropped: slow %d, fast %d, bus %d; want 6, 0, 6", slow.Dropped(), fast.Dropped(), b.Dropped())
	}
	if len(slow.Out()) != 4 || len(fast.Out()) != 10 {
		t.Fatalf("buffered: slow %d, fast %d; want 4, 10", len(slow.Out()), len(fast.Out()))
	}
}

func TestCloseEndsChannel(t *testing.T) {
	b := NewBus()
	sub, _ := b.Subscribe(new(EvtPeerIdentificationFailed))
	em, _ := b.Emitter(new(EvtPeerIdentificationFailed))
	em.Emit(EvtPeerIdentificationFailed{Reason: errors.New("x")})
	sub.Close()
	sub.Close()
	if _, ok := <-sub.Out(); !ok {
		t.Fatal("the buffered event is lost at Close")
	}
	if _, ok := <-sub.Out(); ok {
		t.Fatal("Out is not closed after Close")
	}
	// Emitting after the subscriber left, concurrently with new
	// subscriptions closing, neither panics nor leaks.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				s, _ := b.Subscribe(new(EvtPeerIdentificationFailed), BufSize(1))
				em.Emit(EvtPeerIdentificationFailed{})
				s.Close()
			}
		})
	}
	wg.Wait()
	em.Close()
	if err := em.Emit(EvtPeerIdentificationFailed{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Emit after Close: %v", err)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if len(b.nodes) != 0 {
		t.Fatalf("%d types still held after every subscription and emitter closed", len(b.nodes))
	}
}

func TestStatefulEmitterReplaysLast(t *testing.T) {
	b := NewBus()
	em, _ := b.Emitter(new(EvtLocalReachabilityChanged), Stateful())
	em.Emit(EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic})
	em.Close()
	sub, _ := b.Subscribe(new(EvtLocalReachabilityChanged))
	defer sub.Close()
	select {
	case ev := <-sub.Out():
		if ev.(EvtLocalReachabilityChanged).Reachability != network.ReachabilityPublic {
			t.Fatalf("replayed %v", ev)
		}
	default:
		t.Fatal("a new subscriber did not get the last state")
	}
}

func TestBadTypes(t *testing.T) {
	b := NewBus()
	if _, err := b.Subscribe(EvtLocalReachabilityChanged{}); !errors.Is(err, ErrBadType) {
		t.Errorf("Subscribe with a value: %v", err)
	}
	if _, err := b.Emitter(nil); !errors.Is(err, ErrBadType) {
		t.Errorf("Emitter(nil): %v", err)
	}
	em, _ := b.Emitter(new(EvtLocalReachabilityChanged))
	defer em.Close()
	if err := em.Emit(&EvtLocalReachabilityChanged{}); !errors.Is(err, ErrBadType) {
		t.Errorf("Emit of a pointer: %v", err)
	}
}
