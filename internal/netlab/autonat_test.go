package netlab_test

import (
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
	"github.com/p2pnet/p2pnet/proto/autonat"
)

// TestAutoNATCone is scenario (a): B on the public segment and A behind
// a cone NAT each serve AutoNAT v2 and ask the other; A learns Private
// (B's dial back from a fresh port meets the NAT's filter), B learns
// Public. The public segment's documentation range is counted public.
func TestAutoNATCone(t *testing.T) {
	bin := build(t, "autonatnode", "./cmd/autonatnode")
	for _, tr := range []string{"tcp", "quic"} {
		t.Run(tr, func(t *testing.T) {
			lab := netlab.New(t)
			b := lab.AddPublicHost("b")
			_, a := lab.AddNAT("a", netlab.Cone)
			public := "--public-cidr=" + netlab.PublicNet + ".0/24"
			bListen := map[string]string{"tcp": "/ip4/" + b.Addr + "/tcp/4001", "quic": "/ip4/" + b.Addr + "/udp/4001/quic-v1"}[tr]
			bp := b.Start(t, bin, "--listen", bListen, public)
			l := next(t, bp, 10*time.Second, "listen")
			bAddr := l["addrs"].([]any)[0].(string)
			start := time.Now()
			ap := a.Start(t, bin, "--listen", listenAddr(tr), "--connect", bAddr, public)
			next(t, ap, 10*time.Second, "connected")
			// B's checks succeed at once; A's take three dial backs that
			// each time out at the server (autonat.DefaultDialBackTimeout).
			rb := next(t, bp, 30*time.Second, "reachability")
			var ra line
			for ra == nil {
				l := next(t, ap, 4*autonat.DefaultDialBackTimeout+15*time.Second, "reachability", "check")
				if l.str("type") == "check" {
					t.Logf("A's check: %v", l)
					continue
				}
				ra = l
			}
			if ra.str("reachability") != "Private" {
				t.Errorf("A behind a cone NAT learned %v, want Private", ra)
			}
			if rb.str("reachability") != "Public" {
				t.Errorf("B on the public segment learned %v, want Public", rb)
			}
			t.Logf("%s: A %s (observed %s), B %s, within %v", tr, ra.str("reachability"), ra.str("observed"), rb.str("reachability"), time.Since(start).Round(time.Millisecond))
		})
	}
}
