package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2pnet/p2pnet/interop/internal/stacks"

	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/crypto/chacha20poly1305"
)

// scenario builds the same setting with each stack and measures it in
// interleaved rounds, returning one row per measure.
type scenario struct {
	name string
	run  func(cfg *config) ([]*row, error)
}

var scenarios = []scenario{
	{"dial", dialScenario},
	{"dial-rtt", dialRTTScenario},
	{"stream", streamScenario},
	{"streams64", streams64Scenario},
	{"throughput", throughputScenario},
	{"hol", holScenario},
	{"streams1000", streams1000Scenario},
	{"idle", idleScenario},
}

// stackNames are the stacks' names in the table.
var stackNames = map[string]string{"noise": "TCP+Noise", "tls": "TCP+TLS", "quic": "QUIC"}

// opTimeout bounds any one operation of a scenario.
const opTimeout = 30 * time.Second

// interleave runs each of fs once per round, rotating which goes first,
// so that the machine's load falls on all alike.
func interleave(rounds int, fs ...func(round int) error) error {
	for r := range rounds {
		for i := range fs {
			if err := fs[(i+r)%len(fs)](r); err != nil {
				return err
			}
		}
	}
	return nil
}

// pairs builds the p2pnet and the go-libp2p pair of a stack.
func pairs(stack string, via func(ma.Multiaddr) (ma.Multiaddr, error)) (ours, theirs *stacks.Pair, err error) {
	ours, err = stacks.OurPair(stack, via)
	if err != nil {
		return nil, nil, fmt.Errorf("p2pnet %s: %w", stack, err)
	}
	theirs, err = stacks.GoPair(stack, via)
	if err != nil {
		ours.Close()
		return nil, nil, fmt.Errorf("go-libp2p %s: %w", stack, err)
	}
	return ours, theirs, nil
}

// median of v.
func median(v []float64) float64 { return stats(v).Median }

// both runs f for p2pnet (into ours) and go-libp2p (into theirs) in
// interleaved rounds.
func both(cfg *config, ours, theirs *stacks.Pair, f func(p *stacks.Pair) (float64, error)) (o, t []float64, err error) {
	o, t = make([]float64, cfg.rounds), make([]float64, cfg.rounds)
	err = interleave(cfg.rounds,
		func(r int) (err error) { o[r], err = f(ours); return wrap("p2pnet", err) },
		func(r int) (err error) { t[r], err = f(theirs); return wrap("go-libp2p", err) })
	return o, t, err
}

func wrap(who string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", who, err)
	}
	return nil
}

// fill adds the rounds to r.
func fill(r *row, ours, theirs []float64) *row {
	for i := range ours {
		r.add(ours[i], theirs[i])
	}
	return r
}

// dialOnce disconnects (not timed), then dials, opens a stream and
// completes a one-byte request; it returns how long the dial and the
// request took. A failed try is tried once more: go-libp2p's peerstore
// now and then forgets the address just given to Connect, as
// disconnection events are handled after ClosePeer returns.
func dialOnce(p *stacks.Pair) (d time.Duration, err error) {
	for range 2 {
		if d, err = dialTry(p); err == nil {
			return d, nil
		}
	}
	return 0, err
}

func dialTry(p *stacks.Pair) (time.Duration, error) {
	p.Disconnect()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	t0 := time.Now()
	s, err := p.Dial(ctx, stacks.EchoID)
	if err != nil {
		return 0, err
	}
	if err := stacks.RoundTrip(s); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func dialScenario(cfg *config) ([]*row, error) {
	ops := 20
	if cfg.quick {
		ops = 6
	}
	var rows []*row
	for _, stack := range stacks.Stacks {
		ours, theirs, err := pairs(stack, nil)
		if err != nil {
			return nil, err
		}
		o, t, err := both(cfg, ours, theirs, func(p *stacks.Pair) (float64, error) {
			var ds []float64
			for range ops {
				d, err := dialOnce(p)
				if err != nil {
					return 0, err
				}
				ds = append(ds, float64(d.Microseconds()))
			}
			return median(ds), nil
		})
		ours.Close()
		theirs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		target := 0.6
		if stack == "quic" {
			target = 0 // the target is for TCP
		}
		rows = append(rows, fill(newRow("dial+secure+first request, "+stackNames[stack], "µs", "go-libp2p", lower, target), o, t))
	}
	return rows, nil
}

// dialRTTScenario counts the round trips of a dial and first request
// over a link with a 20 ms round trip (TCP's own handshake excluded).
func dialRTTScenario(cfg *config) ([]*row, error) {
	const oneWay = 10 * time.Millisecond
	ops := 2
	if cfg.quick {
		ops = 1
	}
	var rows []*row
	for _, stack := range []string{"noise", "tls"} {
		var proxies []*stacks.DelayProxy
		via := func(a ma.Multiaddr) (ma.Multiaddr, error) {
			p, addr, err := stacks.NewDelayProxy(a, oneWay)
			if err != nil {
				return nil, err
			}
			proxies = append(proxies, p)
			return addr, nil
		}
		ours, theirs, err := pairs(stack, via)
		if err != nil {
			return nil, err
		}
		o, t, err := both(cfg, ours, theirs, func(p *stacks.Pair) (float64, error) {
			var ds []float64
			for range ops {
				d, err := dialOnce(p)
				if err != nil {
					return 0, err
				}
				ds = append(ds, float64(d)/float64(2*oneWay))
			}
			return median(ds), nil
		})
		ours.Close()
		theirs.Close()
		for _, p := range proxies {
			p.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		r := fill(newRow("dial+first request round trips, "+stackNames[stack], "RTT", "go-libp2p", lower, 3.5), o, t)
		r.Abs = true // 3 round trips (plus the timer's slack), not 5
		rows = append(rows, r)
	}
	return rows, nil
}

// mallocs is the number of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// memCounters are the process's allocation and page-fault counts so far.
type memCounters struct {
	mallocs, bytes, faults uint64
}

func readMem() memCounters {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return memCounters{ms.Mallocs, ms.TotalAlloc, uint64(ru.Minflt + ru.Majflt)}
}

// streamScenario: a one-byte request on a fresh stream of an open
// connection, and what opening a stream allocates (both ends).
func streamScenario(cfg *config) ([]*row, error) {
	ops := 2000
	if cfg.quick {
		ops = 300
	}
	var rows []*row
	for _, stack := range stacks.Stacks {
		ours, theirs, err := pairs(stack, nil)
		if err != nil {
			return nil, err
		}
		allocs := map[*stacks.Pair][]float64{}
		cpu := map[*stacks.Pair][]float64{}
		writes := map[*stacks.Pair][]float64{}
		reads := map[*stacks.Pair][]float64{}
		o, t, err := both(cfg, ours, theirs, func(p *stacks.Pair) (float64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			m0, io0, c0 := mallocs(), readSyscalls(), cpuTime()
			t0 := time.Now()
			for range ops {
				s, err := p.NewStream(ctx, stacks.EchoID)
				if err != nil {
					return 0, err
				}
				if err := stacks.RoundTrip(s); err != nil {
					return 0, err
				}
			}
			d := time.Since(t0)
			io1, c1 := readSyscalls(), cpuTime()
			allocs[p] = append(allocs[p], float64(mallocs()-m0)/float64(ops))
			cpu[p] = append(cpu[p], float64((c1-c0).Microseconds())/float64(ops))
			writes[p] = append(writes[p], float64(io1.writes-io0.writes)/float64(ops))
			reads[p] = append(reads[p], float64(io1.reads-io0.reads)/float64(ops))
			return float64(d.Microseconds()) / float64(ops), nil
		})
		ours.Close()
		theirs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		rows = append(rows, fill(newRow("fresh-stream request, "+stackNames[stack], "µs", "go-libp2p", lower, 0.5), o, t))
		rows = append(rows, fill(newRow("allocations per stream request, "+stackNames[stack], "allocs", "go-libp2p", lower, 0.5), allocs[ours], allocs[theirs]))
		// What bounds the request on loopback: CPU, most of it in system
		// calls (a socket write carries the receiving side's TCP work).
		rows = append(rows, fill(newRow("CPU per stream request, "+stackNames[stack], "µs", "go-libp2p", lower, 0), cpu[ours], cpu[theirs]))
		if stack != "quic" { // QUIC's sendmsg and recvmsg are not counted
			rows = append(rows, fill(newRow("write calls per stream request, "+stackNames[stack], "calls", "go-libp2p", lower, 0), writes[ours], writes[theirs]))
			rows = append(rows, fill(newRow("read calls per stream request, "+stackNames[stack], "calls", "go-libp2p", lower, 0), reads[ours], reads[theirs]))
		}
	}
	return rows, nil
}

// syscallCounts are the process's read and write system calls so far
// (/proc/self/io: syscr, syscw), both ends of a pair included. Zero where
// the kernel does not report them.
type syscallCounts struct {
	reads, writes uint64
}

func readSyscalls() syscallCounts {
	var c syscallCounts
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return c
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		switch name {
		case "syscr":
			c.reads = n
		case "syscw":
			c.writes = n
		}
	}
	return c
}

// concurrent runs total one-byte requests on fresh streams from n
// goroutines and returns the requests per second.
func concurrent(p *stacks.Pair, n, total int) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var left atomic.Int64
	left.Store(int64(total))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				s, err := p.NewStream(ctx, stacks.EchoID)
				if err == nil {
					err = stacks.RoundTrip(s)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(total) / time.Since(t0).Seconds(), firstErr
}

func streams64Scenario(cfg *config) ([]*row, error) {
	total := 5000
	if cfg.quick {
		total = 2000
	}
	var rows []*row
	for _, stack := range stacks.Stacks {
		ours, theirs, err := pairs(stack, nil)
		if err != nil {
			return nil, err
		}
		o, t, err := both(cfg, ours, theirs, func(p *stacks.Pair) (float64, error) { return concurrent(p, 64, total) })
		ours.Close()
		theirs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		rows = append(rows, fill(newRow("64 concurrent stream requests, "+stackNames[stack], "req/s", "go-libp2p", higher, 2), o, t))
	}
	return rows, nil
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// transfer is one measured one-stream transfer.
type transfer struct {
	rate   float64 // MiB/s
	cpu    float64 // CPU seconds per GiB, both ends
	allocs float64 // per MiB, both ends
	bytes  float64 // KiB allocated per MiB, both ends
	faults float64 // page faults per GiB
}

// send writes total bytes in 1 MiB writes on s, closes its write side
// and waits for the sink's one-byte answer.
func send(s stacks.Stream, total int) (transfer, error) {
	buf := make([]byte, 1<<20)
	m0, c0, t0 := readMem(), cpuTime(), time.Now()
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := s.Write(buf); err != nil {
			s.Close()
			return transfer{}, err
		}
	}
	if err := s.CloseWrite(); err != nil {
		s.Close()
		return transfer{}, err
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		s.Close()
		return transfer{}, err
	}
	d, cpu, m := time.Since(t0), cpuTime()-c0, readMem()
	s.Close()
	mib := float64(total) / (1 << 20)
	return transfer{
		rate:   mib / d.Seconds(),
		cpu:    cpu.Seconds() / (mib / 1024),
		allocs: float64(m.mallocs-m0.mallocs) / mib,
		bytes:  float64(m.bytes-m0.bytes) / 1024 / mib,
		faults: float64(m.faults-m0.faults) / (mib / 1024),
	}, nil
}

// warmUp sends 16 MiB on a new stream of p, unmeasured.
func warmUp(p *stacks.Pair) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s, err := p.NewStream(ctx, stacks.SinkID)
	if err != nil {
		return err
	}
	_, err = send(s, 16<<20)
	return err
}

// aeadFloor is the CPU seconds per GiB of sealing and opening with
// ChaCha20-Poly1305 in Noise's largest messages: the crypto part of the
// floor of any Noise stack.
func aeadFloor(total int) (float64, error) {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return 0, err
	}
	const msg = 65535 - 16
	plain := make([]byte, msg)
	sealed := make([]byte, 0, msg+16)
	out := make([]byte, 0, msg)
	nonce := make([]byte, chacha20poly1305.NonceSize)
	c0 := cpuTime()
	for done := 0; done < total; done += msg {
		sealed = aead.Seal(sealed[:0], nonce, plain, nil)
		if out, err = aead.Open(out[:0], nonce, sealed, nil); err != nil {
			return 0, err
		}
	}
	return (cpuTime() - c0).Seconds() / (float64(total) / (1 << 30)), nil
}

func throughputScenario(cfg *config) ([]*row, error) {
	total := 256 << 20
	if cfg.quick {
		total = 64 << 20
	}
	targets := map[string]float64{"noise": 1.4, "tls": 1.2, "quic": 1.0}
	bareOf := map[string]string{"noise": "tcp", "tls": "tls", "quic": "quic"}
	bareNames := map[string]string{"tcp": "raw TCP", "tls": "bare crypto/tls", "quic": "bare quic-go"}
	var rows []*row
	for _, stack := range stacks.Stacks {
		ours, theirs, err := pairs(stack, nil)
		if err != nil {
			return nil, err
		}
		bare, err := stacks.NewBare(bareOf[stack])
		if err != nil {
			ours.Close()
			theirs.Close()
			return nil, err
		}
		o, t, b := make([]transfer, cfg.rounds), make([]transfer, cfg.rounds), make([]transfer, cfg.rounds)
		floor := make([]float64, cfg.rounds)
		over := func(p *stacks.Pair, into []transfer) func(int) error {
			return func(r int) error {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				defer cancel()
				s, err := p.NewStream(ctx, stacks.SinkID)
				if err != nil {
					return err
				}
				into[r], err = send(s, total)
				return err
			}
		}
		fs := []func(int) error{
			func(r int) error { return wrap("p2pnet", over(ours, o)(r)) },
			func(r int) error { return wrap("go-libp2p", over(theirs, t)(r)) },
			func(r int) error {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				defer cancel()
				s, err := bare.Open(ctx)
				if err != nil {
					return wrap(bareNames[bareOf[stack]], err)
				}
				b[r], err = send(s, total)
				return wrap(bareNames[bareOf[stack]], err)
			},
		}
		if stack == "noise" {
			fs = append(fs, func(r int) (err error) { floor[r], err = aeadFloor(total); return err })
		}
		// A short unmeasured transfer each first: pools filled, pages
		// touched.
		for _, p := range []*stacks.Pair{ours, theirs} {
			if err == nil {
				err = warmUp(p)
			}
		}
		if err == nil {
			err = interleave(cfg.rounds, fs...)
		}
		ours.Close()
		theirs.Close()
		bare.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		name := stackNames[stack]
		rate, cpu, allocs := newRow("one stream, "+name, "MiB/s", "go-libp2p", higher, targets[stack]),
			newRow("CPU per GiB, "+name, "s/GiB", "go-libp2p", lower, 0),
			newRow("allocations per MiB, "+name, "allocs", "go-libp2p", lower, 0)
		vsBare := newRow("one stream, "+name, "MiB/s", bareNames[bareOf[stack]], higher, 0)
		allocated := newRow("allocated per MiB, "+name, "KiB", "go-libp2p", lower, 0)
		faults := newRow("page faults per GiB, "+name, "", "go-libp2p", lower, 0)
		for r := range cfg.rounds {
			rate.add(o[r].rate, t[r].rate)
			cpu.add(o[r].cpu, t[r].cpu)
			allocs.add(o[r].allocs, t[r].allocs)
			allocated.add(o[r].bytes, t[r].bytes)
			faults.add(o[r].faults, t[r].faults)
			vsBare.add(o[r].rate, b[r].rate)
		}
		switch stack {
		case "tls":
			vsBare.Target = 1.0
		case "quic":
			vsBare.Target = 0.95
		}
		rows = append(rows, rate, vsBare, cpu, allocs, allocated, faults)
		if stack == "noise" {
			vsFloor := newRow("CPU per GiB, "+name, "s/GiB", "floor", lower, 1.15)
			aead := newRow("floor: ChaCha20-Poly1305 seal+open, raw TCP kernel", "s/GiB", "raw TCP", lower, 0)
			for r := range cfg.rounds {
				vsFloor.add(o[r].cpu, floor[r]+b[r].cpu)
				aead.add(floor[r], b[r].cpu)
			}
			rows = append(rows, vsFloor, aead)
		}
	}
	return rows, nil
}

// p99 is the 99th percentile of v.
func p99(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// holScenario: the 99th percentile of one-byte requests on fresh streams
// while a bulk transfer runs on another stream of the same connection.
func holScenario(cfg *config) ([]*row, error) {
	// At most reqs requests or budget of time per run, whichever ends
	// first: on a loaded machine requests behind bulk data can take
	// milliseconds each.
	reqs, budget := 600, 3*time.Second
	if cfg.quick {
		reqs, budget = 200, time.Second
	}
	var rows []*row
	for _, stack := range stacks.Stacks {
		ours, theirs, err := pairs(stack, nil)
		if err != nil {
			return nil, err
		}
		o, t, err := both(cfg, ours, theirs, func(p *stacks.Pair) (float64, error) { return underBulk(p, reqs, budget) })
		ours.Close()
		theirs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		rows = append(rows, fill(newRow("p99 request behind bulk, "+stackNames[stack], "ms", "go-libp2p", lower, 0.5), o, t))
	}
	return rows, nil
}

// underBulk starts a bulk transfer, waits for 16 MiB of it to be written
// (so windows have grown), then times up to reqs sequential requests, for
// at most budget (and at least 50 requests); it returns their 99th
// percentile in milliseconds.
func underBulk(p *stacks.Pair, reqs int, budget time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	bulk, err := p.NewStream(ctx, stacks.SinkID)
	if err != nil {
		return 0, err
	}
	var stop atomic.Bool
	var written atomic.Int64
	warm := make(chan struct{})
	bulkErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		for !stop.Load() {
			if _, err := bulk.Write(buf); err != nil {
				close(warm)
				bulkErr <- err
				return
			}
			if written.Add(int64(len(buf))) == 16<<20 {
				close(warm)
			}
		}
		if written.Load() < 16<<20 {
			close(warm)
		}
		bulk.CloseWrite()
		_, err := io.ReadFull(bulk, make([]byte, 1))
		bulk.Close()
		bulkErr <- err
	}()
	<-warm
	var lat []float64
	var reqErr error
	deadline := time.Now().Add(budget)
	for i := range reqs {
		if i >= 50 && time.Now().After(deadline) {
			break
		}
		t0 := time.Now()
		s, err := p.NewStream(ctx, stacks.EchoID)
		if err == nil {
			err = stacks.RoundTrip(s)
		}
		if err != nil {
			reqErr = err
			break
		}
		lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
	}
	stop.Store(true)
	if err := <-bulkErr; err != nil {
		return 0, fmt.Errorf("bulk transfer: %w", err)
	}
	if reqErr != nil {
		return 0, reqErr
	}
	return p99(lat), nil
}

// streams1000Scenario: 1000 streams open at once on one connection, each
// with a one-byte request answered; the time until all are answered.
func streams1000Scenario(cfg *config) ([]*row, error) {
	const n = 1000
	var rows []*row
	for _, stack := range stacks.Stacks {
		ours, theirs, err := pairs(stack, nil)
		if err != nil {
			return nil, err
		}
		o, t, err := both(cfg, ours, theirs, func(p *stacks.Pair) (float64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			var wg, answered sync.WaitGroup
			release := make(chan struct{})
			errs := make(chan error, n)
			t0 := time.Now()
			for range n {
				wg.Add(1)
				answered.Add(1)
				go func() {
					defer wg.Done()
					s, err := p.NewStream(ctx, stacks.EchoID)
					if err == nil {
						if _, err = s.Write([]byte{7}); err == nil {
							_, err = io.ReadFull(s, make([]byte, 1))
						}
					}
					answered.Done()
					if err != nil {
						errs <- err
						return
					}
					<-release // every stream stays open until all are answered
					s.Close()
				}()
			}
			answered.Wait()
			d := time.Since(t0)
			close(release)
			wg.Wait()
			close(errs)
			if err := errors.Join(slices.Collect(chanSeq(errs))...); err != nil {
				return 0, err
			}
			return float64(d.Microseconds()) / 1000, nil
		})
		ours.Close()
		theirs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stack, err)
		}
		rows = append(rows, fill(newRow("1000 streams on one connection, "+stackNames[stack], "ms", "go-libp2p", lower, 0), o, t))
	}
	return rows, nil
}

// chanSeq yields what c holds until it is closed.
func chanSeq[T any](c <-chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for v := range c {
			if !yield(v) {
				return
			}
		}
	}
}

// settle collects garbage and lets a second go by, so that what ends
// after a connection's start (identify, dial workers, resource scopes a
// manager sweeps once unused) has ended on both stacks, then reports
// goroutines and heap in use: an idle connection's cost, not a fresh
// one's.
func settle() (goroutines int, heap uint64) {
	var ms runtime.MemStats
	for range 10 {
		runtime.GC()
		// A measurement, not synchronisation: goroutines that are
		// ending get a moment to exit before they are counted.
		time.Sleep(100 * time.Millisecond)
	}
	runtime.ReadMemStats(&ms)
	// Live bytes after a collection: HeapInuse would count whole spans,
	// so the other stack's free space too.
	return runtime.NumGoroutine(), ms.HeapAlloc
}

// idleCost builds n idle TCP+Noise connections of one stack and returns
// the goroutines and heap bytes each costs a side.
func idleCost(ours bool, n int) (goroutines, heap float64, err error) {
	idle, err := stacks.NewIdle(ours, "noise", n)
	if err != nil {
		return 0, 0, err
	}
	defer idle.Close()
	g0, h0 := settle()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := idle.Connect(ctx); err != nil {
		return 0, 0, err
	}
	g1, h1 := settle()
	return float64(g1-g0) / float64(n) / 2, float64(int64(h1)-int64(h0)) / float64(n) / 2, nil
}

func idleScenario(cfg *config) ([]*row, error) {
	sizes := []struct{ n, rounds int }{{50, cfg.rounds}, {1000, 1}}
	if cfg.quick {
		sizes = []struct{ n, rounds int }{{50, min(cfg.rounds, 3)}}
	}
	var rows []*row
	for _, size := range sizes {
		g := newRow(fmt.Sprintf("goroutines per idle connection and side, %d conns", size.n), "", "go-libp2p", lower, 2)
		g.Abs = true
		h := newRow(fmt.Sprintf("heap per idle connection and side, %d conns", size.n), "KiB", "go-libp2p", lower, 0.5)
		og, oh := make([]float64, size.rounds), make([]float64, size.rounds)
		tg, th := make([]float64, size.rounds), make([]float64, size.rounds)
		err := interleave(size.rounds,
			func(r int) (err error) {
				og[r], oh[r], err = idleCost(true, size.n)
				return wrap("p2pnet", err)
			},
			func(r int) (err error) {
				tg[r], th[r], err = idleCost(false, size.n)
				return wrap("go-libp2p", err)
			})
		if err != nil {
			return nil, fmt.Errorf("%d connections: %w", size.n, err)
		}
		for r := range size.rounds {
			g.add(og[r], tg[r])
			h.add(oh[r]/1024, th[r]/1024)
		}
		rows = append(rows, g, h)
	}
	return rows, nil
}
