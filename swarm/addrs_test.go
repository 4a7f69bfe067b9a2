package swarm

import (
	"math/rand/v2"
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func addrList(ss ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}

// TestDialableAddrs: unspecified addresses become one address per
// interface address of their family; link-local, zoned and multicast
// addresses are dropped; duplicates go; and the order is public, private,
// loopback, with TCP before QUIC, IPv4 before IPv6, whatever order the
// listeners and interfaces come in.
func TestDialableAddrs(t *testing.T) {
	listen := addrList(
		"/ip4/0.0.0.0/tcp/4001",
		"/ip6/::/tcp/4002",
		"/ip4/0.0.0.0/udp/4001/quic-v1",
		"/ip6/::/udp/4002/quic-v1",
		"/ip4/127.0.0.1/tcp/4001", // also an expansion of the first: one copy
		"/ip6/fe80::1/tcp/9",      // link-local: needs a zone
		"/ip6zone/eth0/ip6/fe80::1/tcp/9",
		"/ip4/0.0.0.0/tcp/4003/ws",
	)
	ifaces := addrList(
		"/ip4/127.0.0.1",
		"/ip4/192.168.1.5",
		"/ip4/8.8.4.4",
		"/ip6/::1",
		"/ip6/fe80::fc:ff:fe00:1",
		"/ip6/fd00::2",
		"/ip6/2001:4860::1",
		"/ip4/169.254.3.4", // IPv4 link-local: dialable on its link, but never announced
	)
	want := addrList(
		// public
		"/ip4/8.8.4.4/tcp/4001",
		"/ip6/2001:4860::1/tcp/4002",
		"/ip4/8.8.4.4/udp/4001/quic-v1",
		"/ip6/2001:4860::1/udp/4002/quic-v1",
		"/ip4/8.8.4.4/tcp/4003/ws",
		// private
		"/ip4/192.168.1.5/tcp/4001",
		"/ip6/fd00::2/tcp/4002",
		"/ip4/192.168.1.5/udp/4001/quic-v1",
		"/ip6/fd00::2/udp/4002/quic-v1",
		"/ip4/192.168.1.5/tcp/4003/ws",
		// loopback
		"/ip4/127.0.0.1/tcp/4001",
		"/ip6/::1/tcp/4002",
		"/ip4/127.0.0.1/udp/4001/quic-v1",
		"/ip6/::1/udp/4002/quic-v1",
		"/ip4/127.0.0.1/tcp/4003/ws",
	)
	for i := range 20 {
		l, f := slices.Clone(listen), slices.Clone(ifaces)
		if i > 0 {
			rand.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
			rand.Shuffle(len(f), func(i, j int) { f[i], f[j] = f[j], f[i] })
		}
		got := dialableAddrs(l, f)
		if !slices.EqualFunc(got, want, ma.Multiaddr.Equal) {
			t.Fatalf("round %d:\ngot  %v\nwant %v", i, got, want)
		}
	}
}
