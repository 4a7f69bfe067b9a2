package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/rcmgr"

	"github.com/libp2p/go-libp2p"
	lpconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	lprcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	lprelay "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// The load: loadHosts p2pnet hosts reserve on the relay; the first
// loadCircuits of them each open a circuit to one of the others, and
// echo data through it until the relay's data limit ends it.
const (
	loadHosts    = 200
	loadCircuits = 100
)

// relayLoadTimeout bounds the load on one relay.
const relayLoadTimeout = 45 * time.Second

// relayHelperEnv names the relay a helper process runs: "p2pnet" or
// "go-libp2p". The relay runs in a process of its own so that its heap
// is measured apart from the 200 hosts that use it.
const relayHelperEnv = "P2PNET_INTEROP_RELAY_HELPER"

// relayMem is what a helper process reports of itself: its live heap
// after a collection, its goroutine stacks, its goroutines, and the
// relay's circuits and reservations (-1 when the relay does not say).
type relayMem struct {
	heap, stack            uint64
	goroutines             int
	circuits, reservations int
}

// relayProcess is a relay running in a helper process: this test binary
// run again with relayHelperEnv set. It answers "mem" on stdin with a
// "mem" line (see relayMem), and closes its relay and exits when stdin
// closes.
type relayProcess struct {
	addr  ma.Multiaddr
	stdin io.WriteCloser
	lines *lineWriter
}

// startRelayProcess starts a helper process running the named relay and
// returns once it listens. The process is stopped by the returned func,
// and in any case when the test ends; if the helper failed (a leak, a
// race, a panic), report says so.
func startRelayProcess(t *testing.T, kind string, report func(format string, args ...any)) (*relayProcess, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRelayLoadHelperProcess$")
	cmd.Env = append(os.Environ(), relayHelperEnv+"="+kind)
	cmd.WaitDelay = 5 * time.Second
	lines := &lineWriter{lines: make(chan string, 16)}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = lines, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting the %s relay process: %v", kind, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stdin.Close()
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				cancel() // kills the process
				<-exited
				report("the %s relay process did not exit when told to", kind)
			}
			cancel()
			if waitErr != nil {
				report("the %s relay process failed: %v\n%s", kind, waitErr, stderr.String())
			}
		})
	}
	t.Cleanup(stop)

	p := &relayProcess{stdin: stdin, lines: lines}
	select {
	case line := <-lines.lines:
		s, ok := strings.CutPrefix(line, "addr ")
		if !ok {
			t.Fatalf("the %s relay process said %q, want its address", kind, line)
		}
		if p.addr, err = ma.NewMultiaddr(s); err != nil {
			t.Fatalf("the %s relay process said %q: %v", kind, line, err)
		}
	case <-exited:
		t.Fatalf("the %s relay process exited before listening: %v\n%s", kind, waitErr, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the %s relay process did not listen in time\n%s", kind, stderr.String())
	}
	return p, stop
}

// mem asks the helper process for its memory.
func (p *relayProcess) mem(t *testing.T) relayMem {
	t.Helper()
	if _, err := io.WriteString(p.stdin, "mem\n"); err != nil {
		t.Fatalf("asking the relay process: %v", err)
	}
	select {
	case line := <-p.lines.lines:
		var m relayMem
		if _, err := fmt.Sscanf(line, "mem %d %d %d %d %d", &m.heap, &m.stack, &m.goroutines, &m.circuits, &m.reservations); err != nil {
			t.Fatalf("the relay process answered %q: %v", line, err)
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("the relay process did not answer")
		return relayMem{}
	}
}

// lineWriter sends each line written to it on lines; lines other than
// the helper's ("addr …", "mem …") are dropped, and so are lines that
// find lines full.
type lineWriter struct {
	mu    sync.Mutex // guards buf
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.HasPrefix(line, "addr ") || strings.HasPrefix(line, "mem ") {
			select {
			case w.lines <- line:
			default: // unasked for: the helper answers only what it is asked
			}
		}
	}
}

// TestRelayLoadHelperProcess is the relay of a helper process started by
// startRelayProcess; it does nothing in a normal run.
func TestRelayLoadHelperProcess(t *testing.T) {
	kind := os.Getenv(relayHelperEnv)
	if kind == "" {
		return // not a helper process: nothing to do (the os/exec tests' pattern)
	}
	var addr ma.Multiaddr
	var counts func() (circuits, reservations int)
	switch kind {
	case "p2pnet":
		// No limits but the relay's own, raised for the load; the
		// resource manager still accounts for everything.
		rm, err := rcmgr.New(rcmgr.UnlimitedLimits())
		if err != nil {
			t.Fatal(err)
		}
		defer rm.Close()
		h, err := p2pnet.New(
			p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			p2pnet.ResourceManager(rm),
			// Every host dials from 127.0.0.1: by default 8 handshakes
			// at once from one address, the others closed before
			// theirs, to be retried after backoff (go-libp2p has no
			// such cap).
			p2pnet.InboundHandshakes(0, 2*loadHosts),
			p2pnet.InboundHandshakesPerAddress(2*loadHosts),
			p2pnet.EnableRelayService(relay.WithResources(relay.Resources{
				MaxReservations:      2 * loadHosts,
				MaxReservationsPerIP: 2 * loadHosts,
			})),
		)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		addr = h.P2PAddrs()[0]
		counts = func() (int, int) {
			return h.RelayService().NumCircuits(), h.RelayService().NumReservations()
		}
	case "go-libp2p":
		// Likewise: go-libp2p's resource manager without limits, and no
		// connection manager (its default trims above 192 connections).
		rm, err := lprcmgr.NewResourceManager(lprcmgr.NewFixedLimiter(lprcmgr.InfiniteLimits))
		if err != nil {
			t.Fatal(err)
		}
		res := lprelay.DefaultResources()
		res.MaxReservations = 2 * loadHosts
		res.MaxReservationsPerIP = 2 * loadHosts
		res.MaxReservationsPerASN = 2 * loadHosts
		h := goRelayWith(t, []libp2p.Option{
			libp2p.ResourceManager(rm),
			libp2p.ConnectionManager(&lpconnmgr.NullConnMgr{}),
		}, lprelay.WithResources(res))
		addr = goP2PAddr(t, h)
		counts = func() (int, int) { return -1, -1 }
	default:
		t.Fatalf("unknown relay %q", kind)
	}
	fmt.Printf("addr %s\n", addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "mem" {
			continue
		}
		// Twice: sync.Pool keeps what the first collection frees.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		c, r := counts()
		fmt.Printf("mem %d %d %d %d %d\n", ms.HeapAlloc, ms.StackInuse, runtime.NumGoroutine(), c, r)
	}
}

// relayLoadResult is what one relay did under the load.
type relayLoadResult struct {
	relay        string
	reserveTime  time.Duration   // all reservations, made at once
	setup        []time.Duration // each circuit, made one after the other
	served       int             // circuits that carried data until the limit ended them
	echoed       []int64         // bytes echoed through each circuit
	problems     []string        // what went wrong with circuits
	perRsvHeap   float64         // relay heap per reservation (its connection included)
	perCircHeap  float64         // relay heap per open circuit
	perCircStack float64         // relay goroutine stacks per open circuit
	perCircGo    float64         // relay goroutines per open circuit
	after        relayMem
}

// TestRelayLoad: a p2pnet relay and a go-libp2p relay, one after the
// other, each with 200 reservations and 100 concurrent circuits that
// echo data until the relay's data limit (128 KiB each way) closes
// them. It reports the relay's memory per circuit and the setup time
// per circuit, side by side, and asserts only that p2pnet's relay
// served every circuit.
func TestRelayLoad(t *testing.T) {
	ours, err := relayLoad(t, "p2pnet")
	if err != nil {
		t.Fatalf("p2pnet relay: %v", err)
	}
	for _, p := range ours.problems {
		t.Errorf("p2pnet relay: %s", p)
	}
	theirs, err := relayLoad(t, "go-libp2p")
	if err != nil {
		t.Logf("go-libp2p relay: %v", err)
	}
	for _, p := range theirs.problems {
		t.Logf("go-libp2p relay: %s", p)
	}
	for _, r := range []relayLoadResult{ours, theirs} {
		if len(r.echoed) == 0 {
			continue
		}
		t.Logf("%-9s relay: %d reservations in %v; %d/%d circuits served, echoed %d to %d bytes each; afterwards the relay counts %d circuits, %d reservations (-1: not told)",
			r.relay, loadHosts, r.reserveTime.Round(time.Millisecond), r.served, loadCircuits,
			slices.Min(r.echoed), slices.Max(r.echoed), r.after.circuits, r.after.reservations)
	}
	t.Logf("%-28s %12s %12s", "relay under load", "p2pnet", "go-libp2p")
	row := func(name string, a, b float64, unit string) {
		t.Logf("%-28s %12.0f %12.0f %s", name, a, b, unit)
	}
	row("heap per reservation", ours.perRsvHeap, theirs.perRsvHeap, "B")
	row("heap per circuit", ours.perCircHeap, theirs.perCircHeap, "B")
	row("stack per circuit", ours.perCircStack, theirs.perCircStack, "B")
	row("heap+stack per circuit", ours.perCircHeap+ours.perCircStack, theirs.perCircHeap+theirs.perCircStack, "B")
	t.Logf("%-28s %12.1f %12.1f", "goroutines per circuit", ours.perCircGo, theirs.perCircGo)
	t.Logf("%-28s %12v %12v", "setup per circuit, median", median(ours.setup).Round(time.Microsecond), median(theirs.setup).Round(time.Microsecond))
	t.Logf("%-28s %12v %12v", "setup per circuit, mean", mean(ours.setup).Round(time.Microsecond), mean(theirs.setup).Round(time.Microsecond))
	if ours.served != loadCircuits {
		t.Errorf("the p2pnet relay served %d of %d circuits", ours.served, loadCircuits)
	}
}

// median returns the median of d, zero for none.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// mean returns the mean of d, zero for none.
func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// relayLoad runs the load against the named relay. It returns an error
// if the load could not be set up, and lists in problems the circuits
// the relay did not serve.
func relayLoad(t *testing.T, kind string) (res relayLoadResult, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), relayLoadTimeout)
	defer cancel()
	res.relay = kind

	report := t.Errorf
	if kind != "p2pnet" {
		report = t.Logf
	}
	rp, stopRelay := startRelayProcess(t, kind, report)
	defer stopRelay()
	base := rp.mem(t)

	// The hosts: each reserves on the relay; none has an address of its own.
	hosts := make([]*p2pnet.Host, loadHosts)
	defer func() {
		var wg sync.WaitGroup
		for _, h := range hosts {
			if h != nil {
				wg.Go(func() { h.Close() })
			}
		}
		wg.Wait()
	}()
	start := time.Now()
	for i := range hosts {
		if hosts[i], err = p2pnet.New(p2pnet.ListenAddrs(), p2pnet.StaticRelays(rp.addr)); err != nil {
			return res, err
		}
	}
	circs := make([]ma.Multiaddr, loadHosts)
	for i, h := range hosts {
		a := reservedAddrs(ctx, h)
		if a == nil {
			return res, fmt.Errorf("host %d got no reservation in time", i)
		}
		circs[i] = a[0]
	}
	res.reserveTime = time.Since(start)
	reserved := rp.mem(t)
	res.perRsvHeap = (float64(reserved.heap) - float64(base.heap)) / loadHosts

	for i := range loadCircuits {
		hosts[loadCircuits+i].SetStreamHandler(interopEchoID, func(s network.Stream) {
			s.SetDeadline(time.Now().Add(relayLoadTimeout))
			if _, err := io.Copy(s, s); err != nil {
				s.Reset()
				return
			}
			s.Close()
		})
	}

	// The circuits, one after the other: host i reaches host 100+i.
	for i := range loadCircuits {
		target := hosts[loadCircuits+i]
		ai, full := circuitTo(t, circs[loadCircuits+i], target.ID())
		start := time.Now()
		if err := hosts[i].Connect(ctx, ai); err != nil {
			return res, fmt.Errorf("circuit %d to %s: %w", i, full, err)
		}
		res.setup = append(res.setup, time.Since(start))
	}
	open := rp.mem(t)
	res.perCircHeap = (float64(open.heap) - float64(reserved.heap)) / loadCircuits
	res.perCircStack = (float64(open.stack) - float64(reserved.stack)) / loadCircuits
	res.perCircGo = float64(open.goroutines-reserved.goroutines) / loadCircuits
	if kind == "p2pnet" && open.circuits != loadCircuits {
		res.problems = append(res.problems, fmt.Sprintf("the relay counts %d circuits open, want %d", open.circuits, loadCircuits))
	}

	// Every circuit at once: an echo, a chunk at a time, until the
	// relay's limit ends the circuit, which both ends then see closed.
	gone := make([]<-chan struct{}, 0, 2*loadCircuits)
	for i := range loadCircuits {
		a, b := hosts[i], hosts[loadCircuits+i]
		gone = append(gone, goneWaiter(t, a.Network(), b.ID()), goneWaiter(t, b.Network(), a.ID()))
	}
	res.echoed = make([]int64, loadCircuits)
	echoErrs := make([]error, loadCircuits)
	var wg sync.WaitGroup
	for i := range loadCircuits {
		wg.Go(func() {
			res.echoed[i], echoErrs[i] = echoUntilEnd(ctx, hosts[i], hosts[loadCircuits+i].ID())
		})
	}
	wg.Wait()
	for i := range loadCircuits {
		problem := func(format string, args ...any) {
			res.problems = append(res.problems, fmt.Sprintf("circuit %d: "+format, append([]any{i}, args...)...))
		}
		n, err := res.echoed[i], echoErrs[i]
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
			problem("the echo did not end in time, after %d bytes: %v", n, err)
			continue
		case n <= relay.DefaultLimitData/2 || n > relay.DefaultLimitData:
			problem("%d bytes echoed through a circuit limited to %d each way: %v", n, relay.DefaultLimitData, err)
			continue
		}
		ok := true
		for _, ch := range gone[2*i : 2*i+2] {
			select {
			case <-ch:
			case <-ctx.Done():
				ok = false
			}
		}
		if !ok {
			problem("an end kept its connection after the limit")
			continue
		}
		res.served++
	}
	res.after = rp.mem(t)
	return res, nil
}

// echoUntilEnd echoes chunks through p's echo service, one at a time,
// until the stream fails, and returns the bytes echoed. One chunk at a
// time, so that what was echoed is known to within a chunk: the limit
// cuts the circuit inside a secure-channel frame, both ends' sessions
// then fail and reset their streams, and a one-way flow would lose
// whatever the target had received but not yet read (or not yet handed
// to a handler).
func echoUntilEnd(ctx context.Context, h *p2pnet.Host, p peer.ID) (int64, error) {
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "load"), p, interopEchoID)
	if err != nil {
		return 0, fmt.Errorf("opening the stream: %w", err)
	}
	defer s.Reset()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	out := make([]byte, 8<<10)
	in := make([]byte, len(out))
	var echoed int64
	for {
		if _, err := s.Write(out); err != nil {
			return echoed, err
		}
		n, err := io.ReadFull(s, in)
		echoed += int64(n)
		if err != nil {
			return echoed, err
		}
	}
}

// goneWaiter returns a channel closed once n has no connection to p.
func goneWaiter(t testing.TB, n network.Network, p peer.ID) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	nb := &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		if c.RemotePeer() == p && n.Connectedness(p) == network.NotConnected {
			once.Do(func() { close(ch) })
		}
	}}
	n.Notify(nb)
	t.Cleanup(func() { n.StopNotify(nb) })
	if n.Connectedness(p) == network.NotConnected {
		once.Do(func() { close(ch) })
	}
	return ch
}
