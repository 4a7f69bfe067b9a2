package swarm

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"slices"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// InterfaceListenAddresses returns the addresses others can dial us at:
// the listen addresses with /ip4/0.0.0.0 and /ip6/:: expanded to the
// addresses of the machine's interfaces of that family, without
// addresses that cannot be dialled as they stand (link-local IPv6
// addresses need a zone, multicast ones are no host's), without
// duplicates, and in a stable order: public, then private, then loopback;
// within each, TCP, then QUIC, then other transports; IPv4 before IPv6;
// then by bytes. The order is the same on every call and every run.
//
// When the interfaces cannot be listed, the error says so and the
// addresses returned are those that needed no expansion.
func (s *Swarm) InterfaceListenAddresses() ([]ma.Multiaddr, error) {
	listen := s.ListenAddresses()
	var ifaces []ma.Multiaddr
	var err error
	if slices.ContainsFunc(listen, manet.IsIPUnspecified) {
		ifaces, err = manet.InterfaceMultiaddrs()
		if err != nil {
			err = fmt.Errorf("swarm: interface addresses: %w", err)
		}
	}
	return dialableAddrs(listen, ifaces), err
}

// dialableAddrs expands, filters, deduplicates and sorts listen
// addresses as InterfaceListenAddresses documents; ifaces are the
// machine's interface addresses (/ip4/… and /ip6/…).
func dialableAddrs(listen, ifaces []ma.Multiaddr) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(listen))
	add := func(a ma.Multiaddr) {
		if !announceable(a) || slices.ContainsFunc(out, a.Equal) {
			return
		}
		out = append(out, a)
	}
	for _, l := range listen {
		if len(l) == 0 {
			continue
		}
		if !manet.IsIPUnspecified(l) {
			add(l)
			continue
		}
		for _, ip := range ifaces {
			if len(ip) != 1 || ip[0].Code() != l[0].Code() {
				continue
			}
			add(append(ma.Multiaddr{ip[0]}, l[1:]...))
		}
	}
	slices.SortFunc(out, compareAddrs)
	return out
}

// announceable reports whether a is worth telling others: an address
// that a peer can dial as written.
func announceable(a ma.Multiaddr) bool {
	if len(a) == 0 {
		return false
	}
	switch a[0].Code() {
	case ma.P_IP6ZONE, ma.P_CIRCUIT:
		// A bare /p2p-circuit is the circuit transport's listener, not
		// an address: the relayed addresses are announced by the host.
		return false
	case ma.P_IP4, ma.P_IP6:
		ip := net.IP(a[0].RawValue())
		return !ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && !ip.IsMulticast()
	}
	return true
}

// compareAddrs orders addresses for InterfaceListenAddresses.
func compareAddrs(a, b ma.Multiaddr) int {
	return cmp.Or(
		cmp.Compare(scopeRank(a), scopeRank(b)),
		cmp.Compare(transportRank(a), transportRank(b)),
		cmp.Compare(a[0].Code(), b[0].Code()), // P_IP4 (4) before P_IP6 (41)
		bytes.Compare(a.Bytes(), b.Bytes()),
	)
}

// scopeRank: public 0, private (and anything else) 1, loopback 2.
func scopeRank(a ma.Multiaddr) int {
	switch {
	case manet.IsIPLoopback(a):
		return 2
	case manet.IsPublicAddr(a):
		return 0
	}
	return 1
}

// transportRank: plain TCP 0, plain QUIC 1, others (WebSocket,
// WebTransport, circuits) 2.
func transportRank(a ma.Multiaddr) int {
	switch {
	case len(a) == 2 && a[1].Code() == ma.P_TCP:
		return 0
	case len(a) == 3 && a[1].Code() == ma.P_UDP && a[2].Code() == ma.P_QUIC_V1:
		return 1
	}
	return 2
}
