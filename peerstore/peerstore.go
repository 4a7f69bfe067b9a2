// Package peerstore keeps what a node knows about other peers: their
// addresses (each with a time to live), public keys, supported protocols
// and free-form metadata; and our own keys.
//
// Peerstore is the interface the network depends on; New returns the
// in-memory implementation, safe for concurrent use, whose address expiry
// runs on an injectable clock. What it keeps per peer is bounded (see
// MaxProtocols and the other limits), and RemovePeer forgets everything
// but a peer's addresses, which expire by their TTLs: a peer forgotten
// and expired costs no memory.
//
// It is a vocabulary package: it imports only peer, crypto and protocol
// of p2pnet's.
package peerstore

import (
	"errors"
	"io"
	"math"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// The address TTLs libp2p uses, with libp2p's values.
const (
	// TempAddrTTL is for addresses that are only briefly useful, such as
	// those of a peer being dialed once.
	TempAddrTTL = 2 * time.Minute
	// ProviderAddrTTL is for addresses of content providers.
	ProviderAddrTTL = 30 * time.Minute
	// RecentlyConnectedAddrTTL is for addresses of a peer we were
	// connected to recently.
	RecentlyConnectedAddrTTL = 15 * time.Minute
	// OwnObservedAddrTTL is for our own addresses as observed by others.
	OwnObservedAddrTTL = 30 * time.Minute
	// AddressTTL is the default for addresses learnt from the network.
	AddressTTL = time.Hour
)

// The TTLs that never run out on their own.
const (
	// PermanentAddrTTL is for addresses that never expire, such as those
	// given by the user.
	PermanentAddrTTL time.Duration = math.MaxInt64 - iota
	// ConnectedAddrTTL is for addresses of a peer we are connected to; it
	// is replaced by a shorter TTL when the peer disconnects.
	ConnectedAddrTTL
)

// ErrNotFound is returned when a peer or an entry of it is unknown.
var ErrNotFound = errors.New("peerstore: item not found")

// ErrKeyMismatch is returned when a key added for a peer is not the key
// that the peer ID was derived from.
var ErrKeyMismatch = errors.New("peerstore: key does not match peer ID")

// Peerstore holds what a node knows about peers.
type Peerstore interface {
	io.Closer

	AddrBook
	KeyBook
	ProtoBook
	PeerMetadata
	Metrics

	// PeerInfo returns the peer and its current addresses.
	PeerInfo(peer.ID) peer.AddrInfo

	// Peers returns every peer with addresses or keys in the store.
	Peers() []peer.ID

	// RemovePeer forgets the peer's keys, protocols, metadata and
	// latency. Its addresses are left to expire, as in libp2p.
	RemovePeer(peer.ID)
}

// Metrics holds measurements of peers.
type Metrics interface {
	// RecordLatency adds a round-trip time to the peer's exponentially
	// weighted moving average.
	RecordLatency(peer.ID, time.Duration)
	// LatencyEWMA returns the peer's average round-trip time, or 0 if
	// none was recorded.
	LatencyEWMA(peer.ID) time.Duration
}

// AddrBook holds peers' addresses, each with an expiry.
type AddrBook interface {
	// AddAddr is AddAddrs with one address.
	AddAddr(p peer.ID, addr ma.Multiaddr, ttl time.Duration)
	// AddAddrs adds addresses with a TTL. An address already known keeps
	// the later of its old and new expiry; a TTL of zero or less adds
	// nothing.
	AddAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration)
	// SetAddr is SetAddrs with one address.
	SetAddr(p peer.ID, addr ma.Multiaddr, ttl time.Duration)
	// SetAddrs sets the TTL of addresses, replacing any earlier expiry; a
	// TTL of zero or less removes them.
	SetAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration)
	// UpdateAddrs gives every address of p whose TTL is oldTTL the TTL
	// newTTL, counted from now.
	UpdateAddrs(p peer.ID, oldTTL time.Duration, newTTL time.Duration)
	// Addrs returns the unexpired addresses of p.
	Addrs(p peer.ID) []ma.Multiaddr
	// ClearAddrs removes every address of p.
	ClearAddrs(p peer.ID)
	// PeersWithAddrs returns the peers that have unexpired addresses.
	PeersWithAddrs() []peer.ID
}

// KeyBook holds peers' public keys and our own private key.
type KeyBook interface {
	// PubKey returns the public key of p: the one stored, or the one
	// inlined in an identity-multihash peer ID, or nil.
	PubKey(p peer.ID) ic.PubKey
	// AddPubKey stores the public key of p; it returns ErrKeyMismatch when
	// p was not derived from the key.
	AddPubKey(p peer.ID, k ic.PubKey) error
	// PrivKey returns the private key of p, or nil; only our own is
	// normally known.
	PrivKey(p peer.ID) ic.PrivKey
	// AddPrivKey stores the private key of p; it returns ErrKeyMismatch
	// when p was not derived from the key.
	AddPrivKey(p peer.ID, k ic.PrivKey) error
	// PeersWithKeys returns the peers with a stored public or private key.
	PeersWithKeys() []peer.ID
}

// ProtoBook holds the protocols peers support.
type ProtoBook interface {
	// GetProtocols returns the protocols p supports.
	GetProtocols(p peer.ID) ([]protocol.ID, error)
	// AddProtocols adds to the protocols p supports. An implementation
	// may bound how many it keeps and how long each may be; a refusal
	// changes nothing and returns an error (for Memory, wrapping
	// ErrTooManyProtocols or ErrProtocolTooLong).
	AddProtocols(p peer.ID, protos ...protocol.ID) error
	// SetProtocols replaces the protocols p supports, with the bounds of
	// AddProtocols.
	SetProtocols(p peer.ID, protos ...protocol.ID) error
	// RemoveProtocols removes protocols from those p supports.
	RemoveProtocols(p peer.ID, protos ...protocol.ID) error
	// SupportsProtocols returns those of protos that p supports, in the
	// order given.
	SupportsProtocols(p peer.ID, protos ...protocol.ID) ([]protocol.ID, error)
	// FirstSupportedProtocol returns the first of protos that p supports,
	// or "" when it supports none.
	FirstSupportedProtocol(p peer.ID, protos ...protocol.ID) (protocol.ID, error)
}

// PeerMetadata holds free-form values about peers, such as the agent
// version that identify learns.
type PeerMetadata interface {
	// Get returns the value stored for p under key, or ErrNotFound.
	Get(p peer.ID, key string) (interface{}, error)
	// Put stores val for p under key. An implementation may bound the
	// number of keys and the size of values; a refusal changes nothing
	// and returns an error (for Memory, wrapping ErrTooManyMetadataKeys
	// or ErrMetadataTooLarge).
	Put(p peer.ID, key string, val interface{}) error
}
