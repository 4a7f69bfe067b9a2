package connmgr

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestNewRejectsBadWatermarks(t *testing.T) {
	for _, w := range [][2]int{{-1, 10}, {10, 5}, {0, 0}} {
		if _, err := New(w[0], w[1]); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("New(%d, %d) = %v, want ErrInvalidOption", w[0], w[1], err)
		}
	}
}

// TestTrimsThousandToLowWatermark: one trim closes 840 of 1,000 idle
// connections at once.
func TestTrimsThousandToLowWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, DefaultLowWater, DefaultHighWater)
		f := newFakeNet(m)
		for i := range 1000 {
			f.connect(peerN(i))
		}
		time.Sleep(DefaultGracePeriod)
		trimNow(m)
		if n, _ := f.open(); n != DefaultLowWater {
			t.Fatalf("%d connections open after one trim, want %d", n, DefaultLowWater)
		}
		if got := m.ConnCount(); got != DefaultLowWater {
			t.Errorf("ConnCount = %d, want %d", got, DefaultLowWater)
		}
		if s := m.Stats(); s.Trims != 1 || s.Closed != 1000-DefaultLowWater {
			t.Errorf("Stats = %+v, want 1 trim closing %d", s, 1000-DefaultLowWater)
		}
	})
}

// TestGracePeriodExact: peers above the high watermark are trimmed exactly
// when their grace period ends, by the background loop.
func TestGracePeriodExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 10, 20) // defaults: grace 1 min, silence 10 s
		f := newFakeNet(m)
		for i := range 30 {
			f.connect(peerN(i))
		}
		time.Sleep(DefaultGracePeriod - time.Nanosecond)
		synctest.Wait()
		if n, _ := f.open(); n != 30 {
			t.Fatalf("%d open just before the grace period ends, want 30", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n, _ := f.open(); n != 10 {
			t.Fatalf("%d open when the grace period ends, want 10", n)
		}
	})
}

// TestSilencePeriodExact: a trim follows the crossing of the high
// watermark at once, the next one no sooner than the silence period.
func TestSilencePeriodExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 10, 20, WithGracePeriod(0))
		f := newFakeNet(m)
		time.Sleep(3 * time.Second) // out of phase with the 10 s check
		for i := range 21 {
			f.connect(peerN(i))
		}
		synctest.Wait()
		if n, _ := f.open(); n != 10 {
			t.Fatalf("%d open after crossing the high watermark, want 10", n)
		}
		time.Sleep(time.Second)
		for i := range 11 {
			f.connect(peerN(100 + i))
		}
		synctest.Wait()
		if n, _ := f.open(); n != 21 {
			t.Fatalf("%d open within the silence period, want 21", n)
		}
		time.Sleep(DefaultSilencePeriod - time.Second - time.Nanosecond)
		synctest.Wait()
		if n, _ := f.open(); n != 21 {
			t.Fatalf("%d open just before the silence period ends, want 21", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n, _ := f.open(); n != 10 {
			t.Fatalf("%d open when the silence period ends, want 10", n)
		}
	})
}

func TestNoTrimAtHighWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 10, 20, WithGracePeriod(0))
		f := newFakeNet(m)
		for i := range 20 {
			f.connect(peerN(i))
		}
		time.Sleep(time.Hour)
		if n, _ := f.open(); n != 20 {
			t.Fatalf("%d open at the high watermark, want 20", n)
		}
	})
}

// TestLowestValueFirstProtectedNever: the trim keeps the most valuable
// peers and every protected one, whatever its value.
func TestLowestValueFirstProtectedNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// High watermark 20: the 20 connections below do not cross it,
		// so no background trim runs before the one asked for.
		m := newManager(t, 5, 20, WithGracePeriod(0))
		f := newFakeNet(m)
		m.Protect(peerN(0), "a")
		m.Protect(peerN(0), "b")
		if !m.Unprotect(peerN(0), "a") {
			t.Fatal("Unprotect(a) says peer 0 is no longer protected; b still protects it")
		}
		for i := range 10 {
			m.TagPeer(peerN(i), "rank", i)
		}
		for i := range 10 {
			f.connect(peerN(i))
			f.connect(peerN(i)) // two connections each
		}
		trimNow(m)
		_, byPeer := f.open()
		// At most 5 of 20 remain, closing whole peers from the least
		// valuable: peer 0 (protected) and the most valuable, 9.
		want := map[int]int{0: 2, 9: 2}
		for i := range 10 {
			if byPeer[peerN(i)] != want[i] {
				t.Errorf("peer %d: %d connections open, want %d", i, byPeer[peerN(i)], want[i])
			}
		}
		if !m.IsProtected(peerN(0), "") || m.IsProtected(peerN(0), "a") || !m.IsProtected(peerN(0), "b") {
			t.Error("IsProtected does not reflect Protect/Unprotect")
		}
	})
}

func TestFewerStreamsFirstAmongEqualValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 1, 2, WithGracePeriod(0))
		f := newFakeNet(m)
		busy := f.connect(peerN(0))
		busy.streams = 3
		f.connect(peerN(1))
		f.connect(peerN(2))
		trimNow(m)
		if _, byPeer := f.open(); byPeer[peerN(0)] != 1 || len(byPeer) != 1 {
			t.Fatalf("open after trim: %v, want only the peer with streams", byPeer)
		}
	})
}

func TestTagsAndTagInfo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 1, 2)
		f := newFakeNet(m)
		p := peerN(1)
		if m.GetTagInfo(p) != nil {
			t.Fatal("GetTagInfo of an unknown peer is not nil")
		}
		m.TagPeer(p, "a", 5)
		time.Sleep(time.Second)
		start := time.Now()
		f.connect(p)
		m.UpsertTag(p, "b", func(v int) int { return v + 7 })
		m.UpsertTag(p, "b", func(v int) int { return v * 2 })
		ti := m.GetTagInfo(p)
		if ti.Value != 19 || ti.Tags["a"] != 5 || ti.Tags["b"] != 14 || len(ti.Conns) != 1 || !ti.FirstSeen.Equal(start) {
			t.Fatalf("TagInfo = %+v, want value 19 (a 5, b 14), one conn, first seen at the connection", ti)
		}
		m.UntagPeer(p, "a")
		if v := m.GetTagInfo(p).Value; v != 14 {
			t.Fatalf("value after UntagPeer = %d, want 14", v)
		}
		// A peer tagged but never connected is forgotten after a grace
		// period, at a trim.
		q := peerN(2)
		m.TagPeer(q, "x", 1)
		time.Sleep(DefaultGracePeriod)
		trimNow(m)
		if m.GetTagInfo(q) != nil {
			t.Error("a tagged peer that never connected is kept beyond its grace period")
		}
	})
}

func TestDecayingTag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 1, 2, WithDecayResolution(time.Second))
		p := peerN(1)
		tag, err := m.RegisterDecayingTag("score", 2500*time.Millisecond, DecayFixed(4), BumpSumBounded(0, 10))
		if err != nil {
			t.Fatal(err)
		}
		if tag.Interval() != 3*time.Second {
			t.Fatalf("interval %v, want 3s (rounded up to the resolution)", tag.Interval())
		}
		if _, err := m.RegisterDecayingTag("score", time.Second, DecayNone(), BumpOverwrite()); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("second registration of a name: %v", err)
		}
		tag.Bump(p, 7)
		tag.Bump(p, 7)
		value := func() int {
			ti := m.GetTagInfo(p)
			if ti == nil {
				return -1
			}
			return ti.Value
		}
		if v := value(); v != 10 {
			t.Fatalf("value after bumps = %d, want 10 (bounded)", v)
		}
		time.Sleep(3*time.Second - time.Nanosecond)
		synctest.Wait()
		if v := value(); v != 10 {
			t.Fatalf("value just before the interval = %d, want 10", v)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if v := value(); v != 6 {
			t.Fatalf("value after one interval = %d, want 6", v)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if v := value(); v != 2 {
			t.Fatalf("value after two intervals = %d, want 2", v)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if ti := m.GetTagInfo(p); ti == nil || len(ti.Tags) != 0 {
			t.Fatalf("tag info after decaying to nothing = %+v, want no tags", ti)
		}
		if err := tag.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tag.Bump(p, 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Bump after Close: %v, want ErrClosed", err)
		}
	})
}

func TestDecayExpireWhenInactive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 1, 2, WithDecayResolution(time.Second))
		tag, err := m.RegisterDecayingTag("seen", time.Second, DecayExpireWhenInactive(5*time.Second), BumpOverwrite())
		if err != nil {
			t.Fatal(err)
		}
		p := peerN(1)
		tag.Bump(p, 3)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if ti := m.GetTagInfo(p); ti.Tags["seen"] != 3 {
			t.Fatalf("tags after 4 s = %v, want seen=3", ti.Tags)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if ti := m.GetTagInfo(p); len(ti.Tags) != 0 {
			t.Fatalf("tags after 5 s inactive = %v, want none", ti.Tags)
		}
	})
}

// fakeUsage reports the pressure a test sets.
type fakeUsage struct {
	mu         sync.Mutex
	conns, mem float64
}

func (u *fakeUsage) set(conns, mem float64) {
	u.mu.Lock()
	u.conns, u.mem = conns, mem
	u.mu.Unlock()
}

func (u *fakeUsage) ResourcePressure() (float64, float64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns, u.mem
}

// TestTrimsUnderResourcePressure: below the high watermark, a resource
// manager near its limits makes the manager trim.
func TestTrimsUnderResourcePressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := &fakeUsage{}
		m := newManager(t, 160, 192, WithGracePeriod(0), WithResourceUsage(u, 0))
		f := newFakeNet(m)
		for i := range 100 {
			f.connect(peerN(i))
		}
		synctest.Wait() // the wakes of the connections found no pressure
		u.set(0, 0.95)
		time.Sleep(DefaultSilencePeriod) // the next look
		synctest.Wait()
		if n, _ := f.open(); n != 75 {
			t.Fatalf("%d open under memory pressure, want 75 (three quarters)", n)
		}
		u2 := &fakeUsage{conns: 0.5}
		m2 := newManager(t, 5, 192, WithGracePeriod(0), WithResourceUsage(u2, 0))
		f2 := newFakeNet(m2)
		for i := range 100 {
			f2.connect(peerN(i))
		}
		time.Sleep(time.Minute)
		if n, _ := f2.open(); n != 100 {
			t.Fatalf("%d open without pressure, want 100", n)
		}
	})
}

func TestCloseStopsGoroutine(t *testing.T) {
	m, err := New(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close()
	trimNow(m) // returns at once
	if _, err := m.RegisterDecayingTag("x", time.Second, DecayNone(), BumpOverwrite()); !errors.Is(err, ErrClosed) {
		t.Fatalf("RegisterDecayingTag after Close: %v", err)
	}
}

func TestPeerWithSeveralConns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, 1, 10)
		f := newFakeNet(m)
		p := peerN(1)
		c1 := f.connect(p)
		c2 := f.connect(p)
		m.Notifee().Connected(f, c2) // a repeated notification counts once
		if n := m.ConnCount(); n != 2 {
			t.Fatalf("ConnCount = %d, want 2", n)
		}
		if ti := m.GetTagInfo(p); len(ti.Conns) != 2 || len(ti.Tags) != 0 || ti.Tags == nil {
			t.Fatalf("TagInfo = %+v, want two conns and an empty map of tags", ti)
		}
		c1.Close()
		c1.Close()
		if ti := m.GetTagInfo(p); ti == nil || len(ti.Conns) != 1 || ti.Conns[c2.raddr.String()].IsZero() {
			t.Fatalf("TagInfo after one closed = %+v, want the other conn", ti)
		}
		c2.Close()
		if m.GetTagInfo(p) != nil || m.ConnCount() != 0 {
			t.Fatal("the peer is kept after its last connection closed")
		}
	})
}
