// Package autonat implements AutoNAT v2
// (https://github.com/libp2p/specs/blob/master/autonat/autonat-v2.md),
// with which a node learns whether each of its addresses is reachable
// from the public internet: a client asks a server, on
// /libp2p/autonat/2/dial-request, to dial one address and send a nonce
// back on /libp2p/autonat/2/dial-back; the server answers with the
// outcome. A server asks the client to pay for a dial of an address whose
// IP differs from the one it sees the client at with 30 to 100 kB of
// data (the spec's amplification-attack protection).
//
// [Server] serves requests with global and per-peer rate limits, its
// streams attached to the resource manager service ServiceName, and
// dials back from a separate dialer (a host of another identity, as the
// spec allows), so that the dial back makes a fresh connection from a
// port that is not our listen port. [Client] checks its candidate
// addresses with the connected peers that serve the protocol and derives
// the node's network.Reachability with hysteresis (see [Tracker]),
// re-checking periodically.
//
// AutoNAT v1 (https://github.com/libp2p/specs/blob/master/autonat/autonat-v1.md,
// /libp2p/autonat/1.0.0) is served by the same [Server], within the
// same rate limits: it dials back only those of the requested addresses
// whose IP is the one it sees the requester at. The [Client] asks v1
// servers only when no connected peer serves v2; a v1 answer is
// host-wide, so the client asks about one address at a time and feeds
// the answer to the same [Tracker].
//
// Package autonat may import network, peer, peerstore, protocol of
// p2pnet's, go-multiaddr, protowire and the standard library. It never
// imports the host: it declares the [Host] it needs.
package autonat

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// The protocol IDs.
const (
	DialRequestID protocol.ID = "/libp2p/autonat/2/dial-request"
	DialBackID    protocol.ID = "/libp2p/autonat/2/dial-back"
	V1ID          protocol.ID = "/libp2p/autonat/1.0.0"
)

// ServiceName is the resource manager service AutoNAT streams attach to.
const ServiceName = "libp2p.autonat"

// DefaultStreamTimeout bounds one request, dial back and dial data
// included, on either side.
const DefaultStreamTimeout = time.Minute

// Errors.
var (
	// ErrClosed is the error of work cut short by Close.
	ErrClosed = errors.New("autonat: closed")
	// ErrNoServer is the error of a check with no peer to ask.
	ErrNoServer = errors.New("autonat: no connected peer serves AutoNAT")
	// ErrBadResponse is the error of a response the client discards: an
	// unknown status, an index outside the request, or an OK dial status
	// without the nonce coming back over the address's transport; in v1
	// an OK without the address asked about, or a message of another
	// type.
	ErrBadResponse = errors.New("autonat: response discarded")
	// ErrRejected is the error of a request the server refused
	// (E_REQUEST_REJECTED, E_DIAL_REFUSED, E_INTERNAL_ERROR; in v1
	// E_DIAL_REFUSED, E_BAD_REQUEST, E_INTERNAL_ERROR).
	ErrRejected = errors.New("autonat: request not served")
)

// Host is what the client and the server need of a libp2p host.
type Host interface {
	// ID returns our peer ID.
	ID() peer.ID
	// Network returns the host's network.
	Network() network.Network
	// Peerstore returns the host's peerstore, where identify stores the
	// protocols peers serve.
	Peerstore() peerstore.Peerstore
	// NewStream opens a stream for one of pids.
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
}

// nonPublic are the ranges global unicast addresses are not public in:
// private, shared (CGNAT) and documentation ranges.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// Public says which addresses count as public: direct (not circuit)
// addresses whose IP is in one of its ranges, or global unicast outside
// the private, shared and documentation ranges. The zero value knows no
// extra range.
type Public []netip.Prefix

// Contains reports whether a is a public direct address.
func (p Public) Contains(a ma.Multiaddr) bool {
	ip, ok := ipOf(a)
	if !ok {
		return false
	}
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			return false
		}
	}
	for _, r := range p {
		if r.Contains(ip) {
			return true
		}
	}
	if !ip.IsGlobalUnicast() {
		return false
	}
	for _, r := range nonPublic {
		if r.Contains(ip) {
			return false
		}
	}
	return true
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

// transportKey describes a's transport stack without IP and ports
// ("tcp", "udp/quic-v1"), "" for an address without an IP.
func transportKey(a ma.Multiaddr) string {
	if _, ok := ipOf(a); !ok {
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
