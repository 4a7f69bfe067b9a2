package autonat

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var lab = Public{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.0/24")}

var (
	clientAddr = ma.StringCast("/ip4/203.0.113.7/tcp/4001")
	serverAddr = ma.StringCast("/ip4/198.51.100.1/tcp/4001")
)

// pair is a client host connected to a server host, and the server's
// dialer host.
type pair struct {
	a, b, d *fakehost.Host
	client  *Client
	server  *Server
	dials   int // dial backs that reached the client
}

// reachableBy makes the server's dial backs connect when reach is true
// and fail with E_DIAL_ERROR otherwise; nonceDelta corrupts the nonce.
func newPair(t *testing.T, reach bool, nonceDelta uint64, sopts ...ServerOption) *pair {
	p := &pair{a: fakehost.New(t), b: fakehost.New(t), d: fakehost.New(t)}
	fakehost.Connect(p.a, p.b, clientAddr, serverAddr)
	p.server = NewServer(p.b, nil, append([]ServerOption{ServerPublic(lab)}, sopts...)...)
	p.server.canDial = func(ma.Multiaddr) bool { return true }
	var once sync.Once
	p.server.dialBack = func(ctx context.Context, peerID peer.ID, addr ma.Multiaddr, nonce uint64) DialStatus {
		if !reach {
			return DialError
		}
		once.Do(func() { fakehost.Connect(p.d, p.a, ma.StringCast("/ip4/198.51.100.2/tcp/5555"), addr) })
		p.dials++
		return sendNonce(ctx, p.d, peerID, nonce+nonceDelta)
	}
	p.client = NewClient(p.a, ClientPublic(lab), Intervals(time.Hour, time.Hour))
	t.Cleanup(func() { p.client.Close(); p.server.Close() })
	return p
}

func TestCheckReachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0)
		r, err := p.client.Check(t.Context(), p.b.ID(), clientAddr)
		if err != nil || !r.Reachable || !r.Addr.Equal(clientAddr) || r.Server != p.b.ID() {
			t.Fatalf("Check = %+v, %v; want reachable", r, err)
		}
		if p.dials != 1 {
			t.Fatalf("%d dial backs, want 1", p.dials)
		}
	})
}

func TestCheckUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, false, 0)
		r, err := p.client.Check(t.Context(), p.b.ID(), clientAddr)
		if err != nil || r.Reachable {
			t.Fatalf("Check = %+v, %v; want unreachable", r, err)
		}
	})
}

func TestCheckWrongNonceDiscarded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 1)
		// The client refuses the unknown nonce, so the server reports
		// E_DIAL_BACK_ERROR, which decides nothing.
		if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); !errors.Is(err, ErrRejected) {
			t.Fatalf("Check with a wrong nonce: %v, want ErrRejected", err)
		}
	})
}

func TestCheckPrivateRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0)
		if _, err := p.client.Check(t.Context(), p.b.ID(), ma.StringCast("/ip4/10.0.0.1/tcp/1")); !errors.Is(err, ErrRejected) {
			t.Fatalf("Check of a private address: %v, want ErrRejected", err)
		}
		if p.dials != 0 {
			t.Fatalf("the server dialed a private address")
		}
	})
}

func TestCheckDialData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0)
		other := ma.StringCast("/ip4/203.0.113.99/tcp/4001")
		r, err := p.client.Check(t.Context(), p.b.ID(), other)
		if err != nil || !r.Reachable {
			t.Fatalf("Check of another IP = %+v, %v", r, err)
		}
		synctest.Wait()
		var paid uint64
		for _, s := range p.b.Inbound() {
			if s.Protocol() == DialRequestID {
				paid += s.BytesRead()
			}
		}
		if paid < MinDialData {
			t.Fatalf("the server read %d bytes, want at least %d of dial data", paid, MinDialData)
		}
	})
}

func TestServerRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0, RateLimits(100, 2, 1))
		for i := range 2 {
			if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); err != nil {
				t.Fatalf("check %d: %v", i, err)
			}
		}
		if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); !errors.Is(err, ErrRejected) {
			t.Fatalf("third check in a minute: %v, want ErrRejected", err)
		}
		time.Sleep(time.Minute) // the fake clock: the window slides
		if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); err != nil {
			t.Fatalf("check after a minute: %v", err)
		}
		// One dial-data request a minute.
		other := ma.StringCast("/ip4/203.0.113.99/tcp/4001")
		time.Sleep(time.Minute)
		if _, err := p.client.Check(t.Context(), p.b.ID(), other); err != nil {
			t.Fatalf("first dial-data check: %v", err)
		}
		if _, err := p.client.Check(t.Context(), p.b.ID(), other); !errors.Is(err, ErrRejected) {
			t.Fatalf("second dial-data check in a minute: %v, want ErrRejected", err)
		}
	})
}

func TestServerServiceScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0)
		if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for _, s := range p.b.Inbound() {
			if s.Protocol() == DialRequestID && s.MemScope().Service() != ServiceName {
				t.Fatalf("request stream in service %q, want %q", s.MemScope().Service(), ServiceName)
			}
		}
	})
}

func TestTrackerHysteresis(t *testing.T) {
	tr := NewTracker(3)
	a := clientAddr
	steps := []struct {
		ok   bool
		want network.Reachability
	}{
		{true, network.ReachabilityUnknown},
		{true, network.ReachabilityUnknown},
		{true, network.ReachabilityPublic},
		{false, network.ReachabilityPublic}, // one failure does not flip it
		{false, network.ReachabilityPublic},
		{false, network.ReachabilityPrivate}, // 3 of the last 5
		{true, network.ReachabilityPrivate},
	}
	for i, s := range steps {
		tr.Add(a, s.ok)
		if got := tr.Reachability(); got != s.want {
			t.Fatalf("after result %d (%v): %v, want %v", i, s.ok, got, s.want)
		}
	}
	if changed, r := tr.Retain(nil); !changed || r != network.ReachabilityUnknown {
		t.Fatalf("Retain(nil) = %v, %v; want a change to Unknown", changed, r)
	}
}

// TestClientLoop checks that the client probes an undecided address at
// the probe interval, reports Private after three failures, and re-checks
// decided addresses at the re-check interval.
func TestClientLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := fakehost.New(t), fakehost.New(t)
		fakehost.Connect(a, b, clientAddr, serverAddr)
		a.Peerstore().AddProtocols(b.ID(), DialRequestID)
		var mu sync.Mutex
		reach := false
		s := NewServer(b, nil, ServerPublic(lab), RateLimits(100, 100, 100))
		s.canDial = func(ma.Multiaddr) bool { return true }
		s.dialBack = func(ctx context.Context, p peer.ID, _ ma.Multiaddr, nonce uint64) DialStatus {
			mu.Lock()
			defer mu.Unlock()
			if !reach {
				return DialError
			}
			return DialOK // no nonce: the client discards it
		}
		defer s.Close()
		start := time.Now()
		var changes []string
		c := NewClient(a, ClientPublic(lab), Intervals(2*time.Second, 10*time.Minute),
			Candidates(func() []ma.Multiaddr { return []ma.Multiaddr{clientAddr, ma.StringCast("/ip4/10.0.0.2/tcp/4001")} }),
			OnReachability(func(r network.Reachability) {
				changes = append(changes, r.String()+"@"+time.Since(start).String())
			}))
		defer c.Close()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if c.Reachability() != network.ReachabilityPrivate || len(changes) != 1 || changes[0] != network.ReachabilityPrivate.String()+"@4s" {
			t.Fatalf("reachability %v, changes %v; want Private at 4s", c.Reachability(), changes)
		}
		mu.Lock()
		reach = true
		mu.Unlock()
		// OK without the nonce is discarded: still Private after re-checks.
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		if c.Reachability() != network.ReachabilityPrivate || len(changes) != 1 {
			t.Fatalf("after bogus OKs: %v, changes %v", c.Reachability(), changes)
		}
	})
}
