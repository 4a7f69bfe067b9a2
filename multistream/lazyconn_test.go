package multistream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/p2pnet/p2pnet/protocol"
)

// serve runs, on the listener's conn l, Negotiate with testRouter and then
// handler (if negotiation succeeded). The test waits for it when it ends.
func serve(t *testing.T, l net.Conn, handler func(c net.Conn) error) <-chan negotiation {
	res := make(chan negotiation, 1)
	go func() {
		id, h, err := testRouter().Negotiate(l)
		if err == nil && handler != nil {
			err = handler(l)
		}
		res <- negotiation{id, h, err}
	}()
	return res
}

// firstReadConn closes read on its first Read that returns data: the
// moment the peer's first write has started to arrive.
type firstReadConn struct {
	net.Conn
	once sync.Once
	read chan struct{}
}

func notifyFirstRead(c net.Conn) *firstReadConn {
	return &firstReadConn{Conn: c, read: make(chan struct{})}
}

func (c *firstReadConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() { close(c.read) })
	}
	return n, err
}

// goWrite calls w.Write(b) in a goroutine and returns its error.
func goWrite(w io.Writer, b []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := w.Write(b)
		ch <- err
	}()
	return ch
}

func TestLazyOneRoundTrip(t *testing.T) {
	const proto = "/echo/1.0.0"
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rd, rl := record(d), record(l)
		fl := notifyFirstRead(rl)
		res := serve(t, fl, func(c net.Conn) error {
			req := make([]byte, 4)
			if _, err := io.ReadFull(c, req); err != nil {
				return err
			}
			if string(req) != "ping" {
				return fmt.Errorf("request %q", req)
			}
			_, err := c.Write([]byte("pong"))
			return err
		})

		lc := NewLazyClient(rd, proto)
		// The write blocks on a pipe until the listener has read it all,
		// which it does only once its answer has been read: write in a
		// goroutine, as a net.Conn user would, and read once the write is
		// under way.
		werr := goWrite(lc, []byte("ping"))
		<-fl.read
		resp := make([]byte, 4)
		if _, err := io.ReadFull(lc, resp); err != nil || string(resp) != "pong" {
			t.Fatalf("read %q, %v; want pong", resp, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("Write: %v", err)
		}
		if r := <-res; r.err != nil || r.h != "echo-exact" {
			t.Fatalf("listener: %q, %q, %v", r.id, r.h, r.err)
		}

		// One write each way per round trip.
		if got, want := rd.Writes(), [][]byte{append(wire(ProtocolID, proto), "ping"...)}; !equalWrites(got, want) {
			t.Errorf("dialer wrote %q, want %q", got, want)
		}
		if got, want := rl.Writes(), [][]byte{wire(ProtocolID, proto), []byte("pong")}; !equalWrites(got, want) {
			t.Errorf("listener wrote %q, want %q", got, want)
		}
	})
}

func TestLazyReadBeforeWrite(t *testing.T) {
	const proto = "/ipfs/ping/1.0.0"
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rd := record(d)
		res := serve(t, l, func(c net.Conn) error {
			if _, err := c.Write([]byte("hello")); err != nil {
				return err
			}
			b := make([]byte, 1)
			_, err := io.ReadFull(c, b)
			if err == nil && b[0] != 'x' {
				err = fmt.Errorf("read %q", b)
			}
			return err
		})
		lc := NewLazyClient(rd, proto)
		got := make([]byte, 5)
		if _, err := io.ReadFull(lc, got); err != nil || string(got) != "hello" {
			t.Fatalf("read %q, %v; want hello", got, err)
		}
		if _, err := lc.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if r := <-res; r.err != nil || r.h != "ping" {
			t.Fatalf("listener: %q, %q, %v", r.id, r.h, r.err)
		}
		if got, want := rd.Writes(), [][]byte{wire(ProtocolID, proto), []byte("x")}; !equalWrites(got, want) {
			t.Errorf("dialer wrote %q, want %q", got, want)
		}
	})
}

func TestLazyNotSupported(t *testing.T) {
	const proto = "/unknown/1.0.0"
	checkNotSupported := func(t *testing.T, err error) {
		t.Helper()
		var nse *NotSupportedError
		if !errors.Is(err, ErrNotSupported) || !errors.As(err, &nse) || !slices.Equal(nse.Protocols, []protocol.ID{proto}) {
			t.Fatalf("error = %v, want not supported %q", err, proto)
		}
	}
	forEachConn(t, func(t *testing.T, ct connType) {
		t.Run("write first", func(t *testing.T) {
			d, l := ct.pair(t)
			fl := notifyFirstRead(l)
			res := serve(t, fl, nil)
			lc := NewLazyClient(d, proto)
			werr := goWrite(lc, []byte("data"))
			<-fl.read
			_, rerr := lc.Read(make([]byte, 10))
			checkNotSupported(t, rerr)
			if err := <-werr; err != nil {
				t.Fatalf("first Write: %v", err) // sent before the answer came
			}
			_, err := lc.Write([]byte("more"))
			checkNotSupported(t, err)
			if err != rerr {
				t.Errorf("Write error %v is not the Read error %v", err, rerr)
			}
			if _, err := lc.Read(make([]byte, 10)); err != rerr {
				t.Errorf("second Read error = %v, want the first one", err)
			}
			lc.Close()
			// The listener took "data" for a proposal and waits for the rest.
			if r := <-res; !errors.Is(r.err, io.ErrUnexpectedEOF) {
				t.Errorf("listener error = %v, want unexpected EOF", r.err)
			}
		})
		t.Run("read first", func(t *testing.T) {
			d, l := ct.pair(t)
			rd := record(d)
			res := serve(t, l, nil)
			lc := NewLazyClient(rd, proto)
			_, err := lc.Read(make([]byte, 10))
			checkNotSupported(t, err)
			_, err = lc.Write([]byte("x"))
			checkNotSupported(t, err)
			if got, want := rd.Writes(), [][]byte{wire(ProtocolID, proto)}; !equalWrites(got, want) {
				t.Errorf("dialer wrote %q, want only the handshake", got)
			}
			lc.Close()
			if r := <-res; r.err == nil {
				t.Errorf("listener accepted %q", r.id)
			}
		})
	})
}

func TestLazyCloseWrite(t *testing.T) {
	const proto = "/ipfs/ping/1.0.0"
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rd := record(d)
		lc := NewLazyClient(rd, proto)
		if !ct.halfClose {
			err := lc.CloseWrite()
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("CloseWrite on %s: error = %v, want ErrUnsupported", ct.name, err)
			}
			if w := rd.Writes(); len(w) != 0 {
				t.Fatalf("failed CloseWrite wrote %q", w)
			}
			return
		}
		res := serve(t, l, func(c net.Conn) error {
			rest, err := io.ReadAll(c)
			if err != nil || len(rest) != 0 {
				return fmt.Errorf("read %q, %v; want EOF", rest, err)
			}
			if _, err := c.Write([]byte("bye")); err != nil {
				return err
			}
			return closeWrite(c)
		})
		if err := lc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(lc)
		if err != nil || string(got) != "bye" {
			t.Fatalf("read %q, %v; want bye", got, err)
		}
		if r := <-res; r.err != nil || r.h != "ping" {
			t.Fatalf("listener: %q, %q, %v", r.id, r.h, r.err)
		}
		if got, want := rd.Writes(), [][]byte{wire(ProtocolID, proto)}; !equalWrites(got, want) {
			t.Errorf("dialer wrote %q, want %q", got, want)
		}
	})
}

func TestLazyCloseSendsHandshake(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		res := serve(t, l, func(c net.Conn) error {
			// The stream ends with EOF or, on TCP, a reset provoked by
			// the echo: either way no data follows the handshake.
			if rest, _ := io.ReadAll(c); len(rest) != 0 {
				return fmt.Errorf("read %q after the handshake", rest)
			}
			return nil
		})
		lc := NewLazyClient(d, "/ipfs/ping/1.0.0")
		if err := lc.Close(); err != nil {
			t.Fatal(err)
		}
		// The listener negotiates although the dialer is gone.
		if r := <-res; r.err != nil || r.h != "ping" {
			t.Fatalf("listener: %q, %q, %v", r.id, r.h, r.err)
		}
	})
}

func TestLazyFlush(t *testing.T) {
	const proto = "/echo/1.0.0"
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rd := record(d)
		res := serve(t, l, func(c net.Conn) error {
			b := make([]byte, 2)
			_, err := io.ReadFull(c, b)
			return err
		})
		lc := NewLazyClient(rd, proto)
		if err := lc.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := lc.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := lc.Read(nil); err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		if _, err := lc.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		if r := <-res; r.err != nil {
			t.Fatalf("listener: %v", r.err)
		}
		if got, want := rd.Writes(), [][]byte{wire(ProtocolID, proto), []byte("hi")}; !equalWrites(got, want) {
			t.Errorf("dialer wrote %q, want %q", got, want)
		}
	})
}

func TestLazyConcurrentReadWrite(t *testing.T) {
	// One goroutine writes, one reads, started together so that either may
	// send the handshake; the listener echoes.
	const chunks, size = 50, 100
	forEachConn(t, func(t *testing.T, ct connType) {
		for i := range 10 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				d, l := ct.pair(t)
				res := serve(t, l, func(c net.Conn) error {
					_, err := io.Copy(c, c)
					if errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
						err = nil
					}
					return err
				})
				lc := NewLazyClient(d, "/echo/1.5.0")
				var sent bytes.Buffer
				for c := range chunks {
					sent.Write(bytes.Repeat([]byte{byte('a' + c%26)}, size))
				}
				var wg sync.WaitGroup
				wg.Go(func() {
					b := sent.Bytes()
					for len(b) > 0 {
						if _, err := lc.Write(b[:size]); err != nil {
							t.Error(err)
							return
						}
						b = b[size:]
					}
				})
				got := make([]byte, sent.Len())
				wg.Go(func() {
					if _, err := io.ReadFull(lc, got); err != nil {
						t.Error(err)
					}
				})
				wg.Wait()
				if !bytes.Equal(got, sent.Bytes()) {
					t.Errorf("echo differs from what was sent")
				}
				lc.Close()
				if r := <-res; r.err != nil || r.h != "echo-match" {
					t.Errorf("listener: %q, %q, %v", r.id, r.h, r.err)
				}
			})
		}
	})
}

func TestLazyLargeFirstWrite(t *testing.T) {
	const proto = "/echo/1.0.0"
	data := bytes.Repeat([]byte("0123456789"), 1000)
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rd := record(d)
		got := make([]byte, len(data))
		fl := notifyFirstRead(l)
		res := serve(t, fl, func(c net.Conn) error {
			_, err := io.ReadFull(c, got)
			return err
		})
		lc := NewLazyClient(rd, proto)
		type result struct {
			n   int
			err error
		}
		wres := make(chan result, 1)
		go func() {
			n, err := lc.Write(data)
			wres <- result{n, err}
		}()
		<-fl.read
		if _, err := lc.Read(nil); err != nil {
			t.Fatal(err)
		}
		if w := <-wres; w.n != len(data) || w.err != nil {
			t.Fatalf("Write = %d, %v; want %d", w.n, w.err, len(data))
		}
		if r := <-res; r.err != nil {
			t.Fatalf("listener: %v", r.err)
		}
		if !bytes.Equal(got, data) {
			t.Error("listener got other data")
		}
		// The handshake and the start of the data fill one buffer; the
		// rest follows in a second write.
		w := rd.Writes()
		hs := wire(ProtocolID, proto)
		if len(w) != 2 || !bytes.HasPrefix(w[0], hs) || len(w[0]) != bufSize ||
			!bytes.Equal(append(w[0][len(hs):], w[1]...), data) {
			t.Errorf("dialer made %d writes, the first of %d bytes", len(w), len(w[0]))
		}
	})
}

func TestLazyInvalidProtocol(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, _ := ct.pair(t)
		rd := record(d)
		lc := NewLazyClient(rd, "ls")
		if _, err := lc.Write([]byte("x")); !errors.Is(err, ErrInvalidProtocol) {
			t.Errorf("Write error = %v, want ErrInvalidProtocol", err)
		}
		if _, err := lc.Read(make([]byte, 1)); !errors.Is(err, ErrInvalidProtocol) {
			t.Errorf("Read error = %v, want ErrInvalidProtocol", err)
		}
		if err := lc.Flush(); !errors.Is(err, ErrInvalidProtocol) {
			t.Errorf("Flush error = %v, want ErrInvalidProtocol", err)
		}
		if err := lc.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if w := rd.Writes(); len(w) != 0 {
			t.Errorf("wrote %q", w)
		}
	})
}

func TestLazyBadAnswers(t *testing.T) {
	const proto = "/ipfs/ping/1.0.0"
	sent := len(wire(ProtocolID, proto))
	tests := []struct {
		name    string
		answer  []byte
		wantErr error
	}{
		{"wrong header", wire("/multistream/2.0.0", proto), ErrHeaderMismatch},
		{"other protocol", wire(ProtocolID, "/ipfs/ping/2.0.0"), ErrUnexpectedResponse},
		{"huge length", append(wire(ProtocolID), 0xff, 0xff, 0xff, 0xff, 0x0f), ErrTooLarge},
		{"no newline", append(wire(ProtocolID), "\x03abc"...), ErrMalformed},
		{"truncated", wire(ProtocolID, proto)[:25], io.ErrUnexpectedEOF},
		{"nothing", nil, io.ErrUnexpectedEOF},
		// Short banners of other protocols are named as such, not as a
		// truncated answer.
		{"ssh banner", []byte("SSH-2.0-OpenSSH_9.2\r\n"), ErrHeaderMismatch},
		{"short http", []byte("HTTP/1.0 400\r\n"), ErrHeaderMismatch},
	}
	forEachConn(t, func(t *testing.T, ct connType) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, l := ct.pair(t)
				fakeListener(t, l, sent, tt.answer, true)
				lc := NewLazyClient(d, proto)
				_, err := lc.Read(make([]byte, 8))
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Read error = %v, want %v", err, tt.wantErr)
				}
				if _, err2 := lc.Read(make([]byte, 8)); err2 != err {
					t.Errorf("second Read error = %v, want the first", err2)
				}
				if _, err2 := lc.Write([]byte("x")); err2 != err {
					t.Errorf("Write error = %v, want the Read error", err2)
				}
			})
		}
	})
}

// scriptedConn reads from r and discards writes.
type scriptedConn struct {
	io.Reader
	mu     sync.Mutex // guards the following
	writes int
	closed bool
}

func (c *scriptedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return len(b), nil
}

func (c *scriptedConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func TestLazyReadBuffering(t *testing.T) {
	const proto = "/ipfs/ping/1.0.0"
	answer := append(wire(ProtocolID, proto), "hello world"...)
	readers := map[string]func() io.Reader{
		// Everything in one read: what follows the answer is kept.
		"one read": func() io.Reader { return bytes.NewReader(answer) },
		// The last data comes with io.EOF, which must follow the data.
		"data with EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(answer)) },
		// A byte at a time: the answer is parsed across reads.
		"byte by byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(answer)) },
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			c := &scriptedConn{Reader: r()}
			lc := NewLazyClient(c, proto)
			var got []byte
			b := make([]byte, 3)
			for {
				n, err := lc.Read(b)
				got = append(got, b[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
			}
			if string(got) != "hello world" {
				t.Errorf("read %q, want hello world", got)
			}
			if c.writes != 1 {
				t.Errorf("%d writes, want the handshake only", c.writes)
			}
		})
	}
}

// failingWriter fails every Write.
type failingWriter struct {
	scriptedConn
	err error
}

func (c *failingWriter) Write([]byte) (int, error) { return 0, c.err }

func TestLazyWriteError(t *testing.T) {
	boom := errors.New("boom")
	readCalled := errors.New("read called")
	c := &failingWriter{scriptedConn: scriptedConn{Reader: iotest.ErrReader(readCalled)}, err: boom}
	lc := NewLazyClient(c, "/a")
	_, err := lc.Write([]byte("x"))
	if !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want boom", err)
	}
	if _, err2 := lc.Write([]byte("x")); err2 != err {
		t.Errorf("second Write error = %v, want the first", err2)
	}
	if err := lc.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush error = %v, want boom", err)
	}
	// No answer can come to a handshake that was not sent: Read fails
	// without reading.
	if _, err := lc.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("Read error = %v, want boom", err)
	}
}
