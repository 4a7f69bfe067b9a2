package p2pnet

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// portGate refuses inbound connections to one local TCP port: a
// firewall in front of it.
type portGate struct{ port atomic.Value } // string

func (*portGate) InterceptPeerDial(peer.ID) bool               { return true }
func (*portGate) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g *portGate) InterceptAccept(a network.ConnMultiaddrs) bool {
	p, _ := a.LocalMultiaddr().ValueForProtocol(ma.P_TCP)
	return p != g.port.Load()
}
func (*portGate) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (*portGate) InterceptUpgraded(network.Conn) (bool, connmgr.DisconnectReason) {
	return true, 0
}

// TestAddrsDropUnreachable: A listens on two TCP ports on loopback
// (counted public), but refuses inbound connections to the second like
// a firewall. B serves AutoNAT. A's first address is confirmed reachable
// and stays in Addrs; the second is found unreachable and leaves Addrs,
// and the bus tells of it.
func TestAddrsDropUnreachable(t *testing.T) {
	loopback := []string{"127.0.0.0/8"}
	gate := &portGate{}
	gate.port.Store("")
	a, err := New(ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0"),
		PublicCIDRs(loopback...), ConnectionGater(gate))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), PublicCIDRs(loopback...), EnableAutoNATService(), DisableAutoNAT())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	all := a.Addrs()
	if len(all) != 2 {
		t.Fatalf("Addrs before any check = %v, want two TCP addresses", all)
	}
	open, closed := all[0], all[1]
	port, _ := closed.ValueForProtocol(ma.P_TCP)
	gate.port.Store(port)
	sub, err := a.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-sub.Out():
			e := ev.(event.EvtLocalAddressesUpdated)
			var removed []ma.Multiaddr
			for _, u := range e.Removed {
				removed = append(removed, u.Address)
			}
			if !ma.Contains(removed, closed) {
				continue
			}
		case <-ctx.Done():
			t.Fatalf("the unreachable address stayed: Addrs %v, verdicts open %v closed %v",
				a.Addrs(), a.autoNAT.verdict(open), a.autoNAT.verdict(closed))
		}
		break
	}
	got := a.Addrs()
	if ma.Contains(got, closed) || !ma.Contains(got, open) {
		t.Errorf("Addrs = %v, want %s without %s", got, open, closed)
	}
	if r := a.autoNAT.verdict(closed); r != network.ReachabilityPrivate {
		t.Errorf("closed address verdict %v, want Private", r)
	}
	if a.Reachability() != network.ReachabilityPublic {
		t.Errorf("Reachability = %v with a reachable address, want Public", a.Reachability())
	}
}
