package flood

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/rcmgr"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loopback is where every host of these tests listens.
const loopback = "/ip4/127.0.0.1/tcp/0"

// transferSize is what the well-behaved peer uploads, and then downloads,
// with perf in each session.
const transferSize = 4 << 20

// heapSlack is how much the live heap may grow during a flood beyond the
// memory the flood is allowed to hold: connections, streams, their
// buffers and the test's own bookkeeping.
const heapSlack = 16 << 20

// testTimeout bounds every wait of a test, so that a bug fails the test
// instead of hanging it. Nothing waits for it to pass.
const testTimeout = 30 * time.Second

// newManager returns a resource manager enforcing rcmgr.DefaultLimits as
// changed by edit. The test closes it at its end.
func newManager(t testing.TB, edit func(*rcmgr.Limits)) *rcmgr.Manager {
	t.Helper()
	l := rcmgr.DefaultLimits()
	if edit != nil {
		edit(&l)
	}
	rm, err := rcmgr.New(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	return rm
}

// newHost returns a host listening on loopback, closed when the test
// ends.
func newHost(t testing.TB, opts ...p2pnet.Option) *p2pnet.Host {
	t.Helper()
	// Like `p2pnet listen`, the hosts serve perf.
	h, err := p2pnet.New(append([]p2pnet.Option{p2pnet.ListenAddrStrings(loopback), p2pnet.EnablePerf()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// info returns what a peer needs to dial h.
func info(h *p2pnet.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// session is what one visit of the well-behaved peer measured.
type session struct {
	connect, rtt, transfer time.Duration
}

func (s session) String() string {
	return fmt.Sprintf("connect %v, ping %v, perf %d+%d bytes in %v",
		s.connect.Round(time.Microsecond), s.rtt.Round(time.Microsecond), transferSize, transferSize, s.transfer.Round(time.Millisecond))
}

// visit is the well-behaved peer's visit to the victim: it drops any
// connection it has, connects anew, pings once and transfers
// transferSize bytes each way with perf.
func visit(ctx context.Context, h *p2pnet.Host, victim peer.AddrInfo) (session, error) {
	var s session
	if err := h.Network().ClosePeer(victim.ID); err != nil {
		return s, fmt.Errorf("closing the previous connection: %w", err)
	}
	start := time.Now()
	if err := h.Connect(ctx, victim); err != nil {
		return s, fmt.Errorf("connect: %w", err)
	}
	s.connect = time.Since(start)
	rtt, err := ping.PingOnce(ctx, h, victim.ID)
	if err != nil {
		return s, fmt.Errorf("ping: %w", err)
	}
	s.rtt = rtt
	start = time.Now()
	res, err := perf.Run(ctx, h, victim.ID, transferSize, transferSize, nil)
	if err != nil {
		return s, fmt.Errorf("perf: %w", err)
	}
	s.transfer = time.Since(start)
	if res.Uploaded != transferSize || res.Downloaded != transferSize {
		return s, fmt.Errorf("perf: uploaded %d and downloaded %d bytes; want %d each", res.Uploaded, res.Downloaded, transferSize)
	}
	return s, nil
}

// goVisit starts visit on a goroutine of its own; the channel delivers
// its outcome once.
func goVisit(h *p2pnet.Host, victim peer.AddrInfo) <-chan visitResult {
	out := make(chan visitResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		s, err := visit(ctx, h, victim)
		out <- visitResult{s, err}
	}()
	return out
}

type visitResult struct {
	s   session
	err error
}

// mustVisit runs a visit and fails t if the victim does not serve it.
func mustVisit(t *testing.T, when string, h *p2pnet.Host, victim peer.AddrInfo) {
	t.Helper()
	r := <-goVisit(h, victim)
	checkVisit(t, when, r)
}

func checkVisit(t *testing.T, when string, r visitResult) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("the well-behaved peer was not served %s: %v", when, r.err)
	}
	t.Logf("well-behaved peer %s: %v", when, r.s)
}

// await receives from ch, or fails t once ctx is done.
func await[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
	var zero T
	return zero
}

// liveHeap returns the bytes of heap in use after a collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// checkHeap fails t if the live heap has grown by more than allowed since
// base.
func checkHeap(t *testing.T, when string, base, allowed int64) {
	t.Helper()
	grown := liveHeap() - base
	t.Logf("heap %s: %+.1f MiB (allowed %.1f MiB)", when, float64(grown)/(1<<20), float64(allowed)/(1<<20))
	if grown > allowed {
		t.Errorf("heap %s grew by %.1f MiB; allowed %.1f MiB", when, float64(grown)/(1<<20), float64(allowed)/(1<<20))
	}
}

// refusals returns how many reservations scopes of kind k refused for want
// of r.
func refusals(rm *rcmgr.Manager, k rcmgr.ScopeKind, r rcmgr.Resource) uint64 {
	for _, c := range rm.Refusals() {
		if c.Kind == k && c.Resource == r {
			return c.Count
		}
	}
	return 0
}

// peerStat returns what peer p holds in rm.
func peerStat(t *testing.T, rm *rcmgr.Manager, p peer.ID) network.ScopeStat {
	t.Helper()
	var st network.ScopeStat
	if err := rm.ViewPeer(p, func(s network.PeerScope) error {
		st = s.Stat()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// transientStat returns what the transient scope of rm holds.
func transientStat(rm *rcmgr.Manager) network.ScopeStat {
	var st network.ScopeStat
	rm.ViewTransient(func(s network.ResourceScope) error {
		st = s.Stat()
		return nil
	})
	return st
}

// checkLimits fails t if any scope of rm holds more of a resource than
// its limit.
func checkLimits(t *testing.T, rm *rcmgr.Manager) {
	t.Helper()
	for _, s := range rm.Snapshot().Scopes {
		if s.Limit == nil {
			continue
		}
		for r := rcmgr.ResourceMemory; r <= rcmgr.ResourceFD; r++ {
			if !s.Limit.IsUnlimited(r) && rcmgr.Used(s.Use, r) > s.Limit.Get(r) {
				t.Errorf("%s holds %d %s; its limit is %d", s.Name, rcmgr.Used(s.Use, r), r, s.Limit.Get(r))
			}
		}
	}
}

// checkReleased fails t unless every scope of rm holds nothing: to be
// called once the host using rm is closed.
func checkReleased(t *testing.T, rm *rcmgr.Manager) {
	t.Helper()
	for _, s := range rm.Snapshot().Scopes {
		if s.Use != (network.ScopeStat{}) {
			t.Errorf("after the host closed, %s still holds %+v", s.Name, s.Use)
		}
	}
}

// limitKind returns the kind of scope that refused with err, or fails.
func limitKind(err error) (rcmgr.ScopeKind, error) {
	var le *rcmgr.LimitError
	if !errors.As(err, &le) {
		return 0, fmt.Errorf("refusal %v is not an *rcmgr.LimitError", err)
	}
	if !errors.Is(err, network.ErrResourceLimitExceeded) {
		return 0, fmt.Errorf("refusal %v does not match network.ErrResourceLimitExceeded", err)
	}
	return le.Kind, nil
}
