package netlab_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
)

// golabnode builds the interop module's go-libp2p node program
// (interop/cmd/golabnode) once per test binary, next to labnode, and
// returns its path.
func golabnode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(labnode(t)), "golabnode")
	buildMu.Lock()
	defer buildMu.Unlock()
	err, ok := built["golabnode"]
	if !ok {
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/golabnode")
		cmd.Dir = "../../interop" // the interop module, with go-libp2p
		if out, cerr := cmd.CombinedOutput(); cerr != nil {
			err = &buildError{cerr, string(out)}
		}
		built["golabnode"] = err
	}
	if err != nil {
		t.Fatalf("building golabnode: %v", err)
	}
	return bin
}

// TestHolePunchInterop is DCUtR between p2pnet and go-libp2p v0.51.0
// across two cone NATs, in both roles: a p2pnet relay on the public
// segment; B behind one NAT reserves on it, A behind the other pings B
// through it, and hole punching gives them a direct connection. In
// "go-libp2p-dials" A is go-libp2p and B (the DCUtR initiator) p2pnet;
// in "p2pnet-dials" the other way round. "go-libp2p-both" is the
// reference: go-libp2p on both ends (only logged, not asserted: its
// times are what DESIGN.md's target compares against).
func TestHolePunchInterop(t *testing.T) {
	p2p, gol := labnode(t), golabnode(t)
	for _, tr := range []string{"tcp", "quic"} {
		for _, roles := range []struct {
			name   string
			a, b   string
			aN, bN string
		}{
			{"go-libp2p-dials", gol, p2p, "go-libp2p", "p2pnet"},
			{"p2pnet-dials", p2p, gol, "p2pnet", "go-libp2p"},
			{"go-libp2p-both", gol, gol, "go-libp2p", "go-libp2p"},
		} {
			t.Run(tr+"/"+roles.name, func(t *testing.T) {
				lab := netlab.New(t)
				relay := lab.AddPublicHost("relay")
				_, a := lab.AddNAT("a", netlab.Cone)
				_, b := lab.AddNAT("b", netlab.Cone)
				rp := relay.Start(t, p2p, "relay", "--listen", "/ip4/"+relay.Addr+"/tcp/4001", "--listen", "/ip4/"+relay.Addr+"/udp/4001/quic-v1")
				var relayAddr string
				for _, s := range next(t, rp, 10*time.Second, "listen")["addrs"].([]any) {
					if s := s.(string); strings.Contains(s, "/quic-v1") == (tr == "quic") {
						relayAddr = s
					}
				}
				public := "--public-cidr=" + netlab.PublicNet + ".0/24"
				bp := b.Start(t, roles.b, "listen", "--listen", listenAddr(tr), "--relay", relayAddr, public)
				c := next(t, bp, 20*time.Second, "circuit")
				t.Logf("B (%s) reserved: %s (observed %v)", roles.bN, c.str("addr"), c["observed"])
				circuit := c.str("addr")
				circuit = relayAddr + circuit[strings.Index(circuit, "/p2p-circuit"):]
				// B's hole-punch reports, logged when they tell of a
				// failure; read all the while so that B never blocks on
				// its output.
				go func() {
					for s := range bp.Lines() {
						if strings.Contains(s, `"error"`) {
							t.Logf("B (%s): %s", roles.bN, s)
						}
					}
				}()
				n := max(5, tries()/2)
				want := map[string]string{"tcp": "tcp", "quic": "quic-v1"}[tr]
				var ok int
				var times []time.Duration
				for i := 0; i < n; i++ {
					p := a.Start(t, roles.a, "ping", "--listen", listenAddr(tr), public, "--wait", "20s", circuit)
					next(t, p, 20*time.Second, "relayed")
					l := next(t, p, 35*time.Second, "direct", "nodirect")
					// A exits by itself, so that the relay learns at once
					// that its connections are gone (see punch).
					if !p.Wait(10 * time.Second) {
						t.Errorf("A (%s) did not exit after its report", roles.aN)
					}
					p.Stop()
					if l.str("type") != "direct" || l.str("transport") != want {
						t.Logf("try %d: no direct %s connection: %v", i+1, want, l)
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
				t.Logf("%s, A %s, B %s: %d/%d hole punches succeeded (%.0f%%); time from relayed connection to direct: median %v, all %v",
					tr, roles.aN, roles.bN, ok, n, 100*float64(ok)/float64(n), med, times)
				if ok*100 < n*95 && roles.name != "go-libp2p-both" {
					t.Errorf("%s: success rate %d/%d below 95%%", tr, ok, n)
				}
			})
		}
	}
}
