package connmgr

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// BlockList is a ConnectionGater that refuses blocked peers, IP addresses
// and subnets, and lets everything else through. Its lists may change at
// any time; connections already open stay open (close them with the
// network's ClosePeer). The zero value blocks nothing and is ready to
// use. It is safe for concurrent use.
//
// An address is judged by its first IP component: for a relayed address
// that is the relay's.
type BlockList struct {
	mu      sync.RWMutex // guards the following
	peers   map[peer.ID]struct{}
	addrs   map[netip.Addr]struct{}
	subnets map[netip.Prefix]struct{}
}

var _ ConnectionGater = (*BlockList)(nil)

// NewBlockList returns an empty BlockList.
func NewBlockList() *BlockList { return &BlockList{} }

// BlockPeer refuses p from now on.
func (b *BlockList) BlockPeer(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.peers == nil {
		b.peers = map[peer.ID]struct{}{}
	}
	b.peers[p] = struct{}{}
}

// UnblockPeer lets p through again.
func (b *BlockList) UnblockPeer(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.peers, p)
}

// BlockedPeers returns the blocked peers, sorted.
func (b *BlockList) BlockedPeers() []peer.ID {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]peer.ID, 0, len(b.peers))
	for p := range b.peers {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// BlockAddr refuses the IP address a from now on; an IPv4-mapped IPv6
// address counts as its IPv4 address.
func (b *BlockList) BlockAddr(a netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.addrs == nil {
		b.addrs = map[netip.Addr]struct{}{}
	}
	b.addrs[a.Unmap()] = struct{}{}
}

// UnblockAddr lets a through again (unless a blocked subnet holds it).
func (b *BlockList) UnblockAddr(a netip.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.addrs, a.Unmap())
}

// BlockedAddrs returns the blocked addresses, sorted.
func (b *BlockList) BlockedAddrs() []netip.Addr {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]netip.Addr, 0, len(b.addrs))
	for a := range b.addrs {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// BlockSubnet refuses every address of subnet from now on.
func (b *BlockList) BlockSubnet(subnet netip.Prefix) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subnets == nil {
		b.subnets = map[netip.Prefix]struct{}{}
	}
	b.subnets[subnet.Masked()] = struct{}{}
}

// UnblockSubnet lets subnet through again.
func (b *BlockList) UnblockSubnet(subnet netip.Prefix) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subnets, subnet.Masked())
}

// BlockedSubnets returns the blocked subnets, sorted.
func (b *BlockList) BlockedSubnets() []netip.Prefix {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]netip.Prefix, 0, len(b.subnets))
	for s := range b.subnets {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	return out
}

func (b *BlockList) peerBlocked(p peer.ID) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.peers[p]
	return ok
}

// addrBlocked reports whether the first IP of a is blocked. An address
// without an IP (a DNS name, say) is not blocked.
func (b *BlockList) addrBlocked(a ma.Multiaddr) bool {
	if len(a) == 0 {
		return false
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		return false
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	addr = addr.Unmap()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, ok := b.addrs[addr]; ok {
		return true
	}
	for s := range b.subnets {
		if s.Contains(addr) {
			return true
		}
	}
	return false
}

// InterceptPeerDial refuses a blocked peer.
func (b *BlockList) InterceptPeerDial(p peer.ID) bool { return !b.peerBlocked(p) }

// InterceptAddrDial refuses a blocked peer and a blocked address.
func (b *BlockList) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return !b.peerBlocked(p) && !b.addrBlocked(a)
}

// InterceptAccept refuses a connection from a blocked address.
func (b *BlockList) InterceptAccept(c network.ConnMultiaddrs) bool {
	return !b.addrBlocked(c.RemoteMultiaddr())
}

// InterceptSecured refuses a blocked peer, and a blocked address (which
// matters for connections the transport accepted without asking
// InterceptAccept).
func (b *BlockList) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return !b.peerBlocked(p) && !b.addrBlocked(c.RemoteMultiaddr())
}

// InterceptUpgraded lets every connection through: the earlier hooks
// decided already.
func (b *BlockList) InterceptUpgraded(network.Conn) (bool, DisconnectReason) { return true, 0 }
