// Package conformance is the behaviour suite every secured, multiplexed
// connection of p2pnet must pass, whatever its transport, security
// protocol and multiplexer: echo, half-close, CloseRead, resets in both
// directions, deadlines, many concurrent streams, big transfers, slow
// readers, and a peer that vanishes. Transport packages run it from their
// tests over each of their combinations.
//
// It may import network and the standard library.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// Pair is a connected pair of multiplexed connections. Kill closes the
// listener side's underlying socket abruptly, as a vanishing peer would.
type Pair struct {
	Dialer   network.MuxedConn
	Listener network.MuxedConn
	Kill     func()
}

// NewPair makes a fresh Pair; the suite closes both connections.
type NewPair func(t *testing.T) Pair

// Options tune the suite for slow combinations.
type Options struct {
	// BigTransfer is the size of the big transfer; 0 means 100 MiB.
	BigTransfer int
	// ConcurrentStreams is how many streams run at once; 0 means 1000.
	ConcurrentStreams int
	// MaxBuffered bounds how much a writer may get ahead of a reader that
	// does not read (flow control); 0 means 1 MiB.
	MaxBuffered int
}

// Run runs every behaviour test over pairs from newPair.
func Run(t *testing.T, newPair NewPair, opts Options) {
	if opts.BigTransfer == 0 {
		opts.BigTransfer = 100 << 20
	}
	if opts.ConcurrentStreams == 0 {
		opts.ConcurrentStreams = 1000
	}
	if opts.MaxBuffered == 0 {
		opts.MaxBuffered = 1 << 20
	}
	pair := func(t *testing.T) Pair {
		p := newPair(t)
		t.Cleanup(func() {
			p.Dialer.Close()
			p.Listener.Close()
		})
		return p
	}
	t.Run("Echo", func(t *testing.T) { testEcho(t, pair(t)) })
	t.Run("BothOpen", func(t *testing.T) { testBothOpen(t, pair(t)) })
	t.Run("HalfClose", func(t *testing.T) { testHalfClose(t, pair(t)) })
	t.Run("CloseRead", func(t *testing.T) { testCloseRead(t, pair(t)) })
	t.Run("ResetFromDialer", func(t *testing.T) { testReset(t, pair(t), true) })
	t.Run("ResetFromListener", func(t *testing.T) { testReset(t, pair(t), false) })
	t.Run("Deadlines", func(t *testing.T) { testDeadlines(t, pair(t)) })
	t.Run("ConcurrentStreams", func(t *testing.T) { testConcurrent(t, pair(t), opts.ConcurrentStreams) })
	t.Run("BigTransfer", func(t *testing.T) { testBigTransfer(t, pair(t), opts.BigTransfer) })
	t.Run("SlowReader", func(t *testing.T) { testSlowReader(t, pair(t), opts.MaxBuffered) })
	t.Run("PeerVanishes", func(t *testing.T) { testVanish(t, pair(t)) })
	t.Run("CloseConn", func(t *testing.T) { testCloseConn(t, pair(t)) })
}

// accept runs AcceptStream in the background.
func accept(c network.MuxedConn) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		s, err := c.AcceptStream()
		ch <- acceptResult{s, err}
	}()
	return ch
}

type acceptResult struct {
	s   network.MuxedStream
	err error
}

// open opens a stream on a and returns it with its peer on b. The opener
// writes first, as protocols do, so that lazy stream opening works.
func open(t *testing.T, a, b network.MuxedConn, first []byte) (network.MuxedStream, network.MuxedStream) {
	t.Helper()
	acc := accept(b)
	s, err := a.OpenStream(context.Background())
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	if _, err := s.Write(first); err != nil {
		t.Fatalf("first write: %v", err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatalf("AcceptStream: %v", r.err)
	}
	got := make([]byte, len(first))
	if _, err := io.ReadFull(r.s, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first bytes %q, %v; want %q", got, err, first)
	}
	return s, r.s
}

func testEcho(t *testing.T, p Pair) {
	s, r := open(t, p.Dialer, p.Listener, []byte("hello"))
	defer s.Close()
	defer r.Close()
	if _, err := r.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "world" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

func testBothOpen(t *testing.T, p Pair) {
	// Either side may open streams.
	for _, dir := range []struct{ a, b network.MuxedConn }{{p.Dialer, p.Listener}, {p.Listener, p.Dialer}} {
		s, r := open(t, dir.a, dir.b, []byte("x"))
		s.Close()
		r.Close()
	}
}

func testHalfClose(t *testing.T, p Pair) {
	s, r := open(t, p.Dialer, p.Listener, []byte("request"))
	defer s.Close()
	defer r.Close()
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The listener sees EOF after the request, and can still answer.
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("listener read after CloseWrite = %d, %v; want 0, EOF", n, err)
	}
	if _, err := r.Write([]byte("response")); err != nil {
		t.Fatalf("write after the remote's CloseWrite: %v", err)
	}
	if err := r.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "response" {
		t.Fatalf("dialer read %q, %v; want response then EOF", got, err)
	}
	// Writing after CloseWrite fails.
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("write after CloseWrite succeeded")
	}
}

func testCloseRead(t *testing.T, p Pair) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	defer s.Close()
	defer r.Close()
	// A blocked Read is interrupted with a non-EOF error.
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		done <- err
	}()
	// The read may or may not have started; either way it must end.
	if err := s.CloseRead(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || err == io.EOF {
		t.Fatalf("read interrupted by CloseRead returned %v; want a non-EOF error", err)
	}
	if _, err := s.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Fatalf("read after CloseRead returned %v; want a non-EOF error", err)
	}
	// The write side still works.
	if _, err := s.Write([]byte("still writing")); err != nil {
		t.Fatalf("write after CloseRead: %v", err)
	}
	got := make([]byte, len("still writing"))
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("remote read after our CloseRead: %v", err)
	}
}

func testReset(t *testing.T, p Pair, fromDialer bool) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	resetter, other := s, r
	if !fromDialer {
		resetter, other = r, s
	}
	// The other side is blocked in Read when the reset arrives.
	done := make(chan error, 1)
	go func() {
		_, err := other.Read(make([]byte, 1))
		done <- err
	}()
	if err := resetter.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, network.ErrReset) {
		t.Fatalf("remote read after Reset = %v; want ErrReset", err)
	}
	// Writes fail on both sides, eventually on the remote (once it has
	// seen the reset, which its Read proved).
	if _, err := other.Write([]byte("x")); !errors.Is(err, network.ErrReset) {
		t.Errorf("remote write after Reset = %v; want ErrReset", err)
	}
	if _, err := resetter.Write([]byte("x")); !errors.Is(err, network.ErrReset) {
		t.Errorf("local write after Reset = %v; want ErrReset", err)
	}
	if _, err := resetter.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
		t.Errorf("local read after Reset = %v; want ErrReset", err)
	}
	other.Close()
}

func testDeadlines(t *testing.T, p Pair) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	defer s.Close()
	defer r.Close()
	// A deadline in the past fails at once.
	if err := s.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline = %v; want os.ErrDeadlineExceeded", err)
	}
	// A future deadline interrupts a blocked read.
	if err := s.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked read = %v; want os.ErrDeadlineExceeded", err)
	}
	// Clearing the deadline makes the stream usable again.
	if err := s.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Fatalf("read after clearing the deadline: %v", err)
	}
	// A write deadline stops a writer blocked by flow control.
	if err := s.SetWriteDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write blocked by flow control = %v; want os.ErrDeadlineExceeded", err)
	}
}

func testConcurrent(t *testing.T, p Pair, n int) {
	// The listener echoes every stream.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			r, err := p.Listener.AcceptStream()
			if err != nil {
				t.Errorf("AcceptStream %d: %v", i, err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer r.Close()
				if _, err := io.Copy(r, r); err != nil {
					t.Errorf("echo: %v", err)
				}
			}()
		}
	}()
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- func() error {
				s, err := p.Dialer.OpenStream(context.Background())
				if err != nil {
					return fmt.Errorf("OpenStream: %w", err)
				}
				defer s.Close()
				msg := fmt.Appendf(nil, "stream %d says hello", i)
				if _, err := s.Write(msg); err != nil {
					return fmt.Errorf("write: %w", err)
				}
				if err := s.CloseWrite(); err != nil {
					return fmt.Errorf("CloseWrite: %w", err)
				}
				got, err := io.ReadAll(s)
				if err != nil {
					return fmt.Errorf("read: %w", err)
				}
				if !bytes.Equal(got, msg) {
					return fmt.Errorf("echo %q; want %q", got, msg)
				}
				return nil
			}()
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

// pattern fills b with a deterministic stream of bytes from offset off.
func pattern(b []byte, off int) {
	for i := range b {
		x := off + i
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
}

func testBigTransfer(t *testing.T, p Pair, size int) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	defer s.Close()
	defer r.Close()
	// Both directions at once.
	var wg sync.WaitGroup
	send := func(w network.MuxedStream) {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 256<<10)
		for off := 0; off < size; {
			n := min(len(buf), size-off, 1+rng.IntN(len(buf)))
			pattern(buf[:n], off)
			if _, err := w.Write(buf[:n]); err != nil {
				t.Errorf("write at %d: %v", off, err)
				return
			}
			off += n
		}
		if err := w.CloseWrite(); err != nil {
			t.Errorf("CloseWrite: %v", err)
		}
	}
	recv := func(rd network.MuxedStream) {
		defer wg.Done()
		buf := make([]byte, 100<<10)
		want := make([]byte, len(buf))
		off := 0
		for {
			n, err := rd.Read(buf)
			pattern(want[:n], off)
			if !bytes.Equal(buf[:n], want[:n]) {
				t.Errorf("corrupt data at offset %d", off)
				return
			}
			off += n
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("read at %d: %v", off, err)
				return
			}
		}
		if off != size {
			t.Errorf("received %d bytes; want %d", off, size)
		}
	}
	wg.Add(4)
	go send(s)
	go send(r)
	go recv(s)
	go recv(r)
	wg.Wait()
}

func testSlowReader(t *testing.T, p Pair, maxBuffered int) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	defer s.Close()
	defer r.Close()
	// The listener does not read: flow control must stop the writer once
	// the stream's window is full, however much it tries to write.
	if err := s.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := s.Write(make([]byte, 32<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write to a reader that never reads = %d, %v; want a deadline error", n, err)
	}
	if n > maxBuffered {
		t.Fatalf("writer got %d bytes ahead of a reader that never reads; flow control allows %d", n, maxBuffered)
	}
	// Once the reader reads, everything that was accepted arrives.
	s.SetWriteDeadline(time.Time{})
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.Copy(io.Discard, r)
	if err != nil || got != int64(n) {
		t.Fatalf("reader got %d bytes, %v; the writer had %d accepted", got, err, n)
	}
}

func testVanish(t *testing.T, p Pair) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	defer r.Close()
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		done <- err
	}()
	p.Kill()
	if err := <-done; err == nil {
		t.Fatal("read on a stream whose peer vanished succeeded")
	}
	// The connection itself is dead: accepting fails.
	if _, err := p.Dialer.AcceptStream(); err == nil {
		t.Fatal("AcceptStream on a dead connection succeeded")
	}
}

func testCloseConn(t *testing.T, p Pair) {
	s, r := open(t, p.Dialer, p.Listener, []byte("x"))
	defer r.Close()
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		done <- err
	}()
	if err := p.Dialer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !p.Dialer.IsClosed() {
		t.Error("IsClosed is false after Close")
	}
	if err := <-done; err == nil {
		t.Fatal("remote read after the connection closed succeeded")
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("write on a closed connection succeeded")
	}
	if _, err := p.Listener.AcceptStream(); err == nil {
		t.Error("remote AcceptStream after close succeeded")
	}
}
