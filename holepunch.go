package p2pnet

import (
	"fmt"
	"net/netip"

	"github.com/p2pnet/p2pnet/proto/holepunch"
)

// holePunchConfig is what the hole-punching options set.
type holePunchConfig struct {
	disabled bool
	public   []netip.Prefix
}

// DisableHolePunching turns DCUtR off. Default: on, as in go-libp2p's
// EnableHolePunching hosts: a host that accepts a relayed connection
// tries to upgrade it to a direct one, and answers peers that try.
func DisableHolePunching() Option {
	return func(c *config) error { c.holePunch.disabled = true; return nil }
}

// PublicCIDRs adds IP ranges whose addresses count as public for hole
// punching (beyond global unicast outside the private, shared and
// documentation ranges), so a namespace lab can use documentation
// ranges. Given more than once, the ranges add up. Default: none.
func PublicCIDRs(cidrs ...string) Option {
	return func(c *config) error {
		for _, s := range cidrs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return fmt.Errorf("p2pnet: PublicCIDRs: %w", err)
			}
			c.holePunch.public = append(c.holePunch.public, p.Masked())
		}
		return nil
	}
}

// newHolePunch starts DCUtR on h unless cfg disables it (nil then). New
// calls it after identify has started.
func (h *Host) newHolePunch(cfg holePunchConfig) *holepunch.Service {
	if cfg.disabled {
		return nil
	}
	return holepunch.New(h, holepunch.ObservedAddrs(h.ids.ObservedAddrs), holepunch.PublicPrefixes(cfg.public...),
		holepunch.IdentifyWait(h.ids.IdentifyWait))
}

// HolePunch returns the host's DCUtR service (its counters: Stats), or
// nil when DisableHolePunching was given.
func (h *Host) HolePunch() *holepunch.Service { return h.holePunch }
