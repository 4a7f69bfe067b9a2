package yamux

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// openAccepted opens a stream on client and accepts it on server.
func openAccepted(t *testing.T, client, server *Conn) (*Stream, *Stream) {
	t.Helper()
	s, err := client.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := server.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return s, ss
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newPair(t, pipeDialer, nil, nil, nil)
		s, ss := openAccepted(t, client, server)
		defer s.Close()
		defer ss.Close()

		start := time.Now()
		s.SetReadDeadline(start.Add(5 * time.Second))
		if _, err := s.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("Read returned after %v, want 5s", d)
		}
		// An expired deadline fails reads at once, even with data.
		ss.Write([]byte("abc"))
		synctest.Wait()
		if _, err := s.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("Read past the deadline = %v", err)
		}

		// Moving the deadline applies to a Read in progress.
		s.SetReadDeadline(time.Time{})
		if n, err := s.Read(make([]byte, 3)); n != 3 || err != nil {
			t.Fatalf("Read without deadline = %d, %v", n, err)
		}
		start = time.Now()
		s.SetReadDeadline(start.Add(5 * time.Second))
		done := make(chan error)
		go func() {
			_, err := s.Read(make([]byte, 1))
			done <- err
		}()
		time.Sleep(2 * time.Second)
		s.SetReadDeadline(start.Add(10 * time.Second))
		if err := <-done; !isTimeout(err) {
			t.Fatalf("Read = %v, want a timeout", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Fatalf("Read returned after %v, want 10s", d)
		}
		// Clearing the deadline in progress lets the Read wait for data.
		s.SetReadDeadline(time.Now().Add(time.Second))
		go func() {
			_, err := s.Read(make([]byte, 1))
			done <- err
		}()
		synctest.Wait()
		s.SetReadDeadline(time.Time{})
		time.Sleep(time.Minute)
		ss.Write([]byte("x"))
		if err := <-done; err != nil {
			t.Fatalf("Read after clearing the deadline = %v", err)
		}
	})
}

func TestWriteDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newPair(t, pipeDialer, nil, nil, nil)
		s, ss := openAccepted(t, client, server)
		defer s.Close()
		defer ss.Close()

		// The server does not read: the Write stops at the window.
		start := time.Now()
		s.SetWriteDeadline(start.Add(5 * time.Second))
		n, err := s.Write(make([]byte, 1<<20))
		if !isTimeout(err) {
			t.Fatalf("Write = %v, want a timeout", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("Write returned after %v, want 5s", d)
		}
		if n != initialWindow {
			t.Fatalf("Write wrote %d bytes, want the window, %d", n, initialWindow)
		}
		if _, err := s.Write([]byte("x")); !isTimeout(err) {
			t.Fatalf("Write past the deadline = %v", err)
		}
		// With the deadline cleared and the data read, writing resumes.
		s.SetDeadline(time.Time{})
		go io.Copy(io.Discard, ss)
		if _, err := s.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newPair(t, pipeDialer, nil, nil, nil)
		s, ss := openAccepted(t, client, server)
		defer ss.Close()

		const size = 4 << 20
		written := make(chan int64, 1)
		go func() {
			defer s.Close()
			n, _ := io.CopyN(s, prng(4), size)
			written <- n
		}()
		synctest.Wait() // the writer is blocked
		check := func() {
			t.Helper()
			ss.mu.Lock()
			buffered, window := ss.recvBuf.size, ss.recvWindow
			ss.mu.Unlock()
			if buffered > int(window) {
				t.Fatalf("%d bytes buffered, window %d", buffered, window)
			}
		}
		ss.mu.Lock()
		buffered := ss.recvBuf.size
		ss.mu.Unlock()
		if buffered != initialWindow {
			t.Fatalf("%d bytes buffered before reading, want the window, %d", buffered, initialWindow)
		}
		// Read slowly: one KiB a second. Memory stays within the window.
		buf := make([]byte, 1<<10)
		for range 300 {
			time.Sleep(time.Second)
			if _, err := io.ReadFull(ss, buf); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			check()
		}
		n, err := io.Copy(io.Discard, ss)
		if err != nil || n+300<<10 != size {
			t.Fatalf("read %d more bytes: %v", n, err)
		}
		if n := <-written; n != size {
			t.Fatalf("wrote %d bytes", n)
		}
	})
}

func TestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 10 * time.Millisecond
		a, b := net.Pipe()
		rec := &recordConn{Conn: &delayConn{Conn: a, delay: oneWay}}
		start := time.Now()
		client, err := DefaultTransport.Wrap(rec, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := DefaultTransport.Wrap(&delayConn{Conn: b, delay: oneWay}, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer server.Close()

		time.Sleep(time.Second)
		if rtt := client.RTT(); rtt != 2*oneWay {
			t.Fatalf("RTT = %v, want %v", rtt, 2*oneWay)
		}
		time.Sleep(time.Minute)
		var pings []time.Duration
		for _, f := range rec.frames() {
			if f.h.typ == typePing && f.h.flags == flagSYN {
				pings = append(pings, f.at.Sub(start))
			}
		}
		// rttSamples pings at the start, each when the last is answered,
		// then one every KeepAliveInterval after the last of them.
		rtt := 2 * oneWay
		want := []time.Duration{0, rtt, 2 * rtt, 3 * rtt, 3*rtt + 30*time.Second, 3*rtt + 60*time.Second}
		if len(pings) != len(want) {
			t.Fatalf("pings sent at %v, want %v", pings, want)
		}
		for i := range want {
			if pings[i] != want[i] {
				t.Fatalf("pings sent at %v, want %v", pings, want)
			}
		}
		if rtt := client.RTT(); rtt != 2*oneWay {
			t.Fatalf("RTT = %v, want %v", rtt, 2*oneWay)
		}
		if client.IsClosed() || server.IsClosed() {
			t.Fatal("keepalive closed a healthy connection")
		}
	})
}

func TestPingTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The raw peer reads but never answers pings.
		c, _ := newRawPeer(t, nil, true, nil, true)
		start := time.Now()
		_, err := c.Accept()
		if !errors.Is(err, ErrKeepAliveTimeout) || !errors.Is(err, ErrConnClosed) {
			t.Fatalf("Accept = %v, want ErrKeepAliveTimeout", err)
		}
		if d := time.Since(start); d != DefaultPingTimeout {
			t.Fatalf("closed after %v, want %v", d, DefaultPingTimeout)
		}
	})
}

func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The raw peer reads nothing: the first ping's Write blocks.
		c, _ := newRawPeer(t, &Transport{PingTimeout: time.Minute}, true, nil, false)
		start := time.Now()
		_, err := c.Accept()
		if !errors.Is(err, ErrWriteTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Accept = %v, want ErrWriteTimeout", err)
		}
		if d := time.Since(start); d != DefaultWriteTimeout {
			t.Fatalf("closed after %v, want %v", d, DefaultWriteTimeout)
		}
	})
}

// connGoroutines counts the goroutines running code of a Conn.
func connGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "mux/yamux.(*Conn)") {
			n++
		}
	}
	return n, stacks
}

func TestIdleGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := newPair(t, pipeDialer, nil, nil, nil)
		s, ss := openAccepted(t, client, server)
		s.Write([]byte("hi"))
		io.ReadFull(ss, make([]byte, 2))
		s.Close()
		ss.Close()
		synctest.Wait()
		if n, stacks := connGoroutines(); n != 2 {
			t.Fatalf("%d goroutines for two idle connections, want 2\n%s", n, stacks)
		}
		// Keepalive pings run on a timer.
		time.Sleep(time.Hour)
		synctest.Wait()
		if n, stacks := connGoroutines(); n != 2 {
			t.Fatalf("%d goroutines for two idle connections, want 2\n%s", n, stacks)
		}
	})
}

func TestWriteDeadlineStuckConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The raw peer reads nothing: frames stay queued. The Write's
		// deadline still holds, and the bytes it queued count as written.
		c, _ := newRawPeer(t, nil, false, nil, false)
		s, err := c.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		s.SetWriteDeadline(start.Add(5 * time.Second))
		n, err := s.Write([]byte("hello"))
		if n != 5 || !isTimeout(err) {
			t.Fatalf("Write = %d, %v; want 5 and a timeout", n, err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("Write returned after %v, want 5s", d)
		}
	})
}
