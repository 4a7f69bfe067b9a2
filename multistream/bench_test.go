package multistream

import (
	"bufio"
	"io"
	"net"
	"testing"
)

// BenchmarkSelectProtoOrFail negotiates over one net.Pipe again and again:
// once a protocol is agreed nothing else is sent, so the next header
// follows.
func BenchmarkSelectProtoOrFail(b *testing.B) {
	d, l := pipePair(b)
	r := testRouter()
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, _, err := r.Negotiate(l); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if err := SelectProtoOrFail("/ipfs/ping/1.0.0", d); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// nopCloser keeps LazyConn.Close from closing the shared pipe.
type nopCloser struct{ net.Conn }

func (nopCloser) Close() error { return nil }

// BenchmarkLazyRoundTrip sends a 4-byte request on a fresh LazyConn and
// reads the 4-byte answer: one round trip, handshake included. The
// listener reads through a bufio.Reader, as a multiplexed stream buffers
// what arrives: on a bare net.Pipe the dialer's write would wait for the
// handler to read the request, and the dialer would need a second
// goroutine to read the answer meanwhile.
func BenchmarkLazyRoundTrip(b *testing.B) {
	d, l := pipePair(b)
	r := testRouter()
	var lrw io.ReadWriter = struct {
		*bufio.Reader
		io.Writer
	}{bufio.NewReader(l), l}
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		req, pong := make([]byte, 4), []byte("pong")
		for range b.N {
			if _, _, err := r.Negotiate(lrw); err != nil {
				done <- err
				return
			}
			if _, err := io.ReadFull(lrw, req); err != nil {
				done <- err
				return
			}
			if _, err := lrw.Write(pong); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	req, resp := []byte("ping"), make([]byte, 4)
	var dc io.ReadWriteCloser = nopCloser{d}
	for range b.N {
		lc := NewLazyClient(dc, "/echo/1.0.0")
		if _, err := lc.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(lc, resp); err != nil {
			b.Fatal(err)
		}
		lc.Close()
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
