package p2pnet

import (
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/swarm"
)

// swarmConfig is what the dial options set: swarm options, applied after
// the host's own (resource manager, resolver, ranker, gater).
type swarmConfig struct {
	opts []swarm.Option
}

// add appends o; the options check their arguments first, so that New
// names the option at fault.
func (c *swarmConfig) add(o swarm.Option) { c.opts = append(c.opts, o) }

// DialPeerTimeout bounds each dial of a peer as a whole (Connect, and
// NewStream when it dials or waits for a direct connection), over all of
// the peer's addresses, when the context sets no timeout with
// network.WithDialPeerTimeout. Default: network.DialPeerTimeout (60 s).
// The duration must be positive.
func DialPeerTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("p2pnet: DialPeerTimeout: %v is not positive", d)
		}
		c.swarm.add(swarm.WithDialPeerTimeout(d))
		return nil
	}
}

// DialTimeout bounds one dial of one address, its handshakes included:
// public for public addresses, local for private ones (loopback,
// RFC 1918, link-local...), which answer quickly or not at all. Default:
// swarm.DefaultDialTimeout (15 s) and swarm.DefaultDialTimeoutLocal
// (5 s). Both must be positive; DialPeerTimeout still bounds the whole
// dial.
func DialTimeout(public, local time.Duration) Option {
	return func(c *config) error {
		if public <= 0 || local <= 0 {
			return fmt.Errorf("p2pnet: DialTimeout: timeouts %v and %v must be positive", public, local)
		}
		c.swarm.add(swarm.WithDialTimeout(public, local))
		return nil
	}
}

// DialBackoff sets how long an address that failed is left alone: after
// its n-th consecutive failure (n counted from 0) it is not dialed again
// for min(base + coef*n², max), unless a dial forces it
// (network.WithForceDirectDial). Default: swarm.DefaultBackoffBase
// (5 s), swarm.DefaultBackoffCoef (1 s) and swarm.DefaultBackoffMax
// (5 min). All zero turns backoff off. Needs 0 <= base <= max and
// coef >= 0.
func DialBackoff(base, coef, max time.Duration) Option {
	return func(c *config) error {
		if base < 0 || coef < 0 || max < base {
			return fmt.Errorf("p2pnet: DialBackoff: need 0 <= base (%v) <= max (%v) and coef (%v) >= 0", base, max, coef)
		}
		c.swarm.add(swarm.WithBackoff(base, coef, max))
		return nil
	}
}

// UDPBlackHoleDetection configures the detection of a network that drops
// UDP: once fewer than minSuccesses of the last window dials to public
// UDP addresses (QUIC) succeeded, such addresses are not dialed, except
// for every window-th dial, which probes; a success lifts the block.
// Disabled, every UDP address is dialed; window and minSuccesses are
// then ignored. Default: enabled, swarm.DefaultBlackHoleWindow (100) and
// swarm.DefaultBlackHoleMinSuccesses (5). Enabled, it needs
// 1 <= minSuccesses <= window. Host.Network's swarm.Swarm reports the
// state (BlackHoleStatus).
func UDPBlackHoleDetection(enabled bool, window, minSuccesses int) Option {
	return func(c *config) error {
		if err := checkBlackHole(enabled, window, minSuccesses); err != nil {
			return fmt.Errorf("p2pnet: UDPBlackHoleDetection: %w", err)
		}
		c.swarm.add(swarm.WithUDPBlackHoleConfig(enabled, window, minSuccesses))
		return nil
	}
}

// IPv6BlackHoleDetection is UDPBlackHoleDetection for public IPv6
// addresses, which a machine without an IPv6 route cannot reach.
// Default: enabled, swarm.DefaultBlackHoleWindow (100) and
// swarm.DefaultBlackHoleMinSuccesses (5).
func IPv6BlackHoleDetection(enabled bool, window, minSuccesses int) Option {
	return func(c *config) error {
		if err := checkBlackHole(enabled, window, minSuccesses); err != nil {
			return fmt.Errorf("p2pnet: IPv6BlackHoleDetection: %w", err)
		}
		c.swarm.add(swarm.WithIPv6BlackHoleConfig(enabled, window, minSuccesses))
		return nil
	}
}

// checkBlackHole checks the arguments of the black-hole options.
func checkBlackHole(enabled bool, window, minSuccesses int) error {
	if enabled && (window < 1 || minSuccesses < 1 || minSuccesses > window) {
		return fmt.Errorf("need 1 <= minSuccesses (%d) <= window (%d)", minSuccesses, window)
	}
	return nil
}
