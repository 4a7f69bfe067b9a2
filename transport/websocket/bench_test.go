package websocket_test

import (
	"context"
	"io"
	"testing"

	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/tcp"

	ma "github.com/multiformats/go-multiaddr"
)

// BenchmarkStream sends 1 MiB writes on one stream over /ws, /tls/ws and,
// for comparison, plain TCP, each with Noise and yamux, from the dialer
// (whose WebSocket frames are masked) to the listener.
func BenchmarkStream(b *testing.B) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0/ws", "/ip4/127.0.0.1/tcp/0/tls/ws", "/ip4/127.0.0.1/tcp/0"} {
		b.Run(listen, func(b *testing.B) {
			d, l := tlsNodes(b, "noise")
			var ln transport.Listener
			var err error
			if ma.StringCast(listen)[len(ma.StringCast(listen))-1].Code() == ma.P_TCP {
				ln, err = tcp.New(l.u, nil).Listen(ma.StringCast(listen))
			} else {
				ln, err = l.tr.Listen(ma.StringCast(listen))
			}
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			var c transport.CapableConn
			if ln.Multiaddr()[len(ln.Multiaddr())-1].Code() == ma.P_TCP {
				accepted := make(chan transport.CapableConn, 1)
				go func() {
					sc, _ := ln.Accept()
					accepted <- sc
				}()
				c, err = tcp.New(d.u, nil).Dial(context.Background(), ln.Multiaddr(), l.id)
				if err != nil {
					b.Fatal(err)
				}
				sc := <-accepted
				defer sc.Close()
				benchStream(b, c, sc)
			} else {
				var sc transport.CapableConn
				c, sc = connect(b, d, ln.Multiaddr(), ln, l.id)
				defer sc.Close()
				benchStream(b, c, sc)
			}
			c.Close()
		})
	}
}

func benchStream(b *testing.B, c, sc transport.CapableConn) {
	s, err := c.OpenStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if _, err := s.Write(buf[:1]); err != nil {
		b.Fatal(err)
	}
	ss, err := sc.AcceptStream()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, ss)
		done <- n
	}()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	<-done
	b.StopTimer()
	s.Close()
	ss.Close()
}
