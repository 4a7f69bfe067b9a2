package peer

import ma "github.com/multiformats/go-multiaddr"

// AddrInfo is a peer and the addresses it can be reached at.
type AddrInfo struct {
	ID    ID
	Addrs []ma.Multiaddr
}
