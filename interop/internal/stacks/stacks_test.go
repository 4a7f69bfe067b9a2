package stacks

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	manet "github.com/multiformats/go-multiaddr/net"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBare: each bare transport's sink reads what is sent and answers one
// byte, and closes cleanly.
func TestBare(t *testing.T) {
	for _, kind := range Bares {
		t.Run(kind, func(t *testing.T) {
			b, err := NewBare(kind)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := b.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			s.Close()
		})
	}
}

// TestDelayProxy: a byte through the proxy and back takes at least two
// one-way delays.
func TestDelayProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	target, _ := manet.FromNetAddr(l.Addr())
	const oneWay = 20 * time.Millisecond
	p, via, err := NewDelayProxy(target, oneWay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, hostport, _ := manet.DialArgs(via)
	c, err := net.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte{1})
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*oneWay {
		t.Fatalf("round trip through the proxy took %v, less than %v", d, 2*oneWay)
	}
}
