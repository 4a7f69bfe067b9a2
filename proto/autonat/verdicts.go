package autonat

import (
	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrReachability returns the verdict on addr: Public once enough
// checks reached it, Private once enough failed, Unknown before either
// (or for an address the client does not check).
func (c *Client) AddrReachability(addr ma.Multiaddr) network.Reachability {
	return c.tracker.AddrReachability(addr)
}
