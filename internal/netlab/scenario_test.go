package netlab_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildMu  sync.Mutex // guards the following
	buildDir string
	built    = map[string]error{}
)

// labnode builds the lab's node program once per test binary.
func labnode(t *testing.T) string { return build(t, "labnode", "./cmd/labnode") }

// build builds the program of package pkg as name once per test binary
// and returns its path.
func build(t *testing.T, name, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		d, err := os.MkdirTemp("", "labnode")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	err, ok := built[name]
	if !ok {
		out, cerr := exec.Command("go", "build", "-o", filepath.Join(buildDir, name), pkg).CombinedOutput()
		if cerr != nil {
			err = &buildError{cerr, string(out)}
		}
		built[name] = err
	}
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return filepath.Join(buildDir, name)
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// line is a JSON line of labnode.
type line map[string]any

func (l line) str(k string) string { s, _ := l[k].(string); return s }

// next returns the next line of p of one of types, failing the test
// after timeout or when the output ends.
func next(t *testing.T, p *netlab.Proc, timeout time.Duration, types ...string) line {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case s, ok := <-p.Lines():
			if !ok {
				t.Fatalf("labnode output ended before a %v line", types)
			}
			var l line
			if json.Unmarshal([]byte(s), &l) != nil {
				continue
			}
			if slices.Contains(types, l.str("type")) {
				return l
			}
			if l.str("type") == "holepunch" && l.str("error") != "" {
				t.Logf("A's hole punch: %s", s)
			}
		case <-tm.C:
			t.Fatalf("no %v line from labnode within %v", types, timeout)
		}
	}
}

// tries is how many hole punches each transport gets: 20, or
// P2PNET_LAB_TRIES.
func tries() int {
	if n, err := strconv.Atoi(os.Getenv("P2PNET_LAB_TRIES")); err == nil && n > 0 {
		return n
	}
	return 20
}

// setup builds a lab with a relay on the public segment and A and B
// behind NATs of the given kinds, starts the relay and B (reserved on
// the relay over transport), and returns the lab's A and B's circuit
// address.
func setup(t *testing.T, transport string, kindA, kindB netlab.NATKind) (*netlab.Node, string) {
	bin := labnode(t)
	lab := netlab.New(t)
	relay := lab.AddPublicHost("relay")
	_, a := lab.AddNAT("a", kindA)
	_, b := lab.AddNAT("b", kindB)
	rp := relay.Start(t, bin, "relay", "--listen", "/ip4/"+relay.Addr+"/tcp/4001", "--listen", "/ip4/"+relay.Addr+"/udp/4001/quic-v1")
	l := next(t, rp, 10*time.Second, "listen")
	var relayAddr string
	for _, a := range l["addrs"].([]any) {
		s := a.(string)
		if (transport == "tcp") == !contains(s, "/quic-v1") {
			relayAddr = s
		}
	}
	bp := b.Start(t, bin, "listen", "--listen", listenAddr(transport), "--relay", relayAddr, "--public-cidr", netlab.PublicNet+".0/24")
	c := next(t, bp, 20*time.Second, "circuit")
	t.Logf("B reserved: %s (observed %v)", c.str("addr"), c["observed"])
	// A reaches the relay over the transport under test, so that the
	// relay observes A's address of that transport.
	circuit := c.str("addr")
	return a, relayAddr + circuit[indexOf(circuit, "/p2p-circuit"):]
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func listenAddr(transport string) string {
	if transport == "quic" {
		return "/ip4/0.0.0.0/udp/0/quic-v1"
	}
	return "/ip4/0.0.0.0/tcp/0"
}

// punch runs A's ping to circuit once and returns its final line.
func punch(t *testing.T, a *netlab.Node, transport, circuit string, wait time.Duration) line {
	p := a.Start(t, labnode(t), "ping", "--listen", listenAddr(transport), "--public-cidr", netlab.PublicNet+".0/24",
		"--wait", wait.String(), circuit)
	defer p.Stop()
	next(t, p, 20*time.Second, "relayed")
	l := next(t, p, wait+15*time.Second, "direct", "nodirect")
	// Let A exit by itself: a killed A would leave its QUIC connection
	// to the relay open there until the idle timeout (no kernel RST as
	// for TCP), and after 8 tries the relay's per-IP limit (8 inbound
	// connections per IPv4 address; every A is behind one NAT address)
	// would refuse the next A with CONNECTION_REFUSED.
	if !p.Wait(10 * time.Second) {
		t.Errorf("labnode ping did not exit after its report")
	}
	return l
}

// TestHolePunchCone is scenario (b): A and B behind cone NATs, B reserved
// on a public relay; A pings B through the relay, and hole punching
// gives them a direct connection, over TCP and over QUIC.
func TestHolePunchCone(t *testing.T) {
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			a, circuit := setup(t, tr, netlab.Cone, netlab.Cone)
			n := tries()
			var ok int
			var times []time.Duration
			for i := 0; i < n; i++ {
				l := punch(t, a, tr, circuit, 20*time.Second)
				if l.str("type") != "direct" {
					t.Logf("try %d: no direct connection", i+1)
					continue
				}
				if got := l.str("transport"); got != map[string]string{"tcp": "tcp", "quic": "quic-v1"}[tr] {
					t.Errorf("try %d: direct connection over %q (%s), want %s", i+1, got, l.str("addr"), tr)
					continue
				}
				ok++
				times = append(times, time.Duration(l["elapsed_ms"].(float64))*time.Millisecond)
			}
			slices.Sort(times)
			var med time.Duration
			if len(times) > 0 {
				med = times[len(times)/2]
			}
			t.Logf("%s: %d/%d hole punches succeeded (%.0f%%); time from relayed connection to direct: median %v, all %v",
				tr, ok, n, 100*float64(ok)/float64(n), med, times)
			if ok*100 < n*95 {
				t.Errorf("%s: success rate %d/%d below 95%%", tr, ok, n)
			}
		})
	}
}

// TestHolePunchSymmetric is scenario (c): B behind a symmetric NAT; the
// punch fails within its retries and the relayed connection keeps
// working.
func TestHolePunchSymmetric(t *testing.T) {
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			a, circuit := setup(t, tr, netlab.Cone, netlab.Symmetric)
			start := time.Now()
			l := punch(t, a, tr, circuit, 25*time.Second)
			if l.str("type") != "nodirect" {
				t.Fatalf("got a direct connection through a symmetric NAT: %v", l)
			}
			t.Logf("%s: no direct connection, as expected; relayed ping still works (rtt %v ms) after %v", tr, l["rtt_ms"], time.Since(start).Round(time.Millisecond))
		})
	}
}

// nextContaining returns the next line of p that contains sub, failing
// the test after timeout or when the output ends.
func nextContaining(t *testing.T, p *netlab.Proc, timeout time.Duration, sub string) string {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case s, ok := <-p.Lines():
			if !ok {
				t.Fatalf("output ended before a line with %q", sub)
			}
			if strings.Contains(s, sub) {
				return s
			}
		case <-tm.C:
			t.Fatalf("no line with %q within %v", sub, timeout)
		}
	}
}

// TestHolePunchCLI is scenario (b) with the p2pnet command: `p2pnet
// listen --relay-service` on the public segment, `p2pnet listen --relay`
// behind one cone NAT, and `p2pnet ping --listen` of its circuit address
// behind another, which ends on a direct connection.
func TestHolePunchCLI(t *testing.T) {
	bin := build(t, "p2pnet", "github.com/p2pnet/p2pnet/cmd/p2pnet")
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			lab := netlab.New(t)
			relay := lab.AddPublicHost("relay")
			_, a := lab.AddNAT("a", netlab.Cone)
			_, b := lab.AddNAT("b", netlab.Cone)
			port := map[string]string{"tcp": "/tcp/4001/p2p/", "quic": "/udp/4001/quic-v1/p2p/"}[tr]
			rp := relay.Start(t, bin, "listen", "--relay-service",
				"--listen", "/ip4/"+relay.Addr+"/tcp/4001", "--listen", "/ip4/"+relay.Addr+"/udp/4001/quic-v1")
			relayAddr := nextContaining(t, rp, 10*time.Second, port)
			public := "--public-cidr=" + netlab.PublicNet + ".0/24"
			bp := b.Start(t, bin, "listen", "--listen", listenAddr(tr), "--relay", relayAddr, public)
			circuit := nextContaining(t, bp, 20*time.Second, "/p2p-circuit/p2p/")
			// B prints a circuit address per address of the relay; A
			// reaches the relay over the transport under test, so that
			// the relay observes A's address of that transport.
			circuit = relayAddr + circuit[strings.Index(circuit, "/p2p-circuit"):]
			n := max(1, tries()/4)
			var ok int
			for i := 0; i < n; i++ {
				p := a.Start(t, bin, "ping", "--json", "-c", "2", "-i", "0.1", "--listen", listenAddr(tr), public, circuit)
				var conn, summary line
				for conn == nil || summary == nil {
					l, got := nextOrEnd(p, 30*time.Second, "connection", "summary")
					if !got {
						break
					}
					if l.str("type") == "connection" {
						conn = l
					} else {
						summary = l
					}
				}
				if conn == nil || summary == nil {
					// Seen once in many CI runs: the ping's output ended
					// without them (not yet understood); counted as a
					// failed try, and the rate is asserted below.
					t.Logf("try %d: ping output ended early (connection %v, summary %v)", i+1, conn, summary)
					p.Stop()
					continue
				}
				if !p.Wait(10 * time.Second) {
					t.Errorf("p2pnet ping did not exit")
				}
				p.Stop()
				want := map[string]string{"tcp": "tcp", "quic": "quic-v1"}[tr]
				if conn["direct"] != true || conn.str("transport") != want || summary["received"] != float64(2) {
					t.Logf("try %d: %v, %v; want a direct %s connection and 2 replies", i+1, conn, summary, want)
					continue
				}
				ok++
				t.Logf("try %d: direct connection %s after %v ms, rtt avg %v ms", i+1, conn.str("addr"), conn["after_ms"], summary["avg_ms"])
			}
			t.Logf("%s: %d/%d pings through the relay ended on a direct connection", tr, ok, n)
			if ok < n-1 || ok == 0 {
				t.Errorf("%s: %d/%d pings ended on a direct connection; want all but at most one", tr, ok, n)
			}
		})
	}
}

// nextOrEnd is next without failing the test: it reports false when the
// output ends or nothing of types comes within timeout.
func nextOrEnd(p *netlab.Proc, timeout time.Duration, types ...string) (line, bool) {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case s, ok := <-p.Lines():
			if !ok {
				return nil, false
			}
			var l line
			if json.Unmarshal([]byte(s), &l) != nil {
				continue
			}
			if slices.Contains(types, l.str("type")) {
				return l, true
			}
		case <-tm.C:
			return nil, false
		}
	}
}
