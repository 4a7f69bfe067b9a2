package connmgr

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

type addrPair struct{ l, r ma.Multiaddr }

func (a addrPair) LocalMultiaddr() ma.Multiaddr  { return a.l }
func (a addrPair) RemoteMultiaddr() ma.Multiaddr { return a.r }

func TestBlockListChangesAtRunTime(t *testing.T) {
	b := NewBlockList()
	p, q := peerN(1), peerN(2)
	from := func(s string) network.ConnMultiaddrs {
		return addrPair{ma.StringCast("/ip4/127.0.0.1/tcp/4001"), ma.StringCast(s)}
	}
	a5 := "/ip4/127.0.0.5/tcp/1234"
	a6 := "/ip4/127.0.1.6/udp/1/quic-v1"
	if !b.InterceptPeerDial(p) || !b.InterceptAccept(from(a5)) || !b.InterceptAddrDial(p, ma.StringCast(a6)) {
		t.Fatal("an empty block list refuses")
	}
	b.BlockPeer(p)
	b.BlockAddr(netip.MustParseAddr("127.0.0.5"))
	b.BlockSubnet(netip.MustParsePrefix("127.0.1.0/24"))
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"peer dial p", b.InterceptPeerDial(p), false},
		{"peer dial q", b.InterceptPeerDial(q), true},
		{"addr dial p", b.InterceptAddrDial(p, ma.StringCast("/ip4/127.0.0.9/tcp/1")), false},
		{"addr dial q blocked addr", b.InterceptAddrDial(q, ma.StringCast(a5)), false},
		{"addr dial q blocked subnet", b.InterceptAddrDial(q, ma.StringCast(a6)), false},
		{"addr dial q other", b.InterceptAddrDial(q, ma.StringCast("/ip4/127.0.0.9/tcp/1")), true},
		{"accept blocked", b.InterceptAccept(from(a5)), false},
		{"accept other", b.InterceptAccept(from("/ip4/127.0.0.9/tcp/1")), true},
		{"secured p", b.InterceptSecured(network.DirInbound, p, from("/ip4/127.0.0.9/tcp/1")), false},
		{"secured q", b.InterceptSecured(network.DirInbound, q, from("/ip4/127.0.0.9/tcp/1")), true},
		{"dns address", b.InterceptAddrDial(q, ma.StringCast("/dns4/example.com/tcp/1")), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := fmt.Sprint(b.BlockedPeers(), b.BlockedAddrs(), b.BlockedSubnets()); got != fmt.Sprint([]any{p})+" [127.0.0.5] [127.0.1.0/24]" {
		t.Errorf("lists: %s", got)
	}
	b.UnblockPeer(p)
	b.UnblockAddr(netip.MustParseAddr("127.0.0.5"))
	b.UnblockSubnet(netip.MustParsePrefix("127.0.1.0/24"))
	if !b.InterceptPeerDial(p) || !b.InterceptAccept(from(a5)) || !b.InterceptAddrDial(p, ma.StringCast(a6)) {
		t.Fatal("unblocking does not let through")
	}
	if len(b.BlockedPeers())+len(b.BlockedAddrs())+len(b.BlockedSubnets()) != 0 {
		t.Fatal("lists not empty after unblocking")
	}
}

func TestGatedErrorNamesHook(t *testing.T) {
	err := fmt.Errorf("dial: %w", &GatedError{Hook: HookAddrDial, Peer: peerN(1), Addr: ma.StringCast("/ip4/127.0.0.1/tcp/1")})
	if !errors.Is(err, ErrGated) {
		t.Fatal("GatedError does not match ErrGated")
	}
	var ge *GatedError
	if !errors.As(err, &ge) || ge.Hook != HookAddrDial {
		t.Fatalf("errors.As: %v", ge)
	}
	want := "dial: connection gated by InterceptAddrDial for peer " + peerN(1).String() + " at /ip4/127.0.0.1/tcp/1"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err.Error(), want)
	}
}
