package rcmgr

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// logBuffer collects log output; the timer's goroutine writes to it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns what was logged since the last take.
func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// testLogger logs text lines without the time to buf.
func testLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// refuseConns opens n inbound connections from endpoint that the test
// expects to be refused.
func refuseConns(t *testing.T, m *Manager, endpoint string, n int) {
	t.Helper()
	for range n {
		if _, err := m.OpenConnection(network.DirInbound, true, addr(t, endpoint)); !errors.Is(err, network.ErrResourceLimitExceeded) {
			t.Fatalf("a connection from %s: %v; want a refusal", endpoint, err)
		}
	}
}

// TestRefusalLog: the summary of the refusals comes exactly one interval
// after the first refusal of the interval, once, in one line that names
// each limit with its kind of scope, resource, count and sources; an
// interval without refusals logs nothing; Close logs what is pending.
func TestRefusalLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf logBuffer
		l := UnlimitedLimits()
		l.Transient.ConnsInbound = 0
		l.PeerDefault.StreamsInbound = 0
		l.System.Memory = 0
		m, err := New(l, WithRefusalLog(testLogger(&buf), 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		p := testPeer(t, 1)
		c, err := m.OpenConnection(network.DirOutbound, true, addr(t, "/ip4/203.0.113.9/tcp/1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetPeer(p); err != nil {
			t.Fatal(err)
		}

		refuseConns(t, m, "/ip4/203.0.113.1/tcp/1", 3)
		time.Sleep(4 * time.Second)
		refuseConns(t, m, "/ip4/203.0.113.2/tcp/1", 1)
		refuseConns(t, m, "/ip6/2001:db8::1/tcp/1", 1)
		refuseConns(t, m, "/ip6/2001:db8::2/tcp/1", 1) // the same /56
		if _, err := m.OpenStream(p, network.DirInbound); err == nil {
			t.Fatal("a stream was not refused")
		}
		m.ViewSystem(func(s network.ResourceScope) error { // no source
			if err := s.ReserveMemory(1, network.ReservationPriorityAlways); err == nil {
				t.Fatal("a reservation of memory was not refused")
			}
			return nil
		})
		time.Sleep(6*time.Second - time.Nanosecond)
		synctest.Wait()
		if got := buf.take(); got != "" {
			t.Fatalf("logged before the interval ended: %q", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		want := `level=INFO msg="resource manager refused requests" interval=10s refusals=8 sources=4 limits="Transient (transient, ConnsInbound): 6 from 3 sources; PeerDefault (peer, StreamsInbound): 1 from 1 source; System (system, Memory): 1 from 0 sources"` + "\n"
		if got := buf.take(); got != want {
			t.Fatalf("logged\n%s\nwant\n%s", got, want)
		}

		// A quiet interval logs nothing.
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := buf.take(); got != "" {
			t.Fatalf("logged without refusals: %q", got)
		}

		// The next refusal starts the next interval; Close logs it at
		// once.
		refuseConns(t, m, "/ip4/203.0.113.1/tcp/1", 1)
		time.Sleep(time.Second)
		c.Done()
		m.Close()
		want = `level=INFO msg="resource manager refused requests" interval=10s refusals=1 sources=1 limits="Transient (transient, ConnsInbound): 1 from 1 source"` + "\n"
		if got := buf.take(); got != want {
			t.Fatalf("Close logged\n%s\nwant\n%s", got, want)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := buf.take(); got != "" {
			t.Fatalf("logged after Close: %q", got)
		}
	})
}

// TestRefusalLogSources: a summary tells apart at most maxLoggedSources
// sources, and says so.
func TestRefusalLogSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf logBuffer
		l := UnlimitedLimits()
		l.Transient.ConnsInbound = 0
		m, err := New(l, WithRefusalLog(testLogger(&buf), time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		a := netip.MustParseAddr("10.0.0.1")
		for range maxLoggedSources + 5 {
			refuseConns(t, m, "/ip4/"+a.String()+"/tcp/1", 1)
			a = a.Next()
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := buf.take()
		if !strings.Contains(got, `refusals=1029 sources="at least 1024" limits="Transient (transient, ConnsInbound): 1029 from at least 1024 sources"`) {
			t.Fatalf("logged %q", got)
		}
	})
}

// TestRefusalLogOff: an interval of 0 logs nothing; a negative one is an
// error.
func TestRefusalLogOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf logBuffer
		l := UnlimitedLimits()
		l.Transient.ConnsInbound = 0
		m, err := New(l, WithRefusalLog(testLogger(&buf), 0))
		if err != nil {
			t.Fatal(err)
		}
		refuseConns(t, m, "/ip4/203.0.113.1/tcp/1", 3)
		time.Sleep(time.Minute)
		m.Close()
		synctest.Wait()
		if got := buf.take(); got != "" {
			t.Fatalf("logged %q", got)
		}
		if n := m.Refusals(); len(n) != 1 || n[0].Count != 3 {
			t.Fatalf("refusals %+v; want 3", n)
		}
	})
	if _, err := New(UnlimitedLimits(), WithRefusalLog(nil, -time.Second)); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("a negative interval: %v", err)
	}
}
