// Package nat is what a node knows about its own reachability from what
// its peers tell it: the addresses they observe it at (identify's
// observedAddr), which of those are confirmed, and the kind of NAT in
// front of it per transport.
//
// An observed address is confirmed when peers in at least
// DefaultConfirmations (3) distinct networks report it: IPv4 peers group
// by /16, IPv6 peers by /48, so that one operator's peers, or one
// attacker's addresses in one range, count once. go-libp2p's
// observed-address manager groups differently (an IPv4 observer is its
// full address, an IPv6 one its /56) and activates an address at 4
// observers; the coarser groups here make a lying or misconfigured
// network count once whatever its size, so fewer of them are needed.
//
// The NAT device type of a transport is inferred from outbound
// connections: NATDeviceTypeCone when the connections that leave from
// one local address are seen at one external address whatever peer
// observes them (endpoint-independent mapping), NATDeviceTypeSymmetric
// when they are seen at different ones. See [ObservedAddrs.NATType].
//
// PortMapper asks the local network's gateway to forward ports: UPnP IGD
// (through github.com/huin/goupnp) and NAT-PMP (through
// github.com/jackpal/go-nat-pmp), tried at once. See [PortMapper].
//
// Package nat may import network and peer of p2pnet's, go-multiaddr,
// goupnp, go-nat-pmp and the standard library.
package nat

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// DefaultConfirmations is how many distinct networks (/16 for IPv4, /48
// for IPv6) must report an observed address before it is confirmed.
const DefaultConfirmations = 3

// DefaultMaxObservations bounds the observations kept: one per reporting
// peer and local address. Beyond it new reports are dropped until peers
// are forgotten.
const DefaultMaxObservations = 1024

// Observation is one peer's report of the address it sees us at.
type Observation struct {
	// Local is our end of the connection the report came over.
	Local ma.Multiaddr
	// Observed is the address the peer says it sees us at.
	Observed ma.Multiaddr
	// Reporter is the peer that reported.
	Reporter peer.ID
	// ReporterAddr is the peer's end of the connection: its network
	// (/16 or /48) is what counts towards confirmation.
	ReporterAddr ma.Multiaddr
	// Outbound is true when we opened the connection; only those tell
	// how the NAT maps outbound connections.
	Outbound bool
}

// obs is a stored observation. There is one per reporter and local
// address.
type obs struct {
	local    string // the local address's bytes
	reporter peer.ID
	observed ma.Multiaddr
	group    netip.Prefix
	outbound bool
}

// ObservedAddrs collects observations. It is safe for concurrent use.
type ObservedAddrs struct {
	confirmations int
	max           int

	mu sync.Mutex // guards the following
	// obs are the observations, in no order. A slice rather than a map:
	// a host with a few connections keeps a few entries, not a map's
	// table, and Forget scans every entry either way.
	obs []obs
}

// Option configures ObservedAddrs.
type Option func(*ObservedAddrs)

// Confirmations sets how many distinct networks confirm an address.
// Default: DefaultConfirmations. Values below 1 mean 1.
func Confirmations(n int) Option {
	return func(o *ObservedAddrs) { o.confirmations = max(n, 1) }
}

// NewObservedAddrs returns an empty collection.
func NewObservedAddrs(opts ...Option) *ObservedAddrs {
	o := &ObservedAddrs{confirmations: DefaultConfirmations, max: DefaultMaxObservations}
	for _, f := range opts {
		f(o)
	}
	return o
}

// Record stores ob, replacing the reporter's previous report for the
// same local address. Reports that are not usable (no IP on either end,
// an observed address of another transport than the local one, a
// circuit address) are ignored; Record reports whether ob was kept.
func (o *ObservedAddrs) Record(ob Observation) bool {
	if ob.Local == nil || ob.Observed == nil || ob.ReporterAddr == nil {
		return false
	}
	group, ok := groupOf(ob.ReporterAddr)
	if !ok || transportKey(ob.Local) == "" || transportKey(ob.Local) != transportKey(ob.Observed) {
		return false
	}
	if _, ok := ipOf(ob.Observed); !ok {
		return false
	}
	local := ob.Local.Bytes()
	o.mu.Lock()
	defer o.mu.Unlock()
	e := obs{reporter: ob.Reporter, observed: ob.Observed, group: group, outbound: ob.Outbound}
	for i := range o.obs {
		x := &o.obs[i]
		if x.local != string(local) {
			continue
		}
		e.local = x.local // local addresses are few: share their bytes
		if x.reporter == ob.Reporter {
			*x = e
			return true
		}
	}
	if len(o.obs) >= o.max {
		return false
	}
	if e.local == "" {
		e.local = string(local)
	}
	o.obs = append(o.obs, e)
	return true
}

// Forget drops every report of p, as when its last connection closed.
func (o *ObservedAddrs) Forget(p peer.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = slices.DeleteFunc(o.obs, func(x obs) bool { return x.reporter == p })
	if len(o.obs) == 0 {
		o.obs = nil
	}
}

// counted is an observed address and the distinct networks that
// reported it.
type counted struct {
	addr   ma.Multiaddr
	groups map[netip.Prefix]bool
}

// countLocked groups the observations that keep returns true for by
// observed address.
func (o *ObservedAddrs) countLocked(keep func(*obs) bool) []*counted {
	byAddr := map[string]*counted{}
	var out []*counted
	for i := range o.obs {
		v := &o.obs[i]
		if !keep(v) {
			continue
		}
		key := string(v.observed.Bytes())
		c := byAddr[key]
		if c == nil {
			c = &counted{addr: v.observed, groups: map[netip.Prefix]bool{}}
			byAddr[key] = c
			out = append(out, c)
		}
		c.groups[v.group] = true
	}
	// Most reported first; ties in a stable order.
	slices.SortFunc(out, func(a, b *counted) int {
		if n := cmp.Compare(len(b.groups), len(a.groups)); n != 0 {
			return n
		}
		return cmp.Compare(a.addr.String(), b.addr.String())
	})
	return out
}

// Confirmed returns the observed addresses reported from at least the
// configured number of distinct networks, most reported first. They are
// the candidates for announcement once AutoNAT finds them reachable.
func (o *ObservedAddrs) Confirmed() []ma.Multiaddr {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []ma.Multiaddr
	for _, c := range o.countLocked(func(*obs) bool { return true }) {
		if len(c.groups) >= o.confirmations {
			out = append(out, c.addr)
		}
	}
	return out
}

// All returns every observed address, most reported first, confirmed or
// not: what an AutoNAT client may test.
func (o *ObservedAddrs) All() []ma.Multiaddr {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []ma.Multiaddr
	for _, c := range o.countLocked(func(*obs) bool { return true }) {
		out = append(out, c.addr)
	}
	return out
}

// NATType infers the NAT in front of us for one transport from the
// reports about outbound connections of that transport. For each local
// address, the external address most networks report is its mapping;
// the networks that agree with it are counted against all networks that
// reported for that address. Cone when, over all local addresses, at
// least half agree (a peer that lies or sits behind its own rewriting
// middlebox does not flip the verdict); symmetric otherwise. Unknown
// until outbound reports come from the configured number of distinct
// networks.
func (o *ObservedAddrs) NATType(tp network.NATTransportProtocol) network.NATDeviceType {
	o.mu.Lock()
	defer o.mu.Unlock()
	want := "tcp"
	if tp == network.NATTransportUDP {
		want = "udp"
	}
	locals := map[string]bool{}
	networks := map[netip.Prefix]bool{}
	for _, v := range o.obs {
		if v.outbound && transportProto(v.observed) == want {
			locals[v.local] = true
			networks[v.group] = true
		}
	}
	if len(networks) < o.confirmations {
		return network.NATDeviceTypeUnknown
	}
	agree, total := 0, 0
	for local := range locals {
		cs := o.countLocked(func(v *obs) bool { return v.outbound && v.local == local })
		all := map[netip.Prefix]bool{}
		for _, c := range cs {
			for g := range c.groups {
				all[g] = true
			}
		}
		if len(cs) > 0 {
			agree += len(cs[0].groups)
		}
		total += len(all)
	}
	if 2*agree >= total {
		return network.NATDeviceTypeCone
	}
	return network.NATDeviceTypeSymmetric
}

// ipOf returns the IP of a's first component, if it is /ip4 or /ip6.
func ipOf(a ma.Multiaddr) (netip.Addr, bool) {
	if len(a) == 0 {
		return netip.Addr{}, false
	}
	switch a[0].Code() {
	case ma.P_IP4, ma.P_IP6:
		ip, ok := netip.AddrFromSlice(a[0].RawValue())
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

// groupOf returns the network a reporter at a counts as: its IPv4 /16 or
// IPv6 /48.
func groupOf(a ma.Multiaddr) (netip.Prefix, bool) {
	ip, ok := ipOf(a)
	if !ok {
		return netip.Prefix{}, false
	}
	bits := 16
	if ip.Is6() {
		bits = 48
	}
	p, err := ip.Prefix(bits)
	return p, err == nil
}

// transportProto returns "tcp" or "udp" for a's transport-layer
// protocol, "" for anything else (circuits included).
func transportProto(a ma.Multiaddr) string {
	proto := ""
	for _, c := range a {
		switch c.Code() {
		case ma.P_CIRCUIT:
			return ""
		case ma.P_TCP:
			proto = "tcp"
		case ma.P_UDP:
			proto = "udp"
		}
	}
	return proto
}

// transportKey describes a's transport stack without its IP and ports
// (e.g. "tcp", "udp/quic-v1"), so that an observed address is matched
// to a local one of the same kind.
func transportKey(a ma.Multiaddr) string {
	if transportProto(a) == "" {
		return ""
	}
	key := ""
	for _, c := range a[1:] {
		if c.Code() == ma.P_P2P {
			break
		}
		if key != "" {
			key += "/"
		}
		key += c.Protocol().Name
	}
	return key
}
