package network

import (
	"context"
	"io"
	"time"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"

	ma "github.com/multiformats/go-multiaddr"
)

// MessageSizeMax is a recommended, not enforced, upper bound for one
// message on a stream: 4 MiB. Larger objects are better split into
// several reads and writes.
const MessageSizeMax = 1 << 22

// Network dials and listens for connections to peers, keeps them, and
// opens streams on them.
type Network interface {
	Dialer
	io.Closer

	// SetStreamHandler sets the handler for streams the remote side
	// opens. It is safe to call at any time.
	SetStreamHandler(StreamHandler)

	// NewStream opens a stream to p, dialing p first when no usable
	// connection exists (unless ctx carries WithNoDial).
	NewStream(context.Context, peer.ID) (Stream, error)

	// Listen starts listening on the given addresses.
	Listen(...ma.Multiaddr) error

	// ListenAddresses returns the addresses the network listens on.
	ListenAddresses() []ma.Multiaddr

	// InterfaceListenAddresses returns the listen addresses with the
	// unspecified addresses (/ip4/0.0.0.0, /ip6/::) expanded to the
	// addresses of the machine's interfaces.
	InterfaceListenAddresses() ([]ma.Multiaddr, error)

	// ResourceManager returns the network's resource manager.
	ResourceManager() ResourceManager
}

// Dialer dials peers and keeps the connections to them. A Network is a
// Dialer; code that only dials can depend on this smaller interface.
type Dialer interface {
	// Peerstore returns the peerstore the dialer takes addresses and keys
	// from.
	Peerstore() peerstore.Peerstore

	// LocalPeer returns our peer ID.
	LocalPeer() peer.ID

	// DialPeer returns a connection to the peer, dialing when there is
	// none.
	DialPeer(context.Context, peer.ID) (Conn, error)

	// ClosePeer closes every connection to the peer.
	ClosePeer(peer.ID) error

	// Connectedness reports how connected we are to the peer.
	Connectedness(peer.ID) Connectedness

	// Peers returns the peers we have connections to.
	Peers() []peer.ID

	// Conns returns every open connection.
	Conns() []Conn

	// ConnsToPeer returns the open connections to p.
	ConnsToPeer(p peer.ID) []Conn

	// Notify registers a notifiee for the network's events.
	Notify(Notifiee)
	// StopNotify unregisters a notifiee.
	StopNotify(Notifiee)

	// CanDial reports whether the dialer has a transport that can dial p
	// at addr.
	CanDial(p peer.ID, addr ma.Multiaddr) bool
}

// AddrDelay is an address to dial and how long after the dial starts to
// dial it.
type AddrDelay struct {
	Addr  ma.Multiaddr
	Delay time.Duration
}

// DialRanker schedules the dials of a peer's addresses: it returns each
// address with the delay after which to dial it.
type DialRanker func([]ma.Multiaddr) []AddrDelay

// MultiaddrDNSResolver resolves the DNS components of multiaddrs.
type MultiaddrDNSResolver interface {
	// ResolveDNSAddr resolves the first /dnsaddr component of maddr,
	// recursively up to recursionLimit levels, returning at most
	// outputLimit addresses, and only those whose /p2p/ component, if
	// any, is expectedPeerID.
	ResolveDNSAddr(ctx context.Context, expectedPeerID peer.ID, maddr ma.Multiaddr, recursionLimit, outputLimit int) ([]ma.Multiaddr, error)

	// ResolveDNSComponent resolves the first /dns, /dns4 or /dns6
	// component of maddr, returning at most outputLimit addresses.
	ResolveDNSComponent(ctx context.Context, maddr ma.Multiaddr, outputLimit int) ([]ma.Multiaddr, error)
}
