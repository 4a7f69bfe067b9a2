// Command compatbench measures, side by side in one run, gossipsub
// message latency and Kademlia DHT lookup times on a network of
// p2pnet-backed hosts (compat.Wrap), a network of plain go-libp2p v0.51.0
// hosts of the same size and shape, and a mixed one, all on loopback.
//
//	go run ./cmd/compatbench -gossip-hosts 16 -dht-hosts 20
//
// It prints one line per network and measure. It may import compat and
// its internal test networks.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/p2pnet/p2pnet/compat/internal/mixnet"
)

func main() {
	gossipHosts := flag.Int("gossip-hosts", 16, "hosts in each gossipsub network")
	messages := flag.Int("messages", 200, "gossipsub messages per network")
	interval := flag.Duration("interval", 10*time.Millisecond, "time between two publishes")
	dhtHosts := flag.Int("dht-hosts", 20, "hosts in each DHT network")
	lookups := flag.Int("lookups", 40, "DHT GetValue lookups per network")
	timeout := flag.Duration("timeout", 5*time.Minute, "bound on the whole run")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, *gossipHosts, *messages, *interval, *dhtHosts, *lookups); err != nil {
		fmt.Fprintln(os.Stderr, "compatbench:", err)
		os.Exit(1)
	}
}

// shapes are the networks compared: all p2pnet, all go-libp2p, half and half.
var shapes = []struct {
	name   string
	p2pnet func(n int) int
}{
	{"p2pnet", func(n int) int { return n }},
	{"go-libp2p", func(int) int { return 0 }},
	{"mixed", func(n int) int { return n / 2 }},
}

func run(ctx context.Context, w io.Writer, gossipHosts, messages int, interval time.Duration, dhtHosts, lookups int) error {
	edges := mixnet.SparseEdges(gossipHosts, 1, 7)
	fmt.Fprintf(w, "gossipsub: %d hosts, %d edges, %d messages one per %v, heartbeat 100ms, queues 256, peer scoring and validation on\n", gossipHosts, len(edges), messages, interval)
	for _, s := range shapes {
		np := s.p2pnet(gossipHosts)
		n, err := mixnet.New(np, gossipHosts-np)
		if err != nil {
			return err
		}
		res, err := mixnet.RunGossip(ctx, n, mixnet.GossipConfig{
			Topic: "bench", Edges: edges, Messages: messages, Heartbeat: 100 * time.Millisecond, PublishInterval: interval,
			QueueSize: 256,
		})
		n.Close()
		if err != nil {
			return fmt.Errorf("gossipsub on %s: %w", s.name, err)
		}
		fmt.Fprintf(w, "  %-10s latency p50 %8.2f ms  p99 %8.2f ms  (%d deliveries, %d RPCs dropped, shed %v)\n", s.name,
			ms(mixnet.Percentile(res.Latencies, 50)), ms(mixnet.Percentile(res.Latencies, 99)), len(res.Latencies), res.DroppedRPCs, res.Lost)
	}

	fmt.Fprintf(w, "kad-dht: %d server-mode hosts, bootstrapped through hosts 0 and %d; %d GetValue lookups of values put by other hosts\n", dhtHosts, dhtHosts/2, lookups)
	for _, s := range shapes {
		np := s.p2pnet(dhtHosts)
		n, err := mixnet.New(np, dhtHosts-np)
		if err != nil {
			return err
		}
		boot, put, get, err := dhtRun(ctx, n, lookups)
		n.Close()
		if err != nil {
			return fmt.Errorf("dht on %s: %w", s.name, err)
		}
		fmt.Fprintf(w, "  %-10s bootstrap %8.2f ms  PutValue p50 %8.2f ms  GetValue p50 %8.2f ms  p99 %8.2f ms\n", s.name,
			ms(boot), ms(mixnet.Percentile(put, 50)), ms(mixnet.Percentile(get, 50)), ms(mixnet.Percentile(get, 99)))
	}
	return nil
}

func dhtRun(ctx context.Context, n mixnet.Network, lookups int) (boot time.Duration, put, get []time.Duration, err error) {
	ds, err := mixnet.StartDHTs(n)
	if err != nil {
		return 0, nil, nil, err
	}
	defer ds.Close()
	start := time.Now()
	if _, err := ds.Bootstrap(ctx, n, []int{0, len(n) / 2}, 6); err != nil {
		return 0, nil, nil, err
	}
	boot = time.Since(start)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range lookups {
		from, to := r.IntN(len(n)), r.IntN(len(n)-1)
		if to >= from {
			to++
		}
		key := fmt.Sprintf("/v/bench-%d", i)
		t0 := time.Now()
		if err := ds[from].PutValue(ctx, key, []byte("ok:value")); err != nil {
			return 0, nil, nil, fmt.Errorf("PutValue: %w", err)
		}
		t1 := time.Now()
		if _, err := ds[to].GetValue(ctx, key); err != nil {
			return 0, nil, nil, fmt.Errorf("GetValue: %w", err)
		}
		put, get = append(put, t1.Sub(t0)), append(get, time.Since(t1))
	}
	return boot, put, get, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
