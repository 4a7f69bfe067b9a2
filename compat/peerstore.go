package compat

import (
	"context"
	"fmt"
	"time"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lpeerstore "github.com/libp2p/go-libp2p/core/peerstore"
	lprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"

	ma "github.com/multiformats/go-multiaddr"
)

// pstore is the host's peerstore seen as go-libp2p's. TTLs pass
// unchanged: both define the same durations and the same two special
// values (PermanentAddrTTL, ConnectedAddrTTL).
type pstore struct{ ps peerstore.Peerstore }

var _ lpeerstore.Peerstore = (*pstore)(nil)

// Close does nothing: the peerstore belongs to the host, which closes it.
func (s *pstore) Close() error { return nil }

func (s *pstore) AddAddr(p lpeer.ID, a ma.Multiaddr, ttl time.Duration) {
	s.ps.AddAddr(peer.ID(p), a, ttl)
}

func (s *pstore) AddAddrs(p lpeer.ID, as []ma.Multiaddr, ttl time.Duration) {
	s.ps.AddAddrs(peer.ID(p), as, ttl)
}

func (s *pstore) SetAddr(p lpeer.ID, a ma.Multiaddr, ttl time.Duration) {
	s.ps.SetAddr(peer.ID(p), a, ttl)
}

func (s *pstore) SetAddrs(p lpeer.ID, as []ma.Multiaddr, ttl time.Duration) {
	s.ps.SetAddrs(peer.ID(p), as, ttl)
}

func (s *pstore) UpdateAddrs(p lpeer.ID, oldTTL, newTTL time.Duration) {
	s.ps.UpdateAddrs(peer.ID(p), oldTTL, newTTL)
}

func (s *pstore) Addrs(p lpeer.ID) []ma.Multiaddr { return s.ps.Addrs(peer.ID(p)) }

// AddrStream sends the addresses known for p now and closes the channel:
// p2pnet's peerstore does not stream later additions (go-libp2p
// deprecates AddrStream; subscribe to EvtPeerIdentificationCompleted for
// a peer's addresses).
func (s *pstore) AddrStream(ctx context.Context, p lpeer.ID) <-chan ma.Multiaddr {
	addrs := s.ps.Addrs(peer.ID(p))
	ch := make(chan ma.Multiaddr, len(addrs))
	for _, a := range addrs {
		ch <- a
	}
	close(ch)
	return ch
}

func (s *pstore) ClearAddrs(p lpeer.ID) { s.ps.ClearAddrs(peer.ID(p)) }

func (s *pstore) PeersWithAddrs() lpeer.IDSlice { return Libp2pPeerIDs(s.ps.PeersWithAddrs()) }

func (s *pstore) PubKey(p lpeer.ID) lcrypto.PubKey {
	k, err := Libp2pPubKey(s.ps.PubKey(peer.ID(p)))
	if err != nil {
		return nil
	}
	return k
}

func (s *pstore) AddPubKey(p lpeer.ID, k lcrypto.PubKey) error {
	pk, err := P2PNetPubKey(k)
	if err != nil {
		return err
	}
	return Libp2pError(s.ps.AddPubKey(peer.ID(p), pk))
}

func (s *pstore) PrivKey(p lpeer.ID) lcrypto.PrivKey {
	k, err := Libp2pPrivKey(s.ps.PrivKey(peer.ID(p)))
	if err != nil {
		return nil
	}
	return k
}

func (s *pstore) AddPrivKey(p lpeer.ID, k lcrypto.PrivKey) error {
	sk, err := P2PNetPrivKey(k)
	if err != nil {
		return err
	}
	return Libp2pError(s.ps.AddPrivKey(peer.ID(p), sk))
}

func (s *pstore) PeersWithKeys() lpeer.IDSlice { return Libp2pPeerIDs(s.ps.PeersWithKeys()) }

func (s *pstore) RemovePeer(p lpeer.ID) { s.ps.RemovePeer(peer.ID(p)) }

// Get returns the value stored under key; a missing one is an error
// matching go-libp2p's peerstore.ErrNotFound (and p2pnet's).
func (s *pstore) Get(p lpeer.ID, key string) (any, error) {
	v, err := s.ps.Get(peer.ID(p), key)
	return v, Libp2pError(err)
}

func (s *pstore) Put(p lpeer.ID, key string, val any) error {
	return Libp2pError(s.ps.Put(peer.ID(p), key, val))
}

func (s *pstore) RecordLatency(p lpeer.ID, d time.Duration) { s.ps.RecordLatency(peer.ID(p), d) }

func (s *pstore) LatencyEWMA(p lpeer.ID) time.Duration { return s.ps.LatencyEWMA(peer.ID(p)) }

func (s *pstore) GetProtocols(p lpeer.ID) ([]lprotocol.ID, error) {
	ids, err := s.ps.GetProtocols(peer.ID(p))
	return Libp2pProtocolIDs(ids), Libp2pError(err)
}

func (s *pstore) AddProtocols(p lpeer.ID, ids ...lprotocol.ID) error {
	return Libp2pError(s.ps.AddProtocols(peer.ID(p), P2PNetProtocolIDs(ids)...))
}

func (s *pstore) SetProtocols(p lpeer.ID, ids ...lprotocol.ID) error {
	return Libp2pError(s.ps.SetProtocols(peer.ID(p), P2PNetProtocolIDs(ids)...))
}

func (s *pstore) RemoveProtocols(p lpeer.ID, ids ...lprotocol.ID) error {
	return Libp2pError(s.ps.RemoveProtocols(peer.ID(p), P2PNetProtocolIDs(ids)...))
}

func (s *pstore) SupportsProtocols(p lpeer.ID, ids ...lprotocol.ID) ([]lprotocol.ID, error) {
	ok, err := s.ps.SupportsProtocols(peer.ID(p), P2PNetProtocolIDs(ids)...)
	return Libp2pProtocolIDs(ok), Libp2pError(err)
}

func (s *pstore) FirstSupportedProtocol(p lpeer.ID, ids ...lprotocol.ID) (lprotocol.ID, error) {
	id, err := s.ps.FirstSupportedProtocol(peer.ID(p), P2PNetProtocolIDs(ids)...)
	return lprotocol.ID(id), Libp2pError(err)
}

func (s *pstore) PeerInfo(p lpeer.ID) lpeer.AddrInfo {
	return Libp2pAddrInfo(s.ps.PeerInfo(peer.ID(p)))
}

func (s *pstore) Peers() lpeer.IDSlice { return Libp2pPeerIDs(s.ps.Peers()) }

func (s *pstore) String() string { return fmt.Sprintf("compat.pstore{%T}", s.ps) }
