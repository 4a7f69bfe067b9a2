package yamux

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// benchConnTypes runs f over net.Pipe and over loopback TCP.
func benchConnTypes(b *testing.B, f func(b *testing.B, dial dialer)) {
	b.Run("pipe", func(b *testing.B) { f(b, pipeDialer) })
	b.Run("tcp", func(b *testing.B) { f(b, tcpDialer) })
}

func BenchmarkStreamThroughput(b *testing.B) {
	benchConnTypes(b, func(b *testing.B, dial dialer) {
		client, server := newPair(b, dial, nil, nil, nil)
		done := make(chan error, 1)
		go func() {
			s, err := server.Accept()
			if err != nil {
				done <- err
				return
			}
			defer s.Close()
			_, err = io.CopyBuffer(io.Discard, s, make([]byte, 1<<20))
			done <- err
		}()
		s, err := client.Open(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		s.CloseWrite()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
	})
}

// requestResponse opens a stream, sends req, half-closes, reads the whole
// response into resp and closes.
func requestResponse(c *Conn, req, resp []byte) error {
	s, err := c.Open(context.Background())
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Write(req); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	if _, err := io.ReadFull(s, resp); err != nil {
		return err
	}
	return nil
}

// respond answers every stream of c with a response of the request's size.
func respond(c *Conn, size int) {
	for {
		s, err := c.Accept()
		if err != nil {
			return
		}
		go func() {
			defer s.Close()
			buf := make([]byte, size)
			if _, err := io.ReadFull(s, buf); err != nil {
				s.Reset()
				return
			}
			s.Write(buf)
		}()
	}
}

func BenchmarkStreams64(b *testing.B) {
	benchConnTypes(b, func(b *testing.B, dial dialer) {
		const workers, size = 64, 1 << 10
		client, server := newPair(b, dial, nil, nil, nil)
		go respond(server, size)
		b.SetBytes(2 * size)
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			n := b.N / workers
			if w < b.N%workers {
				n++
			}
			wg.Go(func() {
				req, resp := make([]byte, size), make([]byte, size)
				for range n {
					if err := requestResponse(client, req, resp); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	})
}

func BenchmarkOpenStream(b *testing.B) {
	benchConnTypes(b, func(b *testing.B, dial dialer) {
		client, server := newPair(b, dial, nil, nil, nil)
		go respond(server, 1)
		req, resp := []byte{1}, []byte{0}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := requestResponse(client, req, resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLongFatLink: one stream over an in-memory link with a 50 ms
// round trip and no bandwidth limit, in real time; each op is a 128 MiB
// transfer. window-MiB is the receiving stream's window at the end: the
// auto-tuning must reach the 16 MiB maximum there.
//
//	go test -run '^$' -bench LongFatLink -benchtime 2x ./mux/yamux/
func BenchmarkLongFatLink(b *testing.B) {
	const size = 128 << 20
	b.SetBytes(size)
	var w uint32
	for range b.N {
		w, _ = transferOverLatency(b, DefaultTransport, nil, 25*time.Millisecond, size, 1<<20, 0)
	}
	b.ReportMetric(float64(w)/(1<<20), "window-MiB")
}
