package compat

import (
	"errors"
	"fmt"
	"io"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lpeerstore "github.com/libp2p/go-libp2p/core/peerstore"
	lprotocol "github.com/libp2p/go-libp2p/core/protocol"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	quicgo "github.com/quic-go/quic-go"
)

// Libp2pPeerID is p as go-libp2p's peer.ID (the same bytes).
func Libp2pPeerID(p peer.ID) lpeer.ID { return lpeer.ID(p) }

// P2PNetPeerID is p as p2pnet's peer.ID (the same bytes).
func P2PNetPeerID(p lpeer.ID) peer.ID { return peer.ID(p) }

// Libp2pPeerIDs converts a list of peer IDs.
func Libp2pPeerIDs(ps []peer.ID) []lpeer.ID {
	out := make([]lpeer.ID, len(ps))
	for i, p := range ps {
		out[i] = lpeer.ID(p)
	}
	return out
}

// P2PNetPeerIDs converts a list of peer IDs.
func P2PNetPeerIDs(ps []lpeer.ID) []peer.ID {
	out := make([]peer.ID, len(ps))
	for i, p := range ps {
		out[i] = peer.ID(p)
	}
	return out
}

// Libp2pAddrInfo is ai as go-libp2p's peer.AddrInfo; the multiaddrs are
// the same values (both use github.com/multiformats/go-multiaddr).
func Libp2pAddrInfo(ai peer.AddrInfo) lpeer.AddrInfo {
	return lpeer.AddrInfo{ID: lpeer.ID(ai.ID), Addrs: ai.Addrs}
}

// P2PNetAddrInfo is ai as p2pnet's peer.AddrInfo.
func P2PNetAddrInfo(ai lpeer.AddrInfo) peer.AddrInfo {
	return peer.AddrInfo{ID: peer.ID(ai.ID), Addrs: ai.Addrs}
}

// Libp2pProtocolIDs converts protocol IDs (string types in both).
func Libp2pProtocolIDs(ids []protocol.ID) []lprotocol.ID {
	if ids == nil {
		return nil
	}
	out := make([]lprotocol.ID, len(ids))
	for i, id := range ids {
		out[i] = lprotocol.ID(id)
	}
	return out
}

// P2PNetProtocolIDs converts protocol IDs (string types in both).
func P2PNetProtocolIDs(ids []lprotocol.ID) []protocol.ID {
	if ids == nil {
		return nil
	}
	out := make([]protocol.ID, len(ids))
	for i, id := range ids {
		out[i] = protocol.ID(id)
	}
	return out
}

// Libp2pPubKey converts a public key through its protobuf form.
func Libp2pPubKey(k ic.PubKey) (lcrypto.PubKey, error) {
	if k == nil {
		return nil, nil
	}
	b, err := ic.MarshalPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("compat: marshalling public key: %w", err)
	}
	lk, err := lcrypto.UnmarshalPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("compat: go-libp2p cannot read public key: %w", err)
	}
	return lk, nil
}

// P2PNetPubKey converts a public key through its protobuf form.
func P2PNetPubKey(k lcrypto.PubKey) (ic.PubKey, error) {
	if k == nil {
		return nil, nil
	}
	b, err := lcrypto.MarshalPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("compat: marshalling go-libp2p public key: %w", err)
	}
	pk, err := ic.UnmarshalPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("compat: p2pnet cannot read public key: %w", err)
	}
	return pk, nil
}

// Libp2pPrivKey converts a private key through its protobuf form.
func Libp2pPrivKey(k ic.PrivKey) (lcrypto.PrivKey, error) {
	if k == nil {
		return nil, nil
	}
	b, err := ic.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("compat: marshalling private key: %w", err)
	}
	lk, err := lcrypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("compat: go-libp2p cannot read private key: %w", err)
	}
	return lk, nil
}

// P2PNetPrivKey converts a private key through its protobuf form.
func P2PNetPrivKey(k lcrypto.PrivKey) (ic.PrivKey, error) {
	if k == nil {
		return nil, nil
	}
	b, err := lcrypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("compat: marshalling go-libp2p private key: %w", err)
	}
	pk, err := ic.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("compat: p2pnet cannot read private key: %w", err)
	}
	return pk, nil
}

// Libp2pDirection converts a direction (the values are the same).
func Libp2pDirection(d network.Direction) lnetwork.Direction { return lnetwork.Direction(d) }

// P2PNetDirection converts a direction (the values are the same).
func P2PNetDirection(d lnetwork.Direction) network.Direction { return network.Direction(d) }

// Libp2pConnectedness converts a connectedness (the values are the same).
func Libp2pConnectedness(c network.Connectedness) lnetwork.Connectedness {
	return lnetwork.Connectedness(c)
}

// P2PNetConnectedness converts a connectedness (the values are the same).
func P2PNetConnectedness(c lnetwork.Connectedness) network.Connectedness {
	return network.Connectedness(c)
}

// Libp2pReachability converts a reachability (the values are the same).
func Libp2pReachability(r network.Reachability) lnetwork.Reachability {
	return lnetwork.Reachability(r)
}

// P2PNetReachability converts a reachability (the values are the same).
func P2PNetReachability(r lnetwork.Reachability) network.Reachability {
	return network.Reachability(r)
}

// sentinels pairs p2pnet's sentinel errors with go-libp2p's.
var sentinels = []struct{ ours, theirs error }{
	{network.ErrReset, lnetwork.ErrReset},
	{network.ErrNoConn, lnetwork.ErrNoConn},
	{network.ErrLimitedConn, lnetwork.ErrLimitedConn},
	{network.ErrNoRemoteAddrs, lnetwork.ErrNoRemoteAddrs},
	{network.ErrResourceLimitExceeded, lnetwork.ErrResourceLimitExceeded},
	{network.ErrResourceScopeClosed, lnetwork.ErrResourceScopeClosed},
	{peerstore.ErrNotFound, lpeerstore.ErrNotFound},
}

// libp2pError is a p2pnet error seen by go-libp2p code: it matches the
// go-libp2p sentinels its p2pnet cause matches, and unwraps to the cause.
type libp2pError struct{ err error }

func (e *libp2pError) Error() string { return e.err.Error() }
func (e *libp2pError) Unwrap() error { return e.err }

func (e *libp2pError) Is(target error) bool {
	for _, s := range sentinels {
		if target == s.theirs {
			return errors.Is(e.err, s.ours)
		}
	}
	return false
}

// p2pnetError is a go-libp2p error seen by p2pnet code.
type p2pnetError struct{ err error }

func (e *p2pnetError) Error() string { return e.err.Error() }
func (e *p2pnetError) Unwrap() error { return e.err }

func (e *p2pnetError) Is(target error) bool {
	for _, s := range sentinels {
		if target == s.ours {
			return errors.Is(e.err, s.theirs)
		}
	}
	return false
}

// Libp2pError returns err as go-libp2p code expects it: errors.Is
// matches go-libp2p's sentinels (network.ErrReset, ErrNoConn,
// ErrLimitedConn, ErrNoRemoteAddrs, ErrResourceLimitExceeded,
// ErrResourceScopeClosed, peerstore.ErrNotFound) wherever err matches
// p2pnet's, and still matches p2pnet's and anything else in its chain.
// A stream reset that carries an error code (yamux or QUIC) becomes a
// *network.StreamError with that code. nil, io.EOF and errors that
// match no sentinel are returned unchanged, so comparisons such as
// err == io.EOF and net.Error assertions keep working.
func Libp2pError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if se, ok := errors.AsType[*yamux.StreamError](err); ok {
		return &lnetwork.StreamError{ErrorCode: lnetwork.StreamErrorCode(se.Code), Remote: se.Remote, TransportError: &libp2pError{err}}
	}
	if se, ok := errors.AsType[*quicgo.StreamError](err); ok && errors.Is(err, network.ErrReset) {
		return &lnetwork.StreamError{ErrorCode: lnetwork.StreamErrorCode(se.ErrorCode), Remote: se.Remote, TransportError: &libp2pError{err}}
	}
	for _, s := range sentinels {
		if errors.Is(err, s.ours) {
			return &libp2pError{err}
		}
	}
	return err
}

// P2PNetError is Libp2pError the other way: errors.Is matches p2pnet's
// sentinels wherever err matches go-libp2p's.
func P2PNetError(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	for _, s := range sentinels {
		if errors.Is(err, s.theirs) {
			return &p2pnetError{err}
		}
	}
	return err
}
