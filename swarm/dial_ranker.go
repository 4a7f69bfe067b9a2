package swarm

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The delays DefaultDialRanker uses (go-libp2p's values). A step is about
// one round trip: the time a dial gets before the next one starts.
const (
	// PublicDialStep separates successive dials of public addresses.
	PublicDialStep = 250 * time.Millisecond
	// PrivateDialStep separates successive dials of private addresses.
	PrivateDialStep = 30 * time.Millisecond
	// RelayDialDelay delays relay addresses when the peer has public
	// direct addresses.
	RelayDialDelay = 500 * time.Millisecond
	// PublicOtherDelay delays public addresses of transports other than
	// QUIC and TCP after the last QUIC or TCP dial.
	PublicOtherDelay = time.Second
	// PrivateOtherDelay is PublicOtherDelay for private addresses.
	PrivateOtherDelay = 100 * time.Millisecond
)

var (
	_ network.DialRanker = DefaultDialRanker
	_ network.DialRanker = NoDelayDialRanker
)

// NoDelayDialRanker schedules every address at once, in the order given.
// The swarm uses it for dials under network.WithSimultaneousConnect.
func NoDelayDialRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	out := make([]network.AddrDelay, len(addrs))
	for i, a := range addrs {
		out[i] = network.AddrDelay{Addr: a}
	}
	return out
}

// DefaultDialRanker schedules a peer's addresses so that usually one dial
// succeeds before the next one would start, while a dead address costs
// only a short wait (happy eyeballs, RFC 8305).
//
// The addresses fall into four groups, each scheduled from time 0 on its
// own: private addresses (PrivateDialStep apart), public ones
// (PublicDialStep apart), relay addresses (PublicDialStep apart, all
// RelayDialDelay later when public addresses exist) and the rest (after
// every other address, PublicOtherDelay later).
//
// Within a group, QUIC addresses come first, then TCP, then the others;
// IPv6 before IPv4 and lower ports first. QUIC starts at 0: the first
// address, then the best address of the other IP family one step later,
// then all remaining QUIC addresses two steps after the start (one step
// when only one family is present). TCP follows the same pattern, starting
// one step after the last QUIC dial. Other transports start one "other"
// delay after the last QUIC or TCP dial.
//
// The swarm also starts the next dials at once whenever no dial is in
// flight, so the delays only matter while a dial is pending.
func DefaultDialRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	var relay, private, public, other []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case isRelayAddr(a):
			relay = append(relay, a)
		case manet.IsPrivateAddr(a):
			private = append(private, a)
		case hasProtocol(a, ma.P_IP4) || hasProtocol(a, ma.P_IP6):
			public = append(public, a)
		default:
			other = append(other, a)
		}
	}
	var relayOffset time.Duration
	if len(public) > 0 {
		relayOffset = RelayDialDelay
	}
	out := make([]network.AddrDelay, 0, len(addrs))
	out = rankGroup(out, private, PrivateDialStep, PrivateOtherDelay, 0)
	out = rankGroup(out, public, PublicDialStep, PublicOtherDelay, 0)
	out = rankGroup(out, relay, PublicDialStep, PublicOtherDelay, relayOffset)
	var last time.Duration
	for _, ad := range out {
		last = max(last, ad.Delay)
	}
	for _, a := range other {
		out = append(out, network.AddrDelay{Addr: a, Delay: last + PublicOtherDelay})
	}
	return out
}

// rankGroup appends the schedule of one group of addresses to out; every
// delay is shifted by offset.
func rankGroup(out []network.AddrDelay, addrs []ma.Multiaddr, step, otherDelay, offset time.Duration) []network.AddrDelay {
	var quic, tcp, rest []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case hasProtocol(a, ma.P_QUIC_V1):
			quic = append(quic, a)
		case hasProtocol(a, ma.P_TCP):
			tcp = append(tcp, a)
		default:
			rest = append(rest, a)
		}
	}
	var last, tcpStart time.Duration
	if len(quic) > 0 {
		out, last = happyEyeballs(out, quic, 0, step, offset)
		tcpStart = last + step
	}
	if len(tcp) > 0 {
		out, last = happyEyeballs(out, tcp, tcpStart, step, offset)
	}
	for _, a := range rest {
		out = append(out, network.AddrDelay{Addr: a, Delay: offset + last + otherDelay})
	}
	return out
}

// happyEyeballs appends the schedule of addresses of one transport,
// starting at start, and returns it with the delay of the last one
// (without offset). It sorts addrs, which the caller owns.
func happyEyeballs(out []network.AddrDelay, addrs []ma.Multiaddr, start, step, offset time.Duration) ([]network.AddrDelay, time.Duration) {
	slices.SortStableFunc(addrs, func(a, b ma.Multiaddr) int {
		return cmp.Compare(rankKey(a), rankKey(b))
	})
	// With both families present, the best address of the other family
	// goes second.
	bothFamilies := false
	if hasProtocol(addrs[0], ma.P_IP6) {
		if j := slices.IndexFunc(addrs, func(a ma.Multiaddr) bool { return hasProtocol(a, ma.P_IP4) }); j > 0 {
			a := addrs[j]
			copy(addrs[2:j+1], addrs[1:j])
			addrs[1] = a
			bothFamilies = true
		}
	}
	var d time.Duration
	for i, a := range addrs {
		switch {
		case i == 0:
			d = start
		case i == 1 || !bothFamilies:
			d = start + step
		default:
			d = start + 2*step
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: offset + d})
	}
	return out, d
}

// rankKey orders addresses of one transport: plain QUIC before
// WebTransport, IPv6 before IPv4, lower ports first.
func rankKey(a ma.Multiaddr) int {
	key := addrPort(a)
	if hasProtocol(a, ma.P_IP4) {
		key += 1 << 17
	}
	if hasProtocol(a, ma.P_WEBTRANSPORT) {
		key += 1 << 18
	}
	return key
}

// addrPort returns the TCP or UDP port of a, or 0.
func addrPort(a ma.Multiaddr) int {
	for _, c := range a {
		if c.Code() == ma.P_TCP || c.Code() == ma.P_UDP {
			port, _ := strconv.Atoi(c.Value())
			return port
		}
	}
	return 0
}

// hasProtocol reports whether a has a component with the protocol code.
func hasProtocol(a ma.Multiaddr, code int) bool {
	for _, c := range a {
		if c.Code() == code {
			return true
		}
	}
	return false
}

// isRelayAddr reports whether a goes through a circuit relay.
func isRelayAddr(a ma.Multiaddr) bool { return hasProtocol(a, ma.P_CIRCUIT) }
