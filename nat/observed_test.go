package nat

import (
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var local = ma.StringCast("/ip4/10.0.1.2/tcp/4001")

func report(o *ObservedAddrs, reporter, from, observed string, outbound bool) bool {
	return o.Record(Observation{Local: local, Observed: ma.StringCast(observed), Reporter: peer.ID(reporter),
		ReporterAddr: ma.StringCast(from), Outbound: outbound})
}

func TestConfirmationNeedsDistinctNetworks(t *testing.T) {
	o := NewObservedAddrs()
	ext := "/ip4/203.0.113.5/tcp/4001"
	// Three peers in one /16 count once.
	report(o, "p1", "/ip4/198.51.1.1/tcp/1", ext, true)
	report(o, "p2", "/ip4/198.51.2.2/tcp/1", ext, true)
	report(o, "p3", "/ip4/198.51.3.3/tcp/1", ext, true)
	if got := o.Confirmed(); len(got) != 0 {
		t.Fatalf("confirmed by one /16: %v", got)
	}
	report(o, "p4", "/ip4/192.0.2.1/tcp/1", ext, true)
	report(o, "p5", "/ip6/2001:db8:1::1/tcp/1", ext, true)
	if got := o.Confirmed(); len(got) != 1 || got[0].String() != ext {
		t.Fatalf("Confirmed() = %v, want [%s]", got, ext)
	}
	o.Forget("p5")
	if got := o.Confirmed(); len(got) != 0 {
		t.Fatalf("after forgetting a reporter: %v", got)
	}
	if got := o.All(); len(got) != 1 {
		t.Fatalf("All() = %v", got)
	}
	// Another transport's observation of a TCP connection is ignored.
	if report(o, "p6", "/ip4/1.2.3.4/tcp/1", "/ip4/203.0.113.5/udp/4001/quic-v1", true) {
		t.Fatal("a QUIC observation of a TCP connection was kept")
	}
}

func TestNATType(t *testing.T) {
	cone := NewObservedAddrs()
	sym := NewObservedAddrs()
	for i, from := range []string{"/ip4/1.1.1.1/tcp/1", "/ip4/2.2.2.2/tcp/1", "/ip4/3.3.3.3/tcp/1", "/ip4/4.4.4.4/tcp/1"} {
		id := string(rune('a' + i))
		report(cone, id, from, "/ip4/203.0.113.5/tcp/4001", true)
		report(sym, id, from, "/ip4/203.0.113.5/tcp/"+string(rune('5'+i))+"000", true)
	}
	// One liar does not make a cone NAT symmetric.
	report(cone, "liar", "/ip4/5.5.5.5/tcp/1", "/ip4/203.0.113.9/tcp/9", true)
	if got := cone.NATType(network.NATTransportTCP); got != network.NATDeviceTypeCone {
		t.Errorf("cone: %v", got)
	}
	if got := sym.NATType(network.NATTransportTCP); got != network.NATDeviceTypeSymmetric {
		t.Errorf("symmetric: %v", got)
	}
	if got := cone.NATType(network.NATTransportUDP); got != network.NATDeviceTypeUnknown {
		t.Errorf("UDP with no reports: %v", got)
	}
	// Inbound reports do not count.
	in := NewObservedAddrs()
	for i, from := range []string{"/ip4/1.1.1.1/tcp/1", "/ip4/2.2.2.2/tcp/1", "/ip4/3.3.3.3/tcp/1"} {
		report(in, string(rune('a'+i)), from, "/ip4/203.0.113.5/tcp/4001", false)
	}
	if got := in.NATType(network.NATTransportTCP); got != network.NATDeviceTypeUnknown {
		t.Errorf("inbound only: %v", got)
	}
}

func TestObservationReplacedAndBounded(t *testing.T) {
	o := NewObservedAddrs(Confirmations(1))
	o.max = 2
	report(o, "p1", "/ip4/198.51.1.1/tcp/1", "/ip4/203.0.113.5/tcp/4001", true)
	// A new report from the same peer for the same local address
	// replaces the old one.
	if !report(o, "p1", "/ip4/198.51.1.1/tcp/1", "/ip4/203.0.113.6/tcp/4001", true) {
		t.Fatal("the replacing report was refused")
	}
	if got := o.All(); len(got) != 1 || got[0].String() != "/ip4/203.0.113.6/tcp/4001" {
		t.Fatalf("All() = %v, want only the newer report", got)
	}
	// The same peer over another local address is another observation.
	o.Record(Observation{Local: ma.StringCast("/ip4/10.0.1.2/tcp/4002"), Observed: ma.StringCast("/ip4/203.0.113.7/tcp/4002"),
		Reporter: "p1", ReporterAddr: ma.StringCast("/ip4/198.51.1.1/tcp/1")})
	if got := o.All(); len(got) != 2 {
		t.Fatalf("All() = %v, want two observations", got)
	}
	// Full: a new reporter is refused, a known one still replaces.
	if report(o, "p2", "/ip4/192.0.2.1/tcp/1", "/ip4/203.0.113.5/tcp/4001", true) {
		t.Fatal("a report beyond the bound was kept")
	}
	if !report(o, "p1", "/ip4/198.51.1.1/tcp/1", "/ip4/203.0.113.8/tcp/4001", true) {
		t.Fatal("a replacing report was refused when full")
	}
	o.Forget("p1")
	if got := o.All(); len(got) != 0 {
		t.Fatalf("All() after Forget = %v", got)
	}
	if !report(o, "p2", "/ip4/192.0.2.1/tcp/1", "/ip4/203.0.113.5/tcp/4001", true) {
		t.Fatal("a report after Forget made room was refused")
	}
}
