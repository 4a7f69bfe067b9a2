package yamux

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Tests of the frames queued lazily: an opened stream's SYN, an accepted
// stream's ACK and WriteLazy's data go out with the next write, before
// the stream waits to read, or within lazyFlushDelay.

// callWith returns the frames of the Write call on r that carried the
// first frame of stream id with flags, or nil.
func callWith(r *recordConn, id uint32, flags uint16) []header {
	frames := r.frames()
	call := 0
	for _, f := range frames {
		if f.h.streamID == id && f.h.flags&flags == flags {
			call = f.call
			break
		}
	}
	var hs []header
	for _, f := range frames {
		if call != 0 && f.call == call {
			hs = append(hs, f.h)
		}
	}
	return hs
}

// lazyPair is newPair over a net.Pipe whose two ends record their
// frames.
func lazyPair(t *testing.T) (client, server *Conn, cw, sw *recordConn) {
	a, b := net.Pipe()
	cw, sw = &recordConn{Conn: a}, &recordConn{Conn: b}
	var err error
	if client, err = DefaultTransport.Wrap(cw, false, nil); err != nil {
		t.Fatal(err)
	}
	if server, err = DefaultTransport.Wrap(sw, true, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server, cw, sw
}

// hasFrame reports whether frames holds a frame of type typ for stream id
// with flags.
func hasFrame(frames []header, typ frameType, flags uint16, id uint32) bool {
	for _, h := range frames {
		if h.typ == typ && h.streamID == id && h.flags&flags == flags {
			return true
		}
	}
	return false
}

func TestLazySYNAndACKRideWithData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, cw, sw := lazyPair(t)
		synctest.Wait() // the keepalive's first pings are answered
		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		call := callWith(cw, s.ID(), flagSYN)
		if !hasFrame(call, typeWindowUpdate, flagSYN, s.ID()) || !hasFrame(call, typeData, 0, s.ID()) {
			t.Fatalf("the SYN and the first data went out in different writes: %+v", call)
		}

		synctest.Wait() // the data is there: reading it does not wait
		ss, err := server.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(ss, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if _, err := ss.WriteLazy([]byte("answer ")); err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Write([]byte("reply")); err != nil {
			t.Fatal(err)
		}
		call = callWith(sw, ss.ID(), flagACK)
		n := 0
		for _, h := range call {
			if h.typ == typeData && h.streamID == ss.ID() {
				n++
			}
		}
		if !hasFrame(call, typeWindowUpdate, flagACK, ss.ID()) || n != 2 {
			t.Fatalf("the ACK, the lazy answer and the reply went out in different writes: %+v", call)
		}
		got := make([]byte, len("answer reply"))
		if _, err := io.ReadFull(s, got); err != nil || string(got) != "answer reply" {
			t.Fatalf("read %q, %v", got, err)
		}
	})
}

func TestLazyFramesGoOutByThemselves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _, _ := lazyPair(t)
		synctest.Wait() // the keepalive's first pings are answered

		// An opened stream nobody writes on is announced all the same.
		start := time.Now()
		s, ss := openAccepted(t, client, server)
		if d := time.Since(start); d > lazyFlushDelay {
			t.Fatalf("the SYN went out after %v, want at most %v", d, lazyFlushDelay)
		}

		// Lazy data nobody follows up is written within lazyFlushDelay,
		// and not at once.
		synctest.Wait()
		start = time.Now()
		if n, err := ss.WriteLazy([]byte("late")); n != 4 || err != nil {
			t.Fatalf("WriteLazy = %d, %v", n, err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "late" {
			t.Fatalf("read %q, %v", buf, err)
		}
		if d := time.Since(start); d == 0 || d > lazyFlushDelay {
			t.Fatalf("lazy data arrived after %v, want after more than 0 and at most %v", d, lazyFlushDelay)
		}
	})
}

func TestLazyFramesFlushedBeforeRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _, _ := lazyPair(t)
		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		ss, err := server.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := io.ReadFull(ss, buf); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		// The accepting side answers lazily, then waits to read: the
		// answer must go out now, for the remote may wait for it before
		// it sends more.
		start := time.Now()
		if _, err := ss.WriteLazy([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := io.ReadFull(ss, buf)
			done <- err
		}()
		got := make([]byte, 2)
		if _, err := io.ReadFull(s, got); err != nil || string(got) != "ok" {
			t.Fatalf("read %q, %v", got, err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the answer waited %v for the timer, though the stream was reading", d)
		}
		s.Write([]byte("x"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestWriteLazyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server, _, _ := lazyPair(t)
		s, ss := openAccepted(t, client, server)

		// A large WriteLazy is a Write: it returns once written.
		big := make([]byte, maxLazyWrite+1)
		go io.ReadFull(ss, make([]byte, len(big)))
		if n, err := s.WriteLazy(big); n != len(big) || err != nil {
			t.Fatalf("large WriteLazy = %d, %v", n, err)
		}

		s.CloseWrite()
		if _, err := s.WriteLazy([]byte("x")); !errors.Is(err, ErrStreamClosedWrite) {
			t.Fatalf("WriteLazy after CloseWrite = %v", err)
		}
		ss.Reset()
		if _, err := ss.WriteLazy([]byte("x")); !errors.Is(err, ErrStreamReset) {
			t.Fatalf("WriteLazy after Reset = %v", err)
		}
		s2, ss2 := openAccepted(t, client, server)
		defer s2.Close()
		ss2.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := ss2.WriteLazy([]byte("x")); !isTimeout(err) {
			t.Fatalf("WriteLazy past the deadline = %v", err)
		}
		ss2.Close()
	})
}

// gateConn holds each Write while hold is set until the test sends on
// gate, then reports it written without passing it on, as if the kernel
// took the bytes just before the connection went away.
type gateConn struct {
	net.Conn
	hold atomic.Bool
	gate chan struct{}
}

func (g *gateConn) Write(b []byte) (int, error) {
	if !g.hold.Load() {
		return g.Conn.Write(b)
	}
	<-g.gate
	return len(b), nil
}

func TestWriteCarriedByFlusherSucceedsAsConnCloses(t *testing.T) {
	// A Write whose frames another goroutine is writing when the
	// connection closes returns what that write returns: nil if the
	// connection took the bytes, not the closing error.
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		g := &gateConn{Conn: a, gate: make(chan struct{})}
		client, err := DefaultTransport.Wrap(g, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		server, err := DefaultTransport.Wrap(b, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		defer server.Close()
		defer close(g.gate) // first: a held write ends if the test fails
		s1, ss1 := openAccepted(t, client, server)
		s2, ss2 := openAccepted(t, client, server)
		go io.Copy(io.Discard, ss1)
		go io.Copy(io.Discard, ss2)
		synctest.Wait()

		g.hold.Store(true)
		first := make(chan error, 1)
		go func() { _, err := s1.Write([]byte("first")); first <- err }()
		synctest.Wait() // s1's Write holds the writer role, in the held write
		second := make(chan error, 1)
		go func() { _, err := s2.Write([]byte("second")); second <- err }()
		synctest.Wait() // s2's frame waits in the queue
		g.gate <- struct{}{}
		if err := <-first; err != nil {
			t.Fatalf("first Write: %v", err)
		}
		synctest.Wait() // a flusher writes s2's frame, held
		server.Close()  // the remote goes away: the client's read loop closes the connection
		synctest.Wait()
		select {
		case err := <-second:
			t.Fatalf("second Write returned %v while its frame was being written", err)
		default:
		}
		g.gate <- struct{}{}
		if err := <-second; err != nil {
			t.Fatalf("second Write: %v; the connection took its bytes", err)
		}
	})
}
