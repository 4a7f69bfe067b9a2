package netlab_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
)

// otherNets are public ranges in /16s other than the lab's PublicNet:
// peers there count as other networks of the internet.
var otherNets = []string{"192.0.2", "203.0.113"}

// TestNATType: A behind a NAT connects to three peers in three
// different /16 networks; from what they observe of it, A infers the
// NAT's type per transport: Cone behind an endpoint-independent NAT,
// Symmetric behind one that maps each connection anew. `p2pnet listen`
// logs it.
func TestNATType(t *testing.T) {
	bin := build(t, "p2pnet", "github.com/p2pnet/p2pnet/cmd/p2pnet")
	cases := []struct {
		kind netlab.NATKind
		want string
	}{{netlab.Cone, "Cone"}, {netlab.Symmetric, "Symmetric"}}
	for _, c := range cases {
		for _, tr := range []string{"tcp", "quic"} {
			t.Run(c.want+"/"+tr, func(t *testing.T) {
				lab := netlab.New(t)
				peers := []*netlab.Node{lab.AddPublicHost("p0")}
				for i, n := range otherNets {
					peers = append(peers, lab.AddPublicHostIn("p"+string(rune('1'+i)), n))
				}
				_, a := lab.AddNAT("a", c.kind)
				args := []string{"listen", "--listen", listenAddr(tr), "--log-format", "json"}
				for _, n := range append([]string{netlab.PublicNet}, otherNets...) {
					args = append(args, "--public-cidr="+n+".0/24")
				}
				suffix := map[string]string{"tcp": "/tcp/4001/p2p/", "quic": "/udp/4001/quic-v1/p2p/"}[tr]
				for _, p := range peers {
					pp := p.Start(t, bin, "listen", "--listen", "/ip4/"+p.Addr+"/tcp/4001", "--listen", "/ip4/"+p.Addr+"/udp/4001/quic-v1")
					args = append(args, "--bootstrap", nextContaining(t, pp, 10*time.Second, suffix))
				}
				// Logs go to standard output, where the test reads them.
				ap := a.Start(t, "/bin/sh", append([]string{"-c", `exec "$0" "$@" 2>&1`, bin}, args...)...)
				wantTransport := map[string]string{"tcp": "TCP", "quic": "UDP"}[tr]
				deadline := time.NewTimer(30 * time.Second)
				defer deadline.Stop()
				for {
					select {
					case s, ok := <-ap.Lines():
						if !ok {
							t.Fatal("p2pnet listen ended")
						}
						if !strings.Contains(s, `"NAT type"`) {
							continue
						}
						var l map[string]any
						if err := json.Unmarshal([]byte(s), &l); err != nil {
							t.Fatalf("log line %q: %v", s, err)
						}
						if l["transport"] != wantTransport {
							continue
						}
						if l["type"] != c.want {
							t.Fatalf("behind a %s NAT over %s, A logged %s", c.want, tr, s)
						}
						t.Logf("A: %s", s)
						return
					case <-deadline.C:
						t.Fatalf("no NAT type for %s within 30 s", wantTransport)
					}
				}
			})
		}
	}
}
