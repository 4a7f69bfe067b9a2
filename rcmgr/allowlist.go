package rcmgr

import (
	"fmt"
	"net/netip"

	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// allowEntry is one allowlisted network, for every peer or for one.
type allowEntry struct {
	prefix netip.Prefix
	peer   peer.ID // "" admits every peer
}

// allowlist is the list WithAllowlist builds. It does not change after
// New, so it needs no lock.
type allowlist []allowEntry

// parseAllowEntry parses /ip4/A or /ip6/A, optionally followed by
// /ipcidr/N, optionally followed by /p2p/ID.
func parseAllowEntry(m ma.Multiaddr) (allowEntry, error) {
	bad := func(why string) (allowEntry, error) {
		return allowEntry{}, fmt.Errorf("rcmgr: allowlist entry %q: %s; want /ip4/A or /ip6/A, then optionally /ipcidr/N, then optionally /p2p/ID", m.String(), why)
	}
	if len(m) == 0 {
		return bad("empty")
	}
	var e allowEntry
	first := &m[0]
	switch first.Code() {
	case ma.P_IP4, ma.P_IP6:
		ip, ok := netip.AddrFromSlice(first.RawValue())
		if !ok {
			return bad("bad IP address")
		}
		if first.Code() == ma.P_IP4 {
			ip = ip.Unmap()
		}
		e.prefix = netip.PrefixFrom(ip, ip.BitLen())
	default:
		return bad("it does not start with an IP address")
	}
	rest := m[1:]
	if len(rest) > 0 && rest[0].Code() == ma.P_IPCIDR {
		raw := rest[0].RawValue()
		if len(raw) != 1 || int(raw[0]) > e.prefix.Addr().BitLen() {
			return bad("bad /ipcidr prefix length")
		}
		e.prefix = netip.PrefixFrom(e.prefix.Addr(), int(raw[0])).Masked()
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0].Code() == ma.P_P2P {
		id, err := peer.IDFromBytes(rest[0].RawValue())
		if err != nil {
			return bad(err.Error())
		}
		e.peer = id
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return bad("unexpected " + rest.String())
	}
	return e, nil
}

// containsAny reports whether any entry, whatever its peer, contains ip.
func (a allowlist) containsAny(ip netip.Addr) bool {
	for _, e := range a {
		if e.prefix.Contains(ip) {
			return true
		}
	}
	return false
}

// allows reports whether an entry for every peer, or for p, contains ip.
func (a allowlist) allows(p peer.ID, ip netip.Addr) bool {
	for _, e := range a {
		if (e.peer == "" || e.peer == p) && e.prefix.Contains(ip) {
			return true
		}
	}
	return false
}

// endpointIP returns the remote IP of a connection's endpoint: the
// address of its first /ip4 or /ip6 component (after any /ip6zone). A
// relayed address (with /p2p-circuit) has no IP of its own: the IP it
// starts with is the relay's.
func endpointIP(m ma.Multiaddr) (netip.Addr, bool) {
	var ip netip.Addr
	found := false
	for i := range m {
		c := &m[i]
		switch c.Code() {
		case ma.P_CIRCUIT:
			return netip.Addr{}, false
		case ma.P_IP4, ma.P_IP6:
			if !found && (i == 0 || (i == 1 && m[0].Code() == ma.P_IP6ZONE)) {
				a, ok := netip.AddrFromSlice(c.RawValue())
				if ok {
					ip, found = a.Unmap(), true
				}
			}
		}
	}
	return ip, found
}
