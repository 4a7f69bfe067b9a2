package netlab_test

import (
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netlab"
)

// TestAutoRelayCLI: A, behind a cone NAT, runs `p2pnet listen` with
// nothing but a bootstrap peer on the public segment that serves AutoNAT
// and relays. A learns it is Private, reserves on that relay by itself,
// prints its circuit address, and B on the public segment pings A
// through it.
func TestAutoRelayCLI(t *testing.T) {
	bin := build(t, "p2pnet", "github.com/p2pnet/p2pnet/cmd/p2pnet")
	lab := netlab.New(t)
	relay := lab.AddPublicHost("relay")
	b := lab.AddPublicHost("b")
	_, a := lab.AddNAT("a", netlab.Cone)
	public := "--public-cidr=" + netlab.PublicNet + ".0/24"
	rp := relay.Start(t, bin, "listen", "--relay-service", "--autonat-service", public,
		"--listen", "/ip4/"+relay.Addr+"/tcp/4001")
	relayAddr := nextContaining(t, rp, 10*time.Second, "/tcp/4001/p2p/")
	start := time.Now()
	ap := a.Start(t, bin, "listen", "--listen", listenAddr("tcp"), "--bootstrap", relayAddr, public)
	circuit := nextContaining(t, ap, 90*time.Second, "/p2p-circuit/p2p/")
	t.Logf("A reserved by itself within %v: %s", time.Since(start).Round(time.Millisecond), circuit)
	if !strings.HasPrefix(circuit, relayAddr+"/p2p-circuit/") {
		t.Errorf("A's circuit address %s is not through the bootstrap relay %s", circuit, relayAddr)
	}
	p := b.Start(t, bin, "ping", "--json", "-c", "2", "-i", "0.1", circuit)
	summary := next(t, p, 30*time.Second, "summary")
	if summary["received"] != float64(2) {
		t.Errorf("B's ping through A's circuit address: %v", summary)
	}
}
