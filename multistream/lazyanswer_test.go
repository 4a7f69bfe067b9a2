package multistream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/protocol"
)

// Tests of when a LazyConn reports the listener's answer: a refusal must
// reach the caller of Read, Write, Close or CloseWrite, never be lost.

// refusedProto is a protocol testRouter does not serve.
const refusedProto protocol.ID = "/unknown/1.0.0"

// memPair is a memconn pair (buffered like a socket, usable in synctest
// bubbles), closed when the test ends.
func memPair(tb testing.TB) (net.Conn, net.Conn) {
	d, l := memconn.Pair(0)
	tb.Cleanup(func() {
		d.Close()
		l.Close()
	})
	return d, l
}

// probeConn counts the bytes read through it and has a CloseWrite that
// only counts calls: memconn cannot half-close, and the tests that use it
// need the dialer's CloseWrite, not the listener's EOF.
type probeConn struct {
	net.Conn
	read        atomic.Int64
	closeWrites atomic.Int32
}

func (c *probeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c *probeConn) CloseWrite() error {
	c.closeWrites.Add(1)
	return nil
}

// memProbePair is memPair with the dialer's end in a probeConn.
func memProbePair(tb testing.TB) (net.Conn, net.Conn) {
	d, l := memPair(tb)
	return &probeConn{Conn: d}, l
}

// halfClosePairs make pairs whose dialer end has CloseWrite: a real
// half-close over TCP, a recorded one over memconn.
var halfClosePairs = []connType{
	{name: "mem", pair: memProbePair, halfClose: true},
	{name: "tcp", pair: tcpPair, halfClose: true},
}

func forEachHalfClosePair(t *testing.T, f func(t *testing.T, ct connType)) {
	t.Helper()
	for _, ct := range halfClosePairs {
		t.Run(ct.name, func(t *testing.T) { f(t, ct) })
	}
}

// checkRefused fails the test unless err is the listener's refusal of
// refusedProto.
func checkRefused(t *testing.T, what string, err error) {
	t.Helper()
	var nse *NotSupportedError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &nse) || !slices.Equal(nse.Protocols, []protocol.ID{refusedProto}) {
		t.Fatalf("%s: error = %v, want the refusal of %s", what, err, refusedProto)
	}
}

// mustWrite writes b, which must succeed: it goes out before the answer.
func mustWrite(t *testing.T, lc *LazyConn, b string) {
	t.Helper()
	if _, err := lc.Write([]byte(b)); err != nil {
		t.Fatalf("Write(%q) before the answer: %v", b, err)
	}
}

func TestLazyRefusalReported(t *testing.T) {
	// Each case writes (or not), then meets the refusal in one way; every
	// later call reports the same error.
	tests := []struct {
		name string
		run  func(t *testing.T, lc *LazyConn)
	}{
		{"Read", func(t *testing.T, lc *LazyConn) {
			mustWrite(t, lc, "data")
			_, err := lc.Read(make([]byte, 8))
			checkRefused(t, "Read", err)
			if _, werr := lc.Write([]byte("more")); werr != err {
				t.Errorf("Write after the answer: %v, want the Read error", werr)
			}
			checkRefused(t, "Close after Read", lc.Close())
		}},
		{"Close", func(t *testing.T, lc *LazyConn) {
			mustWrite(t, lc, "data")
			err := lc.Close()
			checkRefused(t, "Close", err)
			if err2 := lc.Close(); err2 != err {
				t.Errorf("second Close: %v, want the first error", err2)
			}
			if _, rerr := lc.Read(make([]byte, 8)); rerr != err {
				t.Errorf("Read after Close: %v, want the Close error", rerr)
			}
		}},
		{"CloseWrite", func(t *testing.T, lc *LazyConn) {
			mustWrite(t, lc, "data")
			err := lc.CloseWrite()
			checkRefused(t, "CloseWrite", err)
			if _, werr := lc.Write([]byte("more")); werr != err {
				t.Errorf("Write after CloseWrite saw the answer: %v, want the CloseWrite error", werr)
			}
			if _, rerr := lc.Read(make([]byte, 8)); rerr != err {
				t.Errorf("Read after CloseWrite: %v, want the CloseWrite error", rerr)
			}
			checkRefused(t, "Close after CloseWrite", lc.Close())
		}},
		{"Close without data", func(t *testing.T, lc *LazyConn) {
			checkRefused(t, "Close", lc.Close())
		}},
		{"CloseWrite without data", func(t *testing.T, lc *LazyConn) {
			checkRefused(t, "CloseWrite", lc.CloseWrite())
		}},
	}
	forEachHalfClosePair(t, func(t *testing.T, ct connType) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, l := ct.pair(t)
				res := serve(t, l, nil)
				lc := NewLazyClient(d, refusedProto)
				tt.run(t, lc)
				lc.Close()
				if r := <-res; r.err == nil {
					t.Errorf("listener accepted %q", r.id)
				}
			})
		}
	})
}

func TestLazyWriteOnly(t *testing.T) {
	// A protocol that only sends: Write, then Close. Close is where the
	// sender learns whether the listener took the data.
	payload := bytes.Repeat([]byte("0123456789"), 100)
	forEachHalfClosePair(t, func(t *testing.T, ct connType) {
		t.Run("accepted", func(t *testing.T) {
			d, l := ct.pair(t)
			var got []byte
			res := serve(t, l, func(c net.Conn) error {
				var err error
				got, err = io.ReadAll(c)
				return err
			})
			lc := NewLazyClient(d, "/ipfs/ping/1.0.0")
			mustWrite(t, lc, string(payload))
			if err := lc.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if r := <-res; r.err != nil || r.h != "ping" {
				t.Fatalf("listener: %q, %q, %v", r.id, r.h, r.err)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("listener got %d bytes, want the %d written", len(got), len(payload))
			}
		})
		t.Run("refused", func(t *testing.T) {
			d, l := ct.pair(t)
			res := serve(t, l, nil)
			lc := NewLazyClient(d, refusedProto)
			mustWrite(t, lc, string(payload))
			checkRefused(t, "Close", lc.Close())
			<-res
		})
	})
}

func TestLazyRequestResponse(t *testing.T) {
	// Write the request, CloseWrite, read the response to EOF.
	t.Run("accepted", func(t *testing.T) {
		d, l := tcpPair(t) // the listener needs a real end of stream
		res := serve(t, l, func(c net.Conn) error {
			req, err := io.ReadAll(c)
			if err != nil || string(req) != "request" {
				return fmt.Errorf("read %q, %v", req, err)
			}
			if _, err := c.Write([]byte("response")); err != nil {
				return err
			}
			return closeWrite(c)
		})
		lc := NewLazyClient(d, "/echo/1.0.0")
		mustWrite(t, lc, "request")
		if err := lc.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		got, err := io.ReadAll(lc)
		if err != nil || string(got) != "response" {
			t.Fatalf("read %q, %v; want response", got, err)
		}
		if err := lc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if r := <-res; r.err != nil {
			t.Errorf("listener: %v", r.err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		forEachHalfClosePair(t, func(t *testing.T, ct connType) {
			d, l := ct.pair(t)
			res := serve(t, l, nil)
			lc := NewLazyClient(d, refusedProto)
			mustWrite(t, lc, "request")
			err := lc.CloseWrite()
			checkRefused(t, "CloseWrite", err)
			if got, rerr := io.ReadAll(lc); rerr != err || len(got) != 0 {
				t.Errorf("ReadAll = %q, %v; want the CloseWrite error", got, rerr)
			}
			lc.Close()
			<-res
		})
	})
}

// silentListener reads and drops everything the dialer sends and never
// answers, until the dialer closes.
func silentListener(l net.Conn) {
	go func() { _, _ = io.Copy(io.Discard, l) }()
}

func TestLazyAnswerWaitBound(t *testing.T) {
	// The listener never answers: Close and CloseWrite give up at the
	// read deadline, or after AnswerTimeout when there is none.
	tests := []struct {
		name     string
		deadline func(lc *LazyConn) error // nil: none
		op       string                   // "Close" or "CloseWrite"
		want     time.Duration
	}{
		{"Close/default", nil, "Close", AnswerTimeout},
		{"Close/read deadline", func(lc *LazyConn) error {
			return lc.SetReadDeadline(time.Now().Add(3 * time.Second))
		}, "Close", 3 * time.Second},
		{"Close/deadline", func(lc *LazyConn) error {
			return lc.SetDeadline(time.Now().Add(2 * time.Second))
		}, "Close", 2 * time.Second},
		{"Close/deadline passed", func(lc *LazyConn) error {
			return lc.SetReadDeadline(time.Now().Add(-time.Second))
		}, "Close", 0},
		{"CloseWrite/default", nil, "CloseWrite", AnswerTimeout},
		{"CloseWrite/read deadline", func(lc *LazyConn) error {
			return lc.SetReadDeadline(time.Now().Add(4 * time.Second))
		}, "CloseWrite", 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, l := memProbePair(t)
				defer d.Close()
				silentListener(l)
				lc := NewLazyClient(d, "/ipfs/ping/1.0.0")
				if tt.deadline != nil {
					if err := tt.deadline(lc); err != nil {
						t.Fatal(err)
					}
				}
				mustWrite(t, lc, "data")
				start := time.Now()
				var err error
				if tt.op == "Close" {
					err = lc.Close()
				} else {
					err = lc.CloseWrite()
				}
				if got := time.Since(start); got != tt.want {
					t.Errorf("%s returned after %v, want %v", tt.op, got, tt.want)
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%s: error = %v, want one matching os.ErrDeadlineExceeded", tt.op, err)
				}
				// Negotiation has failed: the error sticks, and a Close
				// that follows does not wait again.
				if _, rerr := lc.Read(make([]byte, 1)); !errors.Is(rerr, os.ErrDeadlineExceeded) {
					t.Errorf("Read after the timeout: %v", rerr)
				}
				if _, werr := lc.Write([]byte("x")); !errors.Is(werr, os.ErrDeadlineExceeded) {
					t.Errorf("Write after the timeout: %v", werr)
				}
				end := time.Now()
				if cerr := lc.Close(); !errors.Is(cerr, os.ErrDeadlineExceeded) || time.Since(end) != 0 {
					t.Errorf("Close after the timeout: %v after %v", cerr, time.Since(end))
				}
			})
		})
	}
}

// gatedListener answers proto (with testRouter) once release is closed,
// then reads until the dialer closes. It does nothing if answer is false.
func gatedListener(l net.Conn, release <-chan struct{}, answer bool) {
	go func() {
		if answer {
			<-release
			if _, _, err := testRouter().Negotiate(l); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, l)
	}()
}

func TestLazyCloseWaitsForAnswer(t *testing.T) {
	// The answer comes late: Close and CloseWrite return when it does,
	// not before, and report it.
	for _, op := range []string{"Close", "CloseWrite"} {
		for _, proto := range []protocol.ID{"/ipfs/ping/1.0.0", refusedProto} {
			t.Run(op+"/"+string(proto), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					d, l := memProbePair(t)
					defer d.Close()
					release := make(chan struct{})
					var releaseOnce sync.Once
					open := func() { releaseOnce.Do(func() { close(release) }) }
					defer open()
					gatedListener(l, release, true)
					lc := NewLazyClient(d, proto)
					mustWrite(t, lc, "x")
					done := make(chan error, 1)
					go func() {
						if op == "Close" {
							done <- lc.Close()
						} else {
							done <- lc.CloseWrite()
						}
					}()
					synctest.Wait()
					select {
					case err := <-done:
						t.Fatalf("%s returned %v before the answer", op, err)
					default:
					}
					open()
					err := <-done
					if proto == refusedProto {
						checkRefused(t, op, err)
					} else if err != nil {
						t.Fatalf("%s: %v", op, err)
					}
				})
			})
		}
	}
}

func TestLazyConcurrentReadClose(t *testing.T) {
	// A Read waits for the answer; Close, called meanwhile from another
	// goroutine, waits for the answer too, then closes, which ends the
	// Read.
	tests := []struct {
		name     string
		proto    protocol.ID
		answer   bool
		deadline time.Duration // read deadline, if not 0
		// what Close and Read return, and when
		check func(t *testing.T, cerr, rerr error)
		at    time.Duration
	}{
		{"accepted", "/ipfs/ping/1.0.0", true, 0, func(t *testing.T, cerr, rerr error) {
			if cerr != nil || !errors.Is(rerr, net.ErrClosed) {
				t.Errorf("Close: %v, Read: %v; want nil and net.ErrClosed", cerr, rerr)
			}
		}, 0},
		{"refused", refusedProto, true, 0, func(t *testing.T, cerr, rerr error) {
			checkRefused(t, "Close", cerr)
			checkRefused(t, "Read", rerr)
		}, 0},
		{"silent", "/ipfs/ping/1.0.0", false, 0, func(t *testing.T, cerr, rerr error) {
			if !errors.Is(cerr, os.ErrDeadlineExceeded) || !errors.Is(rerr, os.ErrDeadlineExceeded) {
				t.Errorf("Close: %v, Read: %v; want timeouts", cerr, rerr)
			}
		}, AnswerTimeout},
		{"silent with read deadline", "/ipfs/ping/1.0.0", false, 3 * time.Second, func(t *testing.T, cerr, rerr error) {
			if !errors.Is(cerr, os.ErrDeadlineExceeded) || !errors.Is(rerr, os.ErrDeadlineExceeded) {
				t.Errorf("Close: %v, Read: %v; want timeouts", cerr, rerr)
			}
		}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, l := memPair(t)
				defer d.Close()
				release := make(chan struct{})
				var releaseOnce sync.Once
				open := func() { releaseOnce.Do(func() { close(release) }) }
				defer open()
				gatedListener(l, release, tt.answer)
				lc := NewLazyClient(d, tt.proto)
				if tt.deadline != 0 {
					if err := lc.SetReadDeadline(time.Now().Add(tt.deadline)); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				rdone := make(chan error, 1)
				go func() {
					_, err := lc.Read(make([]byte, 8))
					rdone <- err
				}()
				synctest.Wait() // the Read is waiting for the answer
				cdone := make(chan error, 1)
				go func() { cdone <- lc.Close() }()
				synctest.Wait()
				select {
				case err := <-cdone:
					t.Fatalf("Close returned %v before the answer or the bound", err)
				default:
				}
				open()
				cerr, rerr := <-cdone, <-rdone
				tt.check(t, cerr, rerr)
				if got := time.Since(start); got != tt.at {
					t.Errorf("Close and Read returned after %v, want %v", got, tt.at)
				}
			})
		})
	}
}

func TestLazyCloseWriteKeepsPending(t *testing.T) {
	// The listener's answer and its first data arrive together. CloseWrite
	// reads the answer; the data must stay for Read.
	const proto = "/ipfs/ping/1.0.0"
	hs := wire(ProtocolID, proto)
	reply := append(bytes.Clone(hs), "hello world"...)
	t.Run("sequential", func(t *testing.T) {
		d, l := memProbePair(t)
		fakeListener(t, l, len(hs)+len("req"), reply, true)
		lc := NewLazyClient(d, proto)
		mustWrite(t, lc, "req")
		if err := lc.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		if n := d.(*probeConn).read.Load(); n < int64(len(hs)) {
			t.Fatalf("CloseWrite returned having read %d bytes, before the %d-byte answer", n, len(hs))
		}
		got, err := io.ReadAll(lc)
		if err != nil || string(got) != "hello world" {
			t.Fatalf("read %q, %v; want hello world", got, err)
		}
		if err := lc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// Whichever of Read and CloseWrite reads the answer, Read gets all
		// the data, in order.
		for i := range 20 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				d, l := memProbePair(t)
				fakeListener(t, l, len(hs)+len("req"), reply, true)
				lc := NewLazyClient(d, proto)
				type result struct {
					b   []byte
					err error
				}
				rres := make(chan result, 1)
				go func() {
					var got []byte
					b := make([]byte, 3)
					for {
						n, err := lc.Read(b)
						got = append(got, b[:n]...)
						if err != nil {
							if err == io.EOF {
								err = nil
							}
							rres <- result{got, err}
							return
						}
					}
				}()
				mustWrite(t, lc, "req")
				if err := lc.CloseWrite(); err != nil {
					t.Errorf("CloseWrite: %v", err)
				}
				if r := <-rres; r.err != nil || string(r.b) != "hello world" {
					t.Errorf("read %q, %v; want hello world", r.b, r.err)
				}
				lc.Close()
			})
		}
	})
}
