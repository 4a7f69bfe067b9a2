package p2pnet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport/circuit"
)

// notifyNet is a network.Network that only keeps notifiees.
type notifyNet struct {
	network.Network
	mu sync.Mutex
	ns []network.Notifiee
}

func (n *notifyNet) Notify(x network.Notifiee)                   { n.mu.Lock(); n.ns = append(n.ns, x); n.mu.Unlock() }
func (n *notifyNet) StopNotify(network.Notifiee)                 {}
func (n *notifyNet) Connectedness(peer.ID) network.Connectedness { return network.NotConnected }

func TestReserverRefreshAndBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ri, err := peer.AddrInfoFromString("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGzBmT9ngSkk3vD7AwiyhbQkLBTE6TWGV5S7EgAFk1GXg")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var mu sync.Mutex
		var calls []time.Duration
		fail := false
		reserve := func(ctx context.Context, _ peer.AddrInfo) (*circuit.Reservation, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Since(start))
			if fail {
				return nil, errors.New("refused")
			}
			return &circuit.Reservation{Expiration: time.Now().Add(time.Hour)}, nil
		}
		net := &notifyNet{}
		r := newReserver([]peer.AddrInfo{*ri}, reserverDeps{reserve: reserve, network: net})
		r.start()
		defer r.close()
		synctest.Wait()
		want := ri.Addrs[0].String() + "/p2p/" + ri.ID.String() + "/p2p-circuit"
		if a := r.addrs(); len(a) != 1 || a[0].String() != want {
			t.Fatalf("addrs %v, want %s", a, want)
		}
		// Refreshed 2 minutes before expiry.
		time.Sleep(58*time.Minute + time.Second)
		synctest.Wait()
		mu.Lock()
		if len(calls) != 2 || calls[1] != 58*time.Minute {
			t.Fatalf("reservations at %v, want 0 and 58m", calls)
		}
		fail = true
		mu.Unlock()
		// The relay drops: addresses go, retries back off 1 s, 2 s, 4 s.
		for _, n := range net.ns {
			n.Disconnected(net, fakeConn{p: ri.ID})
		}
		synctest.Wait()
		if a := r.addrs(); len(a) != 0 {
			t.Fatalf("addrs %v after the relay dropped", a)
		}
		time.Sleep(8 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		base := 58*time.Minute + time.Second
		wantCalls := []time.Duration{0, 58 * time.Minute, base, base + time.Second, base + 3*time.Second, base + 7*time.Second}
		if len(calls) != len(wantCalls) {
			t.Fatalf("reservations at %v, want %v", calls, wantCalls)
		}
		for i := range calls {
			if calls[i] != wantCalls[i] {
				t.Fatalf("reservations at %v, want %v", calls, wantCalls)
			}
		}
	})
}

type fakeConn struct {
	network.Conn
	p peer.ID
}

func (c fakeConn) RemotePeer() peer.ID { return c.p }
