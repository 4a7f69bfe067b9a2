package interop

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// delayProxy forwards TCP connections to target, delaying every byte by
// oneWay in each direction, so a round trip costs 2×oneWay: a link with
// a real round-trip time, on loopback. (The TCP handshake itself is not
// delayed: the proxy accepts at once.)
type delayProxy struct {
	l      net.Listener
	target string
	oneWay time.Duration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newDelayProxy(tb testing.TB, target ma.Multiaddr, oneWay time.Duration) (*delayProxy, ma.Multiaddr) {
	tb.Helper()
	_, hostport, err := manet.DialArgs(target)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &delayProxy{l: l, target: hostport, oneWay: oneWay}
	p.wg.Add(1)
	go p.serve()
	tb.Cleanup(p.close)
	addr, _ := manet.FromNetAddr(l.Addr())
	return p, addr
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		t, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, t)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(c, t)
		go p.pump(t, c)
	}
}

// pump copies src to dst, each chunk oneWay after it was read.
func (p *delayProxy) pump(src, dst net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			// Simulated link latency: this sleep is the thing measured,
			// not a stand-in for synchronisation.
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{buf[:n], time.Now().Add(p.oneWay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

func (p *delayProxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// BenchmarkDialRequestRTT: connect, open a stream, and complete a 1-byte
// request/response over a link with a 20 ms round trip. ns/op divided by
// 20 ms is the number of round trips (the TCP handshake excluded).
func BenchmarkDialRequestRTT(b *testing.B) {
	const oneWay = 10 * time.Millisecond
	for _, security := range securities {
		b.Run("p2pnet/"+security, func(b *testing.B) {
			server, client := ourHost(b, security), ourHost(b, security)
			server.SetStreamHandler(echoID, func(s network.Stream) { echoOne(s) })
			_, via := newDelayProxy(b, server.Addrs()[0], oneWay)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{via}}); err != nil {
					b.Fatal(err)
				}
				s, err := client.NewStream(ctx, server.ID(), echoID)
				if err != nil {
					b.Fatal(err)
				}
				if err := roundTrip(s); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				// Forget the direct addresses identify learnt, so the next
				// dial goes through the proxy again.
				<-client.Identify().IdentifyWait(s.Conn())
				client.Network().ClosePeer(server.ID())
				client.Peerstore().ClearAddrs(server.ID())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(2*oneWay), "RTTs/op")
		})
		b.Run("golibp2p/"+security, func(b *testing.B) {
			server, client := goHost(b, security), goHost(b, security)
			server.SetStreamHandler(echoID, func(s lpnetwork.Stream) { echoOne(s) })
			_, via := newDelayProxy(b, server.Addrs()[0], oneWay)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := client.Connect(ctx, lppeer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{via}}); err != nil {
					b.Fatal(err)
				}
				s, err := client.NewStream(ctx, server.ID(), echoID)
				if err != nil {
					b.Fatal(err)
				}
				if err := roundTrip(s); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				client.Network().ClosePeer(server.ID())
				client.Peerstore().ClearAddrs(server.ID())
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(2*oneWay), "RTTs/op")
		})
	}
}
