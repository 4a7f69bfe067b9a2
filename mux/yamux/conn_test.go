package yamux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

func TestEcho(t *testing.T) {
	forEachConnType(t, func(t *testing.T, dial dialer) {
		client, server := newPair(t, dial, nil, nil, nil)
		go echoServer(server)

		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		msg := []byte("hello, yamux")
		if n, err := s.Write(msg); n != len(msg) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo = %q, want %q", got, msg)
		}
	})
}

func TestManyConcurrentStreams(t *testing.T) {
	forEachConnType(t, func(t *testing.T, dial dialer) {
		client, server := newPair(t, dial, nil, nil, nil)
		go echoServer(server)

		const streams = 1000
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for i := range streams {
			wg.Go(func() {
				errs <- echoOnce(client, fmt.Appendf(nil, "stream %d says hello", i))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// echoOnce sends msg on a new stream of c and checks that it comes back.
func echoOnce(c *Conn, msg []byte) error {
	s, err := c.Open(context.Background())
	if err != nil {
		return err
	}
	defer s.Close()
	// Write while reading: the echo of a message larger than the windows
	// would otherwise block both sides.
	writeErr := make(chan error, 1)
	go func() {
		if _, err := s.Write(msg); err != nil {
			writeErr <- err
			return
		}
		writeErr <- s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err := <-writeErr; err != nil {
		return err
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("stream %d: echo %q, want %q", s.ID(), got, msg)
	}
	return nil
}

// prng returns a deterministic stream of pseudo-random bytes.
func prng(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

func TestLargeTransfer(t *testing.T) {
	const size = 100 << 20
	forEachConnType(t, func(t *testing.T, dial dialer) {
		client, server := newPair(t, dial, nil, nil, nil)
		done := make(chan error, 1)
		go func() {
			s, err := server.Accept()
			if err != nil {
				done <- err
				return
			}
			defer s.Close()
			want := prng(1)
			got := make([]byte, 256<<10)
			exp := make([]byte, len(got))
			total := 0
			for {
				n, err := s.Read(got)
				if n > 0 {
					io.ReadFull(want, exp[:n])
					if !bytes.Equal(got[:n], exp[:n]) {
						done <- fmt.Errorf("data differs in the %d bytes after offset %d", n, total)
						return
					}
					total += n
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					done <- err
					return
				}
			}
			if total != size {
				done <- fmt.Errorf("received %d bytes, want %d", total, size)
				return
			}
			done <- nil
		}()

		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if n, err := io.CopyBuffer(s, io.LimitReader(prng(1), size), make([]byte, 1<<20)); n != size || err != nil {
			t.Fatalf("sent %d bytes: %v", n, err)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestHalfClose(t *testing.T) {
	forEachConnType(t, func(t *testing.T, dial dialer) {
		client, server := newPair(t, dial, nil, nil, nil)
		done := make(chan error, 1)
		go func() {
			s, err := server.Accept()
			if err != nil {
				done <- err
				return
			}
			defer s.Close()
			req, err := io.ReadAll(s) // until the client's FIN
			if err != nil {
				done <- err
				return
			}
			// The server can still write after the client half-closed.
			if _, err := s.Write(append([]byte("re: "), req...)); err != nil {
				done <- err
				return
			}
			done <- s.CloseWrite()
		}()

		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Write([]byte("request"))
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("more")); !errors.Is(err, ErrStreamClosedWrite) {
			t.Fatalf("Write after CloseWrite = %v, want ErrStreamClosedWrite", err)
		}
		resp, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(resp) != "re: request" {
			t.Fatalf("response %q", resp)
		}
		if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read after EOF = %d, %v", n, err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Both sides closed both directions: both forget the stream.
		s.Close()
		syncFrames(t, client, server)
		syncFrames(t, server, client)
		if n, m := client.NumStreams(), server.NumStreams(); n != 0 || m != 0 {
			t.Fatalf("streams tracked after closing: client %d, server %d", n, m)
		}
	})
}

// syncFrames returns once to has processed every frame from queued
// before the call: from opens a stream and sends a byte on it, which to
// reads. to must not be accepting streams elsewhere.
func syncFrames(t *testing.T, from, to *Conn) {
	t.Helper()
	s, err := from.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	ss, err := to.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Reset()
	if _, err := io.ReadFull(ss, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestCloseReadInterruptsRead(t *testing.T) {
	forEachConnType(t, func(t *testing.T, dial dialer) {
		client, server := newPair(t, dial, nil, nil, nil)
		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ss, err := server.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer ss.Close()

		readErr := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 10))
			readErr <- err
		}()
		// Read blocks: nothing was sent. CloseRead interrupts it.
		if err := s.CloseRead(); err != nil {
			t.Fatal(err)
		}
		if err := <-readErr; !errors.Is(err, ErrStreamClosedRead) || err == io.EOF {
			t.Fatalf("interrupted Read = %v, want ErrStreamClosedRead", err)
		}
		if _, err := s.Read(make([]byte, 10)); !errors.Is(err, ErrStreamClosedRead) {
			t.Fatalf("Read after CloseRead = %v", err)
		}
		// The stream can still write, and data sent to it is discarded
		// with its credit returned: the remote writes far more than the
		// window without blocking forever.
		if _, err := s.Write([]byte("still writing")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(ss, prng(2), 4*initialWindow); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 13)
		if _, err := io.ReadFull(ss, got); err != nil || string(got) != "still writing" {
			t.Fatalf("server read %q, %v", got, err)
		}
	})
}

func TestReset(t *testing.T) {
	for _, side := range []string{"opener", "acceptor"} {
		t.Run(side, func(t *testing.T) {
			forEachConnType(t, func(t *testing.T, dial dialer) {
				client, server := newPair(t, dial, nil, nil, nil)
				s, err := client.Open(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				s.Write([]byte("x"))
				ss, err := server.Accept()
				if err != nil {
					t.Fatal(err)
				}
				resetter, other := s, ss
				if side == "acceptor" {
					resetter, other = ss, s
				}

				// The other side blocks in Read until the RST arrives.
				readErr := make(chan error, 1)
				go func() {
					buf := make([]byte, 10)
					for {
						if _, err := other.Read(buf); err != nil {
							readErr <- err
							return
						}
					}
				}()
				if err := resetter.Reset(); err != nil {
					t.Fatal(err)
				}
				if err := <-readErr; !errors.Is(err, network.ErrReset) {
					t.Fatalf("remote Read after Reset = %v, want network.ErrReset", err)
				}
				if _, err := other.Write([]byte("y")); !errors.Is(err, network.ErrReset) {
					t.Fatalf("remote Write after Reset = %v, want network.ErrReset", err)
				}
				if _, err := resetter.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
					t.Fatalf("local Read after Reset = %v, want network.ErrReset", err)
				}
				if _, err := resetter.Write([]byte("y")); !errors.Is(err, network.ErrReset) {
					t.Fatalf("local Write after Reset = %v, want network.ErrReset", err)
				}
				if err := resetter.Reset(); err != nil {
					t.Fatalf("second Reset = %v", err)
				}
				if err := resetter.Close(); err != nil {
					t.Fatalf("Close after Reset = %v", err)
				}
				other.Close()
				if client.NumStreams() != 0 || server.NumStreams() != 0 {
					t.Fatalf("streams tracked after reset: client %d, server %d", client.NumStreams(), server.NumStreams())
				}
			})
		})
	}
}

func TestRemoteVanishes(t *testing.T) {
	forEachConnType(t, func(t *testing.T, dial dialer) {
		a, b := dial(t)
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

		s, err := client.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ss, err := server.Accept()
		if err != nil {
			t.Fatal(err)
		}
		// A Write blocked on the window and a Read blocked on data.
		writeErr := make(chan error, 1)
		go func() {
			_, err := io.Copy(s, prng(3))
			writeErr <- err
		}()
		readErr := make(chan error, 1)
		go func() {
			_, err := s.Read(make([]byte, 1))
			readErr <- err
		}()
		// The remote's transport dies under it.
		b.Close()
		for _, ch := range []chan error{writeErr, readErr} {
			if err := <-ch; !errors.Is(err, network.ErrReset) || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("pending operation = %v, want network.ErrReset and net.ErrClosed", err)
			}
		}
		if _, err := client.Open(context.Background()); !errors.Is(err, ErrConnClosed) {
			t.Fatalf("Open after the remote vanished = %v", err)
		}
		if _, err := client.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after the remote vanished = %v", err)
		}
		if !client.IsClosed() {
			t.Fatal("IsClosed = false")
		}
		if _, err := ss.Read(make([]byte, 1)); err == nil {
			t.Fatal("server stream readable after its transport closed")
		}
	})
}

func TestStreamErrorsAfterConnClose(t *testing.T) {
	client, server := newPair(t, pipeDialer, nil, nil, nil)
	s, err := client.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ss, err := server.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The server half-closes with data in flight, then the connection ends:
	// the client still reads the data, then EOF.
	ss.Write([]byte("last words"))
	ss.CloseWrite()
	syncFrames(t, server, client) // the data and FIN are in

	client.Close()
	if err := client.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "last words" {
		t.Fatalf("ReadAll after Close = %q, %v", got, err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) || !errors.Is(err, network.ErrReset) {
		t.Fatalf("Write after Close = %v", err)
	}
	if _, err := client.Open(context.Background()); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("Open after Close = %v", err)
	}
	// The server got a normal GoAway.
	if _, err := server.Accept(); !errors.As(err, new(*GoAwayError)) {
		t.Fatalf("server Accept = %v, want a GoAwayError", err)
	}
	var ga *GoAwayError
	if _, err := ss.Read(make([]byte, 1)); !errors.As(err, &ga) || ga.Code != goAwayNormal {
		t.Fatalf("server Read = %v, want GoAway code 0", err)
	}
}

func TestOpenContext(t *testing.T) {
	client, _ := newPair(t, pipeDialer, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := client.Open(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a canceled context = %v", err)
	}
}

func TestTimeoutErrors(t *testing.T) {
	var ne net.Error
	if !errors.As(os.ErrDeadlineExceeded, &ne) || !ne.Timeout() {
		t.Fatal("os.ErrDeadlineExceeded is not a timeout net.Error")
	}
}

// TestNoStall catches lost wakeups: over net.Pipe in a synctest bubble all
// the work happens at one instant unless something waits for a timer (such
// as the next keepalive ping) to make progress.
func TestNoStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		client, server := newPair(t, pipeDialer, nil, nil, nil)
		go echoServer(server)
		go echoServer(client)
		var wg sync.WaitGroup
		errs := make(chan error, 402)
		for i := range 200 {
			wg.Go(func() { errs <- echoOnce(client, fmt.Appendf(nil, "client %d", i)) })
			wg.Go(func() { errs <- echoOnce(server, bytes.Repeat([]byte{byte(i)}, i<<10)) })
		}
		for _, c := range []*Conn{client, server} {
			wg.Go(func() { errs <- echoOnce(c, bytes.Repeat([]byte("big"), 1<<20)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the exchanges took %v of fake time: something waited for a timer", d)
		}
	})
}
