package noise

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
)

// bufConn is a net.Conn that reads from r and writes to w.
type bufConn struct {
	r      io.Reader
	w      io.Writer
	closed bool
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, io.EOF
	}
	return c.r.Read(p)
}

func (c *bufConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *bufConn) Close() error                     { c.closed = true; return nil }
func (c *bufConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bufConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *bufConn) SetDeadline(time.Time) error      { return nil }
func (c *bufConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bufConn) SetWriteDeadline(time.Time) error { return nil }

var testKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// keyedConn returns a Conn over raw whose keys are both testKey.
func keyedConn(tb testing.TB, raw net.Conn) *Conn {
	tb.Helper()
	c := newConn(raw, "")
	if err := c.setKeys(testKey, testKey); err != nil {
		tb.Fatal(err)
	}
	return c
}

// encryptMessages returns the wire bytes of writing each of msgs with
// testKey, starting at nonce 0.
func encryptMessages(tb testing.TB, msgs ...[]byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	c := keyedConn(tb, &bufConn{w: &buf})
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// patternedData returns n bytes of deterministic pseudo-random data.
func patternedData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// TestTransfer100MiB sends 100 MiB each way at once over loopback TCP and
// checks every byte.
func TestTransfer100MiB(t *testing.T) {
	const (
		chunkSize = 1 << 20
		chunks    = 100
	)
	out, in := securePair(t, connPair{"tcp", tcpPair}, newTransport(t, ic.Ed25519), newTransport(t, ic.Ed25519))
	block := patternedData(chunkSize, 1)
	// chunk i is block with i stamped at its start, so that a lost,
	// repeated or reordered chunk is seen.
	chunk := func(dst []byte, i int) {
		copy(dst, block)
		binary.BigEndian.PutUint64(dst, uint64(i))
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, dir := range []struct{ from, to *Conn }{{out, in}, {in, out}} {
		wg.Go(func() {
			buf := make([]byte, chunkSize)
			for i := range chunks {
				chunk(buf, i)
				if n, err := dir.from.Write(buf); err != nil || n != chunkSize {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			got := make([]byte, chunkSize)
			want := make([]byte, chunkSize)
			for i := range chunks {
				if _, err := io.ReadFull(dir.to, got); err != nil {
					errs <- err
					return
				}
				chunk(want, i)
				if !bytes.Equal(got, want) {
					errs <- errors.New("chunk content differs")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestWriteReadSizes writes and reads with sizes around message bounds,
// over both connection types.
func TestWriteReadSizes(t *testing.T) {
	sizes := []int{1, 2, 15, 16, 17, 1000, maxPlaintextSize - 1, maxPlaintextSize, maxPlaintextSize + 1,
		2*maxPlaintextSize + 5, smallReadSize, 256 << 10, bigBufSize - 1, bigBufSize, bigBufSize + 1, 2*bigBufSize + 3}
	for _, pair := range connPairs {
		t.Run(pair.name, func(t *testing.T) {
			out, in := securePair(t, pair, newTransport(t, ic.Ed25519), newTransport(t, ic.Ed25519))
			var all []byte
			for i, s := range sizes {
				all = append(all, patternedData(s, uint64(i))...)
			}
			errc := make(chan error, 1)
			go func() {
				rest := all
				for _, s := range sizes {
					if _, err := out.Write(rest[:s]); err != nil {
						errc <- err
						return
					}
					rest = rest[s:]
				}
				errc <- nil
			}()
			got := make([]byte, 0, len(all))
			for i := 0; len(got) < len(all); i++ {
				s := sizes[len(sizes)-1-i%len(sizes)]
				n, err := in.Read(got[len(got):min(len(all), len(got)+s)])
				if err != nil {
					t.Fatal(err)
				}
				got = got[:len(got)+n]
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, all) {
				t.Fatal("data differs")
			}
		})
	}
}

// TestOneByteReads reads several messages one byte at a time.
func TestOneByteReads(t *testing.T) {
	data := patternedData(2*maxPlaintextSize+100, 7)
	wire := encryptMessages(t, data[:10], data[10:maxPlaintextSize+20], data[maxPlaintextSize+20:])
	c := keyedConn(t, &bufConn{r: bytes.NewReader(wire)})
	var got []byte
	b := make([]byte, 1)
	for {
		n, err := c.Read(b)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("Read returned %d bytes", n)
		}
		got = append(got, b[0])
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data differs")
	}
	if c.big != nil {
		t.Error("pooled read buffer kept after all data was read")
	}
}

// TestReadCoalesces checks that one Read returns several buffered messages
// when they fit, and stops before a message that does not.
func TestReadCoalesces(t *testing.T) {
	wire := encryptMessages(t, []byte("abc"), []byte("defg"), []byte("hijklmnop"))
	c := keyedConn(t, &bufConn{r: bytes.NewReader(wire)})
	buf := make([]byte, 8)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "abcdefg" {
		t.Fatalf("first Read = %q, %v", buf[:n], err)
	}
	n, err = c.Read(buf)
	if err != nil || string(buf[:n]) != "hijklmno" {
		t.Fatalf("second Read = %q, %v", buf[:n], err)
	}
	n, err = c.Read(buf)
	if err != nil || string(buf[:n]) != "p" {
		t.Fatalf("third Read = %q, %v", buf[:n], err)
	}
	if n, err = c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("last Read = %d, %v; want EOF", n, err)
	}
}

func TestEmptyMessagesSkipped(t *testing.T) {
	// Write never sends an empty message; build them by hand.
	var buf bytes.Buffer
	w := keyedConn(t, &bufConn{w: &buf})
	for _, m := range []string{"", "a", "", "", "b"} {
		binary.LittleEndian.PutUint64(w.wnonce[4:], w.wn)
		w.wn++
		ct := w.enc.Seal(nil, w.wnonce[:], []byte(m), nil)
		buf.Write([]byte{byte(len(ct) >> 8), byte(len(ct))})
		buf.Write(ct)
	}
	c := keyedConn(t, &bufConn{r: bytes.NewReader(buf.Bytes())})
	p := make([]byte, 1)
	for _, want := range []string{"a", "b"} {
		n, err := c.Read(p)
		if err != nil || n != 1 || string(p) != want {
			t.Fatalf("Read = %q (%d), %v; want %q", p[:n], n, err, want)
		}
	}
	if _, err := c.Read(p); err != io.EOF {
		t.Fatalf("Read error %v, want EOF", err)
	}
}

func TestTamperedMessage(t *testing.T) {
	data := patternedData(3000, 3)
	for _, pos := range []int{0, 1, 2, 100, 2 + 3000 + 15} { // length, body, tag
		t.Run("", func(t *testing.T) {
			wire := encryptMessages(t, []byte("fine"), data)
			wire[len(wire)-3016-2+pos] ^= 0x40
			c := keyedConn(t, &bufConn{r: bytes.NewReader(wire)})
			got, err := io.ReadAll(c)
			if string(got) != "fine" {
				t.Errorf("read %q before the error", got)
			}
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrShortFrame) {
				t.Fatalf("error %v, want an authentication failure", err)
			}
			if errors.Is(err, ErrDecrypt) {
				// Sticky.
				if _, err2 := c.Read(make([]byte, 10)); !errors.Is(err2, ErrDecrypt) {
					t.Fatalf("second Read error %v, want ErrDecrypt again", err2)
				}
			}
		})
	}
}

func TestTamperedMessageIntoLargeBuffer(t *testing.T) {
	wire := encryptMessages(t, []byte("hello"))
	wire[5] ^= 1
	c := keyedConn(t, &bufConn{r: bytes.NewReader(wire)})
	if _, err := c.Read(make([]byte, 1000)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("error %v, want ErrDecrypt", err)
	}
}

func TestReplayedMessage(t *testing.T) {
	wire := encryptMessages(t, []byte("once"))
	c := keyedConn(t, &bufConn{r: bytes.NewReader(append(bytes.Clone(wire), wire...))})
	got, err := io.ReadAll(c)
	if string(got) != "once" || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("read %q, %v; want once and ErrDecrypt", got, err)
	}
}

func TestShortFrame(t *testing.T) {
	wire := append(encryptMessages(t, []byte("ok")), 0, tagSize-1)
	wire = append(wire, make([]byte, tagSize-1)...)
	c := keyedConn(t, &bufConn{r: bytes.NewReader(wire)})
	got, err := io.ReadAll(c)
	if string(got) != "ok" || !errors.Is(err, ErrShortFrame) {
		t.Fatalf("read %q, %v; want ok and ErrShortFrame", got, err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, ErrShortFrame) {
		t.Fatalf("second Read error %v, want ErrShortFrame again", err)
	}
}

func TestTruncatedStream(t *testing.T) {
	wire := encryptMessages(t, []byte("complete"), []byte("cut short"))
	for cut := len(wire) - 1; cut > len(wire)-2-9-tagSize; cut-- {
		c := keyedConn(t, &bufConn{r: bytes.NewReader(wire[:cut])})
		got, err := io.ReadAll(c)
		if string(got) != "complete" || err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: read %q, %v; want complete and ErrUnexpectedEOF", cut, got, err)
		}
	}
}

func TestNonceExhausted(t *testing.T) {
	var buf bytes.Buffer
	w := keyedConn(t, &bufConn{w: &buf})
	w.wn = math.MaxUint64 - 1
	if _, err := w.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("one too many")); !errors.Is(err, ErrNonceExhausted) {
		t.Fatalf("Write error %v, want ErrNonceExhausted", err)
	}
	// Writing several messages must not wrap around either.
	w2 := keyedConn(t, &bufConn{})
	w2.wn = math.MaxUint64 - 1
	if _, err := w2.Write(make([]byte, maxPlaintextSize+1)); !errors.Is(err, ErrNonceExhausted) {
		t.Fatalf("Write error %v, want ErrNonceExhausted", err)
	}

	r := keyedConn(t, &bufConn{r: bytes.NewReader(append(bytes.Clone(buf.Bytes()), buf.Bytes()...))})
	r.rn = math.MaxUint64 - 1
	got := make([]byte, 100)
	n, err := r.Read(got)
	if err != nil || string(got[:n]) != "last" {
		t.Fatalf("Read = %q, %v", got[:n], err)
	}
	if _, err := r.Read(got); !errors.Is(err, ErrNonceExhausted) {
		t.Fatalf("Read error %v, want ErrNonceExhausted", err)
	}
}

func TestWriteErrorIsSticky(t *testing.T) {
	raw := &bufConn{}
	c := keyedConn(t, raw)
	raw.Close()
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write error %v, want net.ErrClosed", err)
	}
	raw.closed = false
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Write error %v, want the first error again", err)
	}
}

func TestEmptyWriteAndRead(t *testing.T) {
	var buf bytes.Buffer
	c := keyedConn(t, &bufConn{w: &buf, r: bytes.NewReader(nil)})
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
	if buf.Len() != 0 {
		t.Fatal("an empty write sent bytes")
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
}

// TestReadTimeoutKeepsPartialMessage checks that a read that times out in
// the middle of a message loses nothing.
func TestReadTimeoutKeepsPartialMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, remote := net.Pipe()
		defer local.Close()
		defer remote.Close()
		c := keyedConn(t, local)
		data := patternedData(5000, 9)
		wire := encryptMessages(t, data)

		go func() {
			remote.Write(wire[:3000])
			time.Sleep(10 * time.Second)
			remote.Write(wire[3000:])
		}()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, len(data))
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read error %v, want a timeout", err)
		}
		c.SetReadDeadline(time.Time{})
		n, err := io.ReadFull(c, buf)
		if err != nil || !bytes.Equal(buf[:n], data) {
			t.Fatalf("Read %d bytes, %v", n, err)
		}
	})
}

// TestConcurrentWrites checks that concurrent Writes do not interleave
// their messages.
func TestConcurrentWrites(t *testing.T) {
	out, in := securePair(t, connPairs[0], newTransport(t, ic.Ed25519), newTransport(t, ic.Ed25519))
	const writers, size = 4, 3*maxPlaintextSize + 7
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			b := bytes.Repeat([]byte{byte('a' + i)}, size)
			if _, err := out.Write(b); err != nil {
				t.Error(err)
			}
		})
	}
	buf := make([]byte, size)
	for range writers {
		if _, err := io.ReadFull(in, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, bytes.Repeat(buf[:1], size)) {
			t.Fatal("writes interleaved")
		}
	}
	wg.Wait()
}
