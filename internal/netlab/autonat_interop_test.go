package netlab_test

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
)

// routableNet is a range go-libp2p counts as public: its AutoNAT v1
// server (which has no setting for other ranges) refuses to dial the
// documentation ranges of the lab's public segment. The lab's
// namespaces are isolated: nothing sent to it leaves them.
const routableNet = "100.128.0"

// TestAutoNATv1Interop: p2pnet's AutoNAT client asks go-libp2p v0.51.0's
// v1 server (the only server it is connected to, so it falls back to
// v1), both on hosts of a range go-libp2p counts as public. A's listen
// address is reported reachable by go-libp2p's dials and A learns
// Public; with a firewall in A's namespace that drops new inbound
// connections to its listen port, go-libp2p's dial back times out and
// the check of that address reports it unreachable.
func TestAutoNATv1Interop(t *testing.T) {
	bin, gol := build(t, "autonatnode", "./cmd/autonatnode"), golabnode(t)
	for _, firewall := range []bool{false, true} {
		t.Run(map[bool]string{false: "reachable", true: "firewalled"}[firewall], func(t *testing.T) {
			lab := netlab.New(t)
			g := lab.AddPublicHostIn("g", routableNet)
			a := lab.AddPublicHostIn("a", routableNet)
			gp := g.Start(t, gol, "autonat-v1", "--listen", "/ip4/"+g.Addr+"/tcp/4001")
			gAddr := next(t, gp, 10*time.Second, "listen")["addrs"].([]any)[0].(string)
			listen := "/ip4/" + a.Addr + "/tcp/4001"
			if firewall {
				a.Run("nft", "add", "table", "inet", "autonat")
				a.Run("nft", "add", "chain", "inet", "autonat", "in", "{ type filter hook input priority 0 ; policy accept ; }")
				a.Run("nft", "add", "rule", "inet", "autonat", "in", "tcp", "dport", "4001", "ct", "state", "new", "drop")
			}
			start := time.Now()
			ap := a.Start(t, bin, "--listen", listen, "--connect", gAddr)
			next(t, ap, 10*time.Second, "connected")
			// go-libp2p's v1 server dials for up to 15 s, and waits that
			// long after a failure too.
			for {
				l := next(t, ap, 40*time.Second, "check", "reachability")
				t.Logf("A: %v", l)
				if !firewall && l.str("type") == "reachability" {
					if l.str("reachability") != "Public" {
						t.Fatalf("A on a public host learned %v from go-libp2p, want Public", l)
					}
					break
				}
				if l.str("type") != "check" || l.str("addr") != listen {
					continue
				}
				if e := l.str("error"); e != "<nil>" {
					if strings.Contains(e, "no connected peer") {
						continue // identify has not told A yet that go-libp2p serves v1
					}
					t.Fatalf("A's check of %s: %s", listen, e)
				}
				if l["reachable"] != !firewall {
					t.Fatalf("A's check of %s: reachable %v, want %v", listen, l["reachable"], !firewall)
				}
				if firewall {
					break
				}
			}
			t.Logf("firewall %v: decided within %v", firewall, time.Since(start).Round(time.Millisecond))
		})
	}
}
