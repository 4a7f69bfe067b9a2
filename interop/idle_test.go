package interop

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/peer"

	lppeer "github.com/libp2p/go-libp2p/core/peer"
)

// idleConns is how many idle connections BenchmarkIdleConn opens.
const idleConns = 50

// settle lets background goroutines finish and collects garbage, then
// reports goroutines and heap in use.
func settle() (goroutines int, heap uint64) {
	var ms runtime.MemStats
	for i := 0; i < 3; i++ {
		runtime.GC()
		// Give goroutines that are ending (identify, dial workers) a
		// moment to exit before counting: this is a measurement, not
		// synchronisation.
		time.Sleep(50 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

// BenchmarkIdleConn reports what an idle connection costs each side:
// goroutines and heap, for p2pnet and go-libp2p, with TCP + Noise +
// yamux and identify done. Run with -benchtime 1x.
func BenchmarkIdleConn(b *testing.B) {
	ctx := context.Background()
	b.Run("p2pnet", func(b *testing.B) {
		server := ourHost(b, "noise")
		clients := make([]interface {
			Connect(context.Context, peer.AddrInfo) error
		}, idleConns)
		for i := range clients {
			clients[i] = ourHost(b, "noise")
		}
		g0, h0 := settle()
		for _, c := range clients {
			if err := c.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
		g1, h1 := settle()
		b.ReportMetric(float64(g1-g0)/idleConns/2, "goroutines/conn/side")
		b.ReportMetric(float64(int64(h1)-int64(h0))/idleConns/2, "heapB/conn/side")
	})
	b.Run("golibp2p", func(b *testing.B) {
		server := goHost(b, "noise")
		clients := make([]interface {
			Connect(context.Context, lppeer.AddrInfo) error
		}, idleConns)
		for i := range clients {
			clients[i] = goHost(b, "noise")
		}
		g0, h0 := settle()
		for _, c := range clients {
			if err := c.Connect(ctx, lppeer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
				b.Fatal(err)
			}
		}
		g1, h1 := settle()
		b.ReportMetric(float64(g1-g0)/idleConns/2, "goroutines/conn/side")
		b.ReportMetric(float64(int64(h1)-int64(h0))/idleConns/2, "heapB/conn/side")
	})
}
