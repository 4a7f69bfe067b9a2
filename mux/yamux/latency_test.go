package yamux

import (
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// latencyPipe returns the two ends of an in-memory link with a one-way
// latency and no bandwidth limit: what is written arrives oneWay later,
// however much it is. Under synctest it is a long fat link in virtual
// time; outside, in real time.
func latencyPipe(oneWay time.Duration) (net.Conn, net.Conn) {
	l := &latencyLink{done: make(chan struct{})}
	ab, ba := make(chan latencyChunk, 1<<14), make(chan latencyChunk, 1<<14)
	return &latencyConn{link: l, in: ba, out: ab, delay: oneWay},
		&latencyConn{link: l, in: ab, out: ba, delay: oneWay}
}

type latencyLink struct {
	once sync.Once
	done chan struct{} // closed when either end closes
}

type latencyChunk struct {
	b  []byte
	at time.Time // when it arrives
}

// latencyConn is one end of a latencyPipe. One goroutine reads it at a
// time (yamux's read loop); any may write.
type latencyConn struct {
	link  *latencyLink
	in    <-chan latencyChunk
	out   chan<- latencyChunk
	delay time.Duration
	rest  []byte // the unread part of the chunk read last
}

func (c *latencyConn) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		select {
		case ch := <-c.in:
			// The link's latency: this sleep is what is simulated.
			time.Sleep(time.Until(ch.at))
			c.rest = ch.b
		case <-c.link.done:
			return 0, io.EOF
		}
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

func (c *latencyConn) Write(p []byte) (int, error) {
	ch := latencyChunk{append([]byte(nil), p...), time.Now().Add(c.delay)}
	select {
	case c.out <- ch:
		return len(p), nil
	case <-c.link.done:
		return 0, io.ErrClosedPipe
	}
}

func (c *latencyConn) Close() error {
	c.link.once.Do(func() { close(c.link.done) })
	return nil
}

func (c *latencyConn) LocalAddr() net.Addr                { return latencyAddr{} }
func (c *latencyConn) RemoteAddr() net.Addr               { return latencyAddr{} }
func (c *latencyConn) SetDeadline(t time.Time) error      { return nil }
func (c *latencyConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *latencyConn) SetWriteDeadline(t time.Time) error { return nil }

type latencyAddr struct{}

func (latencyAddr) Network() string { return "latency" }
func (latencyAddr) String() string  { return "latency" }

// transferOverLatency sends size bytes over one stream of a latencyPipe
// with the one-way delay, the receiver reading chunk bytes every pause,
// and returns the receiving stream's window at the end and the time the
// transfer took.
func transferOverLatency(t testing.TB, tr *Transport, scope *fakeScope, oneWay time.Duration, size int64, chunk int, pause time.Duration) (uint32, time.Duration) {
	a, b := latencyPipe(oneWay)
	client, err := tr.Wrap(a, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var ps = scope
	if ps == nil {
		ps = &fakeScope{}
	}
	server, err := tr.Wrap(b, true, ps)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	// Wait for the first ping's answer: the RTT is measured.
	for client.minRTT.Load() == 0 || server.minRTT.Load() == 0 {
		time.Sleep(oneWay)
	}

	s, err := client.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := server.Accept()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		defer s.Close()
		io.CopyN(s, prng(5), size)
	}()
	buf := make([]byte, chunk)
	var n int64
	for {
		k, err := ss.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("received %d bytes: %v", n, err)
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	took := time.Since(start)
	if n != size {
		t.Fatalf("received %d bytes, want %d", n, size)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.recvWindow, took
}

// TestWindowLongFatLink: on a link with a 50 ms round trip and no
// bandwidth limit, a reader that keeps up grows the window to the
// maximum, 16 MiB, and the transfer runs at several MiB per round trip.
func TestWindowLongFatLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 25 * time.Millisecond
		w, took := transferOverLatency(t, DefaultTransport, nil, oneWay, 128<<20, 1<<20, 0)
		if w != DefaultMaxStreamWindow {
			t.Fatalf("window %d after 128 MiB, want %d", w, DefaultMaxStreamWindow)
		}
		// With credit returned at half windows, 16 MiB of window moves
		// about 8 MiB per round trip: 16 round trips for 128 MiB, and
		// growing from 256 KiB costs some more.
		if rtts := took / (2 * oneWay); rtts > 40 {
			t.Fatalf("the transfer took %v, %d round trips", took, rtts)
		}
	})
}

// TestWindowSlowReader: a reader that, not the window, sets the rate
// never grows the window: 64 KiB every 2 ms on a link with a 2 ms round
// trip is a quarter of what 256 KiB per round trip allows. (Half the
// window is consumed every 4 ms, within four round trips: a rule that
// compares update intervals with the RTT alone would grow it.)
func TestWindowSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, _ := transferOverLatency(t, DefaultTransport, nil, time.Millisecond, 8<<20, 64<<10, 2*time.Millisecond)
		if w != initialWindow {
			t.Fatalf("window %d, want %d: a slow reader grew it", w, initialWindow)
		}
	})
}

// TestWindowMinRTT: the minimum RTT is kept, whatever later samples
// say; the smoothed one follows them.
func TestWindowMinRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 5 * time.Millisecond
		a, b := latencyPipe(oneWay)
		client, err := DefaultTransport.Wrap(a, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := DefaultTransport.Wrap(b, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()
		time.Sleep(time.Second)
		if got := time.Duration(client.minRTT.Load()); got != 2*oneWay {
			t.Fatalf("min RTT %v, want %v", got, 2*oneWay)
		}
		// A ping answered late (as one queued behind bulk data would be)
		// raises the smoothed RTT but not the minimum.
		client.pingMu.Lock()
		client.pingID++
		id := client.pingID
		client.pingSent = time.Now().Add(-time.Second)
		client.pingOutstanding = true
		client.pingMu.Unlock()
		client.handlePong(id)
		if got := client.RTT(); got <= 2*oneWay {
			t.Fatalf("smoothed RTT %v after a 1 s sample, want more than %v", got, 2*oneWay)
		}
		if got := time.Duration(client.minRTT.Load()); got != 2*oneWay {
			t.Fatalf("min RTT %v after a slow sample, want %v", got, 2*oneWay)
		}
	})
}
