package netlab_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
)

// TestConnectionReversal is scenario (d): A on the public segment, B
// behind a cone NAT and reserved on the relay. A dials B's circuit
// address; B, seeing a relayed connection from a peer with a public
// address, dials A directly (the spec's connection reversal) instead of
// hole punching.
func TestConnectionReversal(t *testing.T) {
	bin := labnode(t)
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			lab := netlab.New(t)
			relay := lab.AddPublicHost("relay")
			a := lab.AddPublicHost("a")
			_, b := lab.AddNAT("b", netlab.Cone)
			rp := relay.Start(t, bin, "relay", "--listen", "/ip4/"+relay.Addr+"/tcp/4001", "--listen", "/ip4/"+relay.Addr+"/udp/4001/quic-v1")
			var relayAddr string
			for _, s := range next(t, rp, 10*time.Second, "listen")["addrs"].([]any) {
				if s := s.(string); strings.Contains(s, "/quic-v1") == (tr == "quic") {
					relayAddr = s
				}
			}
			public := "--public-cidr=" + netlab.PublicNet + ".0/24"
			bp := b.Start(t, bin, "listen", "--listen", listenAddr(tr), "--relay", relayAddr, public)
			circuit := next(t, bp, 20*time.Second, "circuit").str("addr")
			circuit = relayAddr + circuit[strings.Index(circuit, "/p2p-circuit"):]
			n := max(5, tries()/4)
			want := map[string]string{"tcp": "tcp", "quic": "quic-v1"}[tr]
			var ok int
			var times []time.Duration
			for i := 0; i < n; i++ {
				p := a.Start(t, bin, "ping", "--listen", listenAddr(tr), public, "--wait", "15s", circuit)
				next(t, p, 20*time.Second, "relayed")
				l := next(t, p, 30*time.Second, "direct", "nodirect")
				if !p.Wait(10 * time.Second) {
					t.Errorf("labnode ping did not exit after its report")
				}
				p.Stop()
				hp := next(t, bp, 10*time.Second, "holepunch")
				if l.str("type") != "direct" || l.str("transport") != want {
					t.Logf("try %d: A: %v; B: %v", i+1, l, hp)
					continue
				}
				if hp["reversed"] != true || hp["attempts"] != float64(0) || !strings.HasPrefix(hp.str("addr"), "/ip4/"+a.Addr+"/") {
					t.Logf("try %d: direct, but not by reversal: B reported %v", i+1, hp)
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
			t.Logf("%s: %d/%d connection reversals (%.0f%%); time from relayed connection to direct: median %v, all %v",
				tr, ok, n, 100*float64(ok)/float64(n), med, times)
			if ok*100 < n*95 {
				t.Errorf("%s: reversal rate %d/%d below 95%%", tr, ok, n)
			}
		})
	}
}
