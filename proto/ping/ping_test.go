package ping

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a client host and a server host running the ping service.
func pair(t *testing.T) (client, server *fakeHost, svc *Service) {
	client, server = newFakeHost(t), newFakeHost(t)
	link(client, server)
	svc = NewService(server)
	t.Cleanup(func() { svc.Close() })
	return client, server, svc
}

// echoAfter serves ping streams by echoing each payload after d, or, if
// corrupt, a payload with its first byte flipped.
func echoAfter(d time.Duration, corrupt bool) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		var buf [PayloadSize]byte
		for {
			if _, err := io.ReadFull(s, buf[:]); err != nil {
				return
			}
			time.Sleep(d)
			if corrupt {
				buf[0] ^= 0xff
			}
			if _, err := s.Write(buf[:]); err != nil {
				return
			}
		}
	}
}

func TestPingResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		ctx, cancel := context.WithCancel(t.Context())
		ch := Ping(ctx, client, server.ID())
		for i := range 5 {
			res, ok := <-ch
			if !ok {
				t.Fatalf("channel closed after %d results", i)
			}
			if res.Err != nil || res.RTT != 0 {
				t.Fatalf("result %d = %+v, want RTT 0 in a bubble and no error", i, res)
			}
		}
		cancel()
		for res := range ch {
			if res.Err != nil {
				t.Errorf("result after cancel: %v", res.Err)
			}
		}
		synctest.Wait()
		client.CheckScopes()
		server.CheckScopes()
	})
}

func TestPingMeasuresRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		const delay = 7 * time.Millisecond
		server.SetStreamHandler(ID, echoAfter(delay, false))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ch := Ping(ctx, client, server.ID())
		for range 3 {
			if res := <-ch; res.Err != nil || res.RTT != delay {
				t.Fatalf("result = %+v, want RTT %v", res, delay)
			}
		}
		cancel()
		for range ch {
		}
	})
}

func TestPingOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		const delay = 3 * time.Millisecond
		server.SetStreamHandler(ID, echoAfter(delay, false))
		rtt, err := PingOnce(t.Context(), client, server.ID())
		if err != nil || rtt != delay {
			t.Fatalf("PingOnce = %v, %v; want %v", rtt, err, delay)
		}
	})
}

func TestPingOnceHonoursDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		server.SetStreamHandler(ID, echoAfter(time.Hour, false))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := PingOnce(ctx, client, server.ID())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("PingOnce error = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("PingOnce returned after %v, want 2s", d)
		}
	})
}

func TestPingPayloadMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		server.SetStreamHandler(ID, echoAfter(0, true))
		ch := Ping(t.Context(), client, server.ID())
		res := <-ch
		if !errors.Is(res.Err, ErrPayloadMismatch) {
			t.Fatalf("result = %+v, want ErrPayloadMismatch", res)
		}
		if _, ok := <-ch; ok {
			t.Fatal("channel still open after a failed ping")
		}
		if _, err := PingOnce(t.Context(), client, server.ID()); !errors.Is(err, ErrPayloadMismatch) {
			t.Fatalf("PingOnce error = %v, want ErrPayloadMismatch", err)
		}
		synctest.Wait()
		client.CheckScopes()
	})
}

func TestPingUnknownPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, other := newFakeHost(t), newFakeHost(t)
		res, ok := <-Ping(t.Context(), client, other.ID())
		if !ok || !errors.Is(res.Err, network.ErrNoConn) {
			t.Fatalf("result = %+v, %v; want ErrNoConn", res, ok)
		}
		if _, err := PingOnce(t.Context(), client, other.ID()); !errors.Is(err, network.ErrNoConn) {
			t.Fatalf("PingOnce error = %v, want ErrNoConn", err)
		}
	})
}

func TestPingProtocolRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		res := <-Ping(t.Context(), client, server.ID())
		if res.Err == nil {
			t.Fatal("ping of a peer without the ping service succeeded")
		}
	})
}

// rawStream opens a ping stream to the server and returns it
// unnegotiated-looking: writes go straight to the handler.
func rawStream(t *testing.T, client, server *fakeHost) network.Stream {
	t.Helper()
	s, err := client.NewStream(t.Context(), server.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServerDropsStalledPayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		start := time.Now()
		if _, err := s.Write(make([]byte, 10)); err != nil { // a partial payload
			t.Fatal(err)
		}
		_, err := s.Read(make([]byte, 1))
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("read error = %v, want ErrReset", err)
		}
		if d := time.Since(start); d != IdleTimeout {
			t.Fatalf("reset after %v, want %v", d, IdleTimeout)
		}
		synctest.Wait()
		server.CheckScopes()
	})
}

func TestServerDropsIdleStreamAfterEcho(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		var buf [PayloadSize]byte
		if _, err := s.Write(buf[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			t.Fatal(err)
		}
		echoed := time.Now()
		if _, err := s.Read(buf[:1]); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read error = %v, want ErrReset", err)
		}
		if d := time.Since(echoed); d != IdleTimeout {
			t.Fatalf("reset %v after the echo, want %v", d, IdleTimeout)
		}
	})
}

func TestServerClosesAfterDialerCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		var buf [PayloadSize]byte
		for i := range 3 {
			buf[0] = byte(i)
			if _, err := s.Write(buf[:]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || len(got) != 3*PayloadSize {
			t.Fatalf("read %d bytes, %v; want %d echoed bytes then EOF", len(got), err, 3*PayloadSize)
		}
		synctest.Wait()
		server.CheckScopes()
		for _, sc := range server.Scopes() {
			if sc.Service() != ServiceName {
				t.Errorf("server stream service = %q, want %q", sc.Service(), ServiceName)
			}
		}
	})
}

func TestServerLimitsStreamsPerPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		var buf [PayloadSize]byte
		for range MaxStreamsPerPeer {
			s := rawStream(t, client, server)
			defer s.Close()
			s.Write(buf[:])
			if _, err := io.ReadFull(s, buf[:]); err != nil {
				t.Fatalf("stream within the limit: %v", err)
			}
		}
		s := rawStream(t, client, server)
		defer s.Close()
		s.Write(buf[:])
		if _, err := io.ReadFull(s, buf[:]); !errors.Is(err, network.ErrReset) {
			t.Fatalf("stream over the limit: read error = %v, want ErrReset", err)
		}
	})
}

func TestServerMemoryRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		server.SetMemLimit(PayloadSize - 1)
		_, err := PingOnce(t.Context(), client, server.ID())
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("PingOnce error = %v, want ErrReset", err)
		}
		synctest.Wait()
		server.CheckScopes()
	})
}

func TestClientMemoryRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _ := pair(t)
		client.SetMemLimit(PayloadSize)
		_, err := PingOnce(t.Context(), client, server.ID())
		if !errors.Is(err, network.ErrResourceLimitExceeded) {
			t.Fatalf("PingOnce error = %v, want ErrResourceLimitExceeded", err)
		}
		res := <-Ping(t.Context(), client, server.ID())
		if !errors.Is(res.Err, network.ErrResourceLimitExceeded) {
			t.Fatalf("Ping error = %v, want ErrResourceLimitExceeded", res.Err)
		}
	})
}

func TestCloseWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, svc := pair(t)
		s := rawStream(t, client, server)
		defer s.Close()
		var buf [PayloadSize]byte
		s.Write(buf[:])
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			t.Fatal(err)
		}
		// The handler now waits for the next payload.
		start := time.Now()
		svc.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v: it waited for the idle timeout", d)
		}
		svc.mu.Lock()
		n := len(svc.streams)
		svc.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d streams still served after Close", n)
		}
		if _, err := s.Read(buf[:1]); !errors.Is(err, network.ErrReset) {
			t.Fatalf("read error after Close = %v, want ErrReset", err)
		}
		// The handler is gone: new streams are refused.
		if _, err := PingOnce(t.Context(), client, server.ID()); err == nil {
			t.Fatal("ping succeeded after Close")
		}
		svc.Close() // twice is fine
	})
}

// latencyStore is a peerstore that keeps round-trip times.
type latencyStore struct {
	*peerstore.Memory
	mu  sync.Mutex // guards the following
	rtt map[peer.ID][]time.Duration
}

func (l *latencyStore) RecordLatency(p peer.ID, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rtt[p] = append(l.rtt[p], d)
}

// latencyHost is a fakeHost whose peerstore keeps round-trip times.
type latencyHost struct {
	*fakeHost
	ps *latencyStore
}

func (h latencyHost) Peerstore() peerstore.Peerstore { return h.ps }

func TestPingRecordsLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		server.SetStreamHandler(ID, echoAfter(4*time.Millisecond, false))
		h := latencyHost{client, &latencyStore{Memory: client.MemoryPeerstore(), rtt: map[peer.ID][]time.Duration{}}}
		if _, err := PingOnce(t.Context(), h, server.ID()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		ch := Ping(ctx, h, server.ID())
		<-ch
		cancel()
		for range ch {
		}
		h.ps.mu.Lock()
		defer h.ps.mu.Unlock()
		want := []time.Duration{4 * time.Millisecond, 4 * time.Millisecond}
		if got := h.ps.rtt[server.ID()]; !slices.Equal(got, want) {
			t.Fatalf("recorded %v, want %v", got, want)
		}
	})
}

// echoAfterEach serves ping streams by echoing the i-th payload after
// delays[i] (the last delay for the rest).
func echoAfterEach(delays ...time.Duration) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		var buf [PayloadSize]byte
		for i := 0; ; i++ {
			if _, err := io.ReadFull(s, buf[:]); err != nil {
				return
			}
			time.Sleep(delays[min(i, len(delays)-1)])
			if _, err := s.Write(buf[:]); err != nil {
				return
			}
		}
	}
}

// TestPingFeedsLatencyEWMA pings over a host whose peerstore is the real
// one: every round trip goes into the peer's moving average, whose value
// is the exact EWMA of the round trips (smoothing 0.1).
func TestPingFeedsLatencyEWMA(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newFakeHost(t), newFakeHost(t)
		link(client, server)
		server.SetStreamHandler(ID, echoAfterEach(10*time.Millisecond, 20*time.Millisecond, 30*time.Millisecond))
		ps := client.Peerstore()
		if got := ps.LatencyEWMA(server.ID()); got != 0 {
			t.Fatalf("LatencyEWMA before any ping = %v", got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		ch := Ping(ctx, client, server.ID())
		want := []time.Duration{
			10 * time.Millisecond,    // the first round trip
			11 * time.Millisecond,    // 0.9*10 + 0.1*20
			12900 * time.Microsecond, // 0.9*11 + 0.1*30
		}
		for i, w := range want {
			res := <-ch
			if res.Err != nil {
				t.Fatalf("ping %d: %v", i, res.Err)
			}
			if got := ps.LatencyEWMA(server.ID()); got != w {
				t.Errorf("after ping %d (%v): LatencyEWMA = %v; want %v", i, res.RTT, got, w)
			}
		}
		cancel()
		for range ch {
		}
		if got := ps.LatencyEWMA(server.ID()); got <= 0 {
			t.Errorf("LatencyEWMA = %v; want > 0", got)
		}
	})
}
