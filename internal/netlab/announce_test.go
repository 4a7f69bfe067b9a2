package netlab_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
)

// TestAnnounceConfirmed: A sits behind a cone NAT whose router forwards
// A's port. Three peers in three /16 networks observe A at the router's
// address, which A thereby confirms; the first peer serves AutoNAT and
// finds that address reachable. A announces it (and, behind a router
// without the forward, an otherwise identical A never does), and B
// dials A there directly.
func TestAnnounceConfirmed(t *testing.T) {
	bin := build(t, "p2pnet", "github.com/p2pnet/p2pnet/cmd/p2pnet")
	for _, forward := range []bool{true, false} {
		name := map[bool]string{true: "forwarded", false: "closed"}[forward]
		t.Run(name, func(t *testing.T) {
			lab := netlab.New(t)
			peers := []*netlab.Node{lab.AddPublicHost("p0")}
			for i, n := range otherNets {
				peers = append(peers, lab.AddPublicHostIn("p"+string(rune('1'+i)), n))
			}
			router, a := lab.AddNAT("a", netlab.Cone)
			if forward {
				router.Forward("tcp", 4001, a)
			}
			var publics []string
			for _, n := range append([]string{netlab.PublicNet}, otherNets...) {
				publics = append(publics, "--public-cidr="+n+".0/24")
			}
			args := append([]string{"listen", "--listen", "/ip4/0.0.0.0/tcp/4001", "--log-format", "json"}, publics...)
			for i, p := range peers {
				pargs := append([]string{"listen", "--listen", "/ip4/" + p.Addr + "/tcp/4001"}, publics...)
				if i == 0 {
					pargs = append(pargs, "--autonat-service")
				}
				pp := p.Start(t, bin, pargs...)
				args = append(args, "--bootstrap", nextContaining(t, pp, 10*time.Second, "/tcp/4001/p2p/"))
			}
			start := time.Now()
			ap := a.Start(t, "/bin/sh", append([]string{"-c", `exec "$0" "$@" 2>&1`, bin}, args...)...)
			want := "/ip4/" + router.Addr + "/tcp/4001"
			var id, reach string
			announced := false
			deadline := time.NewTimer(60 * time.Second)
			defer deadline.Stop()
			for reach == "" || (forward && !announced) {
				var s string
				select {
				case l, ok := <-ap.Lines():
					if !ok {
						t.Fatal("p2pnet listen ended")
					}
					s = l
				case <-deadline.C:
					t.Fatalf("within 60 s: reachability %q, announced %s: %v", reach, want, announced)
				}
				if strings.HasPrefix(s, "/") && id == "" {
					id = s[strings.LastIndex(s, "/p2p/")+len("/p2p/"):]
					continue
				}
				var l map[string]any
				if json.Unmarshal([]byte(s), &l) != nil {
					continue
				}
				switch l["msg"] {
				case "reachability":
					reach, _ = l["reachability"].(string)
					t.Logf("A: reachability %s after %v", reach, time.Since(start).Round(time.Millisecond))
				case "announced addresses":
					as, _ := l["addrs"].([]any)
					if slices.Contains(as, any(want)) {
						announced = true
						t.Logf("A announces %s after %v", want, time.Since(start).Round(time.Millisecond))
					}
				}
			}
			if !forward {
				if reach != "Private" || announced {
					t.Fatalf("without the forward: reachability %s, announced %s: %v; want Private, not announced", reach, want, announced)
				}
				return
			}
			if reach != "Public" {
				t.Fatalf("with the forward: reachability %s, want Public", reach)
			}
			b := lab.AddPublicHost("b")
			p := b.Start(t, bin, "ping", "--json", "-c", "2", "-i", "0.1", want+"/p2p/"+id)
			summary := next(t, p, 20*time.Second, "summary")
			if summary["received"] != float64(2) {
				t.Errorf("B's ping of A at %s: %v", want, summary)
			}
		})
	}
}
