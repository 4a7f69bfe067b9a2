package yamux

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

func TestScopeAccounting(t *testing.T) {
	forEachConnType(t, func(t *testing.T, dial dialer) {
		clientScope, serverScope := &fakeScope{}, &fakeScope{}
		client, server := newPair(t, dial, nil, clientScope, serverScope)

		var handlers sync.WaitGroup
		go func() {
			for {
				s, err := server.Accept()
				if err != nil {
					return
				}
				handlers.Go(func() {
					defer s.Close()
					io.Copy(s, s)
				})
			}
		}()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				msg := bytes.Repeat(fmt.Appendf(nil, "%d", i), 100<<10)
				errs <- echoOnce(client, msg)
			})
		}
		wg.Wait()
		handlers.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if clientScope.count(network.ReservationPriorityAlways) < 20 || serverScope.count(network.ReservationPriorityAlways) < 20 {
			t.Fatal("stream windows not reserved at priority Always")
		}
		for name, scope := range map[string]*fakeScope{"client": clientScope, "server": serverScope} {
			if reserved, spans := scope.state(); reserved != 0 || spans != 1 {
				t.Errorf("%s scope: %d bytes reserved and %d spans open after the streams closed, want 0 and 1", name, reserved, spans)
			}
		}
		// An open stream holds its window until the connection closes.
		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if reserved, _ := clientScope.state(); reserved != initialWindow {
			t.Fatalf("%d bytes reserved for one stream", reserved)
		}
		client.Close()
		server.Close()
		for name, scope := range map[string]*fakeScope{"client": clientScope, "server": serverScope} {
			if reserved, spans := scope.state(); reserved != 0 || spans != 0 {
				t.Errorf("%s scope: %d bytes reserved and %d spans open after Close", name, reserved, spans)
			}
		}
	})
}

// growWindow transfers size bytes over one stream of a link with a 2 ms
// round trip, read as fast as it comes, and returns the receiving
// stream's final window.
func growWindow(t *testing.T, tr *Transport, scope *fakeScope, size int64) uint32 {
	w, _ := transferOverLatency(t, tr, scope, time.Millisecond, size, 1<<20, 0)
	return w
}

func TestWindowGrowth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scope := &fakeScope{}
		if w := growWindow(t, DefaultTransport, scope, 32<<20); w <= initialWindow {
			t.Fatalf("window %d: did not grow", w)
		}
		if scope.count(network.ReservationPriorityLow) == 0 {
			t.Fatal("growth not reserved at priority Low")
		}
		if reserved, spans := scope.state(); reserved != 0 || spans != 0 {
			t.Fatalf("%d bytes reserved and %d spans open after Close", reserved, spans)
		}
	})
}

func TestWindowGrowthRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		scope := &fakeScope{refuse: func(size int, prio uint8) bool { return prio == network.ReservationPriorityLow }}
		if w := growWindow(t, DefaultTransport, scope, 8<<20); w != initialWindow {
			t.Fatalf("window grew to %d with growth refused", w)
		}
	})
}

func TestWindowGrowthConnBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One stream's 256 KiB may double once within a budget of 768 KiB.
		tr := &Transport{MaxConnWindow: 3 * initialWindow}
		if w := growWindow(t, tr, &fakeScope{}, 32<<20); w != 2*initialWindow {
			t.Fatalf("window %d, want %d", w, 2*initialWindow)
		}
	})
}
