package identify

import (
	"fmt"
	"slices"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// consume stores what the peer of c told in m. An identify answer is the
// whole truth: its protocols and addresses replace what we knew. A push
// updates only the fields it carries, as the spec asks ("missing fields
// should be ignored"); a push without protocols keeps the old ones. A
// message whose public key is not the peer's is ignored entirely.
func (s *Service) consume(c network.Conn, m *message, isPush bool) (err error) {
	p := c.RemotePeer()
	ps := s.h.Peerstore()
	full := !isPush
	var oldProtos []protocol.ID
	protosSet := false
	defer func() { // after the unlock below
		if err == nil {
			s.report(c, m, isPush, protosSet, oldProtos)
		}
	}()

	var key ic.PubKey
	if m.has(hasPublicKey) {
		k, err := ic.UnmarshalPublicKey(m.publicKey)
		if err != nil {
			return fmt.Errorf("%w from %s: %w", ErrInvalidKey, p, err)
		}
		if !p.MatchesPublicKey(k) {
			id, _ := peer.IDFromPublicKey(k)
			return fmt.Errorf("%w: %s sent the key of %s", ErrKeyMismatch, p, id)
		}
		key = k
	}

	if key != nil {
		if err := ps.AddPubKey(p, key); err != nil {
			return fmt.Errorf("identify: storing the key of %s: %w", p, err)
		}
	}
	if full || m.has(hasProtocols) {
		if s.cfg.events.ProtocolsUpdated != nil {
			oldProtos, _ = ps.GetProtocols(p)
		}
		protosSet = true
		if err := ps.SetProtocols(p, m.protocols...); err != nil {
			return fmt.Errorf("identify: storing the protocols of %s: %w", p, err)
		}
	}
	if full || m.has(hasListenAddrs) {
		s.setAddrs(c, filterAddrs(m.listenAddrs, c.RemoteMultiaddr()))
	}
	if full || m.has(hasProtocolVersion) {
		ps.Put(p, ProtocolVersionKey, m.protocolVersion)
	}
	if full || m.has(hasAgentVersion) {
		ps.Put(p, AgentVersionKey, m.agentVersion)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entryLocked(c); e != nil {
		if m.has(hasObservedAddr) {
			e.observed = withoutPeer(m.observedAddr)
		}
		if full || m.has(hasProtocols) {
			e.push = pushUnsupported
			for _, id := range m.protocols {
				if id == IDPush {
					e.push = pushSupported
					break
				}
			}
		}
	}
	return nil
}

// report calls the Events callbacks for a message consume stored.
func (s *Service) report(c network.Conn, m *message, isPush, protosSet bool, oldProtos []protocol.ID) {
	ev := s.cfg.events
	if f := ev.ProtocolsUpdated; f != nil && protosSet && (isPush || len(oldProtos) > 0) {
		if added, removed := protocolDiff(oldProtos, m.protocols); len(added)+len(removed) > 0 {
			f(c.RemotePeer(), added, removed)
		}
	}
	if f := ev.Identified; f != nil && !isPush {
		r := Result{
			ListenAddrs:     slices.Clone(m.listenAddrs),
			Protocols:       slices.Clone(m.protocols),
			ProtocolVersion: m.protocolVersion,
			AgentVersion:    m.agentVersion,
		}
		if m.has(hasObservedAddr) {
			r.ObservedAddr = withoutPeer(m.observedAddr)
		}
		f(c, r)
	}
}

// setAddrs makes addrs the addresses of the peer of c: with
// ConnectedAddrTTL while we are connected to it (and
// RecentlyConnectedAddrTTL otherwise). The addresses an earlier identify
// gave are replaced; addresses stored with other TTLs stay, and keep
// their TTL if longer.
func (s *Service) setAddrs(c network.Conn, addrs []ma.Multiaddr) {
	p := c.RemotePeer()
	ps := s.h.Peerstore()
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	ttl := peerstore.RecentlyConnectedAddrTTL
	if s.connected(p) {
		ttl = peerstore.ConnectedAddrTTL
	}
	// Mark the addresses an earlier identify gave, add the new ones
	// (which unmarks those among them: their new expiry is later), and
	// drop the marked ones that remain.
	ps.UpdateAddrs(p, peerstore.ConnectedAddrTTL, markTTL)
	ps.UpdateAddrs(p, peerstore.RecentlyConnectedAddrTTL, markTTL)
	ps.AddAddrs(p, addrs, ttl)
	ps.UpdateAddrs(p, markTTL, 0)
}

// markTTL marks, for an instant, addresses about to be replaced. No one
// else uses this TTL, so only those are dropped.
const markTTL = peerstore.TempAddrTTL - 1

// connected reports whether we have a connection to p that the service
// knows of.
func (s *Service) connected(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[p] != nil
}

// disconnected forgets c. When it was the last connection to its peer,
// the peer's identified addresses get RecentlyConnectedAddrTTL instead of
// ConnectedAddrTTL, so they expire in time.
func (s *Service) disconnected(c network.Conn) {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	s.mu.Lock()
	s.forgetLocked(c)
	s.mu.Unlock()
	p := c.RemotePeer()
	if s.connected(p) {
		return
	}
	s.h.Peerstore().UpdateAddrs(p, peerstore.ConnectedAddrTTL, peerstore.RecentlyConnectedAddrTTL)
}

// filterAddrs drops the addresses a peer at remote cannot mean for us: a
// peer reached over a private network offers its loopback addresses in
// vain, and one reached over the internet its private ones too. Over
// loopback, or an address of no known scope, everything is kept.
func filterAddrs(addrs []ma.Multiaddr, remote ma.Multiaddr) []ma.Multiaddr {
	var keep func(ma.Multiaddr) bool
	switch {
	case len(remote) == 0 || manet.IsIPLoopback(remote):
		return addrs
	case manet.IsPrivateAddr(remote):
		keep = func(a ma.Multiaddr) bool { return !manet.IsIPLoopback(a) }
	case manet.IsPublicAddr(remote):
		keep = manet.IsPublicAddr
	default:
		return addrs
	}
	out := addrs[:0:0]
	for _, a := range addrs {
		if keep(a) {
			out = append(out, a)
		}
	}
	return out
}

// withoutPeer strips trailing /p2p/ID components from an observed
// address: a peer may append our ID, but what we learn from it is where
// we can be reached, and our ID is added when we announce it. An address
// that is only /p2p/ components tells nothing and becomes nil.
func withoutPeer(a ma.Multiaddr) ma.Multiaddr {
	for len(a) > 0 && a[len(a)-1].Code() == ma.P_P2P {
		a = a[:len(a)-1]
	}
	if len(a) == 0 {
		return nil
	}
	return a
}
