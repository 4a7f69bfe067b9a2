package swarm

import (
	"errors"
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
)

// The defaults of the options, go-libp2p's values.
const (
	// DefaultDialTimeout bounds one dial of one public address.
	DefaultDialTimeout = 15 * time.Second
	// DefaultDialTimeoutLocal bounds one dial of one private address
	// (loopback, RFC 1918, link-local...), which answers quickly or not
	// at all.
	DefaultDialTimeoutLocal = 5 * time.Second
	// DefaultMaxDialsPerPeer is how many addresses of one peer are dialed
	// at the same time.
	DefaultMaxDialsPerPeer = 8
	// DefaultMaxFDDials is how many dials that use a file descriptor (TCP
	// and Unix sockets) run at the same time across all peers.
	DefaultMaxFDDials = 160
	// DefaultBackoffBase is the backoff after an address's first failure.
	DefaultBackoffBase = 5 * time.Second
	// DefaultBackoffCoef scales the square of the number of earlier
	// failures that is added to DefaultBackoffBase.
	DefaultBackoffCoef = time.Second
	// DefaultBackoffMax caps the backoff.
	DefaultBackoffMax = 5 * time.Minute
	// DefaultNewStreamTimeout bounds opening a stream when the context has
	// no deadline.
	DefaultNewStreamTimeout = 15 * time.Second
)

// errBadOption is wrapped by the errors of invalid option values.
var errBadOption = errors.New("swarm: invalid option")

// config holds the settings that options change.
type config struct {
	rcmgr            network.ResourceManager
	ranker           network.DialRanker
	resolver         network.MultiaddrDNSResolver
	dialTimeout      time.Duration
	dialTimeoutLocal time.Duration
	dialPeerTimeout  time.Duration // 0: network.DialPeerTimeout
	maxDialsPerPeer  int
	maxFDDials       int
	backoffBase      time.Duration
	backoffCoef      time.Duration
	backoffMax       time.Duration
	gater            connmgr.ConnectionGater
	tracer           Tracer // nil: none
	// blackHoles is state, not a setting: defaultConfig makes a fresh
	// detector for each swarm, and the black-hole options replace its
	// filters.
	blackHoles blackHoleDetector
}

func defaultConfig() config {
	return config{
		rcmgr:            &network.NullResourceManager{},
		ranker:           DefaultDialRanker,
		dialTimeout:      DefaultDialTimeout,
		dialTimeoutLocal: DefaultDialTimeoutLocal,
		maxDialsPerPeer:  DefaultMaxDialsPerPeer,
		maxFDDials:       DefaultMaxFDDials,
		backoffBase:      DefaultBackoffBase,
		backoffCoef:      DefaultBackoffCoef,
		backoffMax:       DefaultBackoffMax,
		blackHoles: blackHoleDetector{
			udp:  newBlackHoleFilter("UDP", DefaultBlackHoleWindow, DefaultBlackHoleMinSuccesses),
			ipv6: newBlackHoleFilter("IPv6", DefaultBlackHoleWindow, DefaultBlackHoleMinSuccesses),
		},
	}
}

// Option configures a Swarm.
type Option func(*config) error

// WithResourceManager makes the swarm account streams in rm. Default:
// network.NullResourceManager, which limits nothing. The swarm does not
// close rm.
func WithResourceManager(rm network.ResourceManager) Option {
	return func(c *config) error {
		if rm == nil {
			return errors.Join(errBadOption, errors.New("nil resource manager"))
		}
		c.rcmgr = rm
		return nil
	}
}

// WithConnectionGater makes the swarm ask g before dialing a peer
// (InterceptPeerDial) and each of its addresses (InterceptAddrDial), and
// before adding an upgraded connection, inbound or outbound
// (InterceptUpgraded). Refusals are *connmgr.GatedError values, in the
// DialError of a dial. Default: none. The upgrader and transports ask the
// other hooks.
func WithConnectionGater(g connmgr.ConnectionGater) Option {
	return func(c *config) error {
		c.gater = g
		return nil
	}
}

// WithDialRanker makes the swarm schedule dials with r. Default:
// DefaultDialRanker. Dials made under network.WithSimultaneousConnect
// always use NoDelayDialRanker.
func WithDialRanker(r network.DialRanker) Option {
	return func(c *config) error {
		if r == nil {
			return errors.Join(errBadOption, errors.New("nil dial ranker"))
		}
		c.ranker = r
		return nil
	}
}

// WithDialTimeout sets how long one dial of one address may take: public
// for public addresses (default 15 s), local for private ones (default
// 5 s). The whole DialPeer call has its own limit (WithDialPeerTimeout).
func WithDialTimeout(public, local time.Duration) Option {
	return func(c *config) error {
		if public <= 0 || local <= 0 {
			return errors.Join(errBadOption, errors.New("dial timeouts must be positive"))
		}
		c.dialTimeout, c.dialTimeoutLocal = public, local
		return nil
	}
}

// WithDialPeerTimeout sets how long one DialPeer call (and NewStream's
// wait for a direct connection) may take when its context sets no
// timeout with network.WithDialPeerTimeout. Default:
// network.DialPeerTimeout (60 s).
func WithDialPeerTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.Join(errBadOption, errors.New("DialPeer timeout must be positive"))
		}
		c.dialPeerTimeout = d
		return nil
	}
}

// WithBackoff sets the dial backoff: after the n-th consecutive failure of
// an address (n counted from 0) it is not dialed again for
// min(base + coef*n², max). Defaults: 5 s, 1 s and 5 min.
func WithBackoff(base, coef, max time.Duration) Option {
	return func(c *config) error {
		if base < 0 || coef < 0 || max < base {
			return errors.Join(errBadOption, errors.New("backoff needs 0 <= base <= max and coef >= 0"))
		}
		c.backoffBase, c.backoffCoef, c.backoffMax = base, coef, max
		return nil
	}
}

// WithMaxDials sets how many addresses of one peer are dialed at once
// (default 8) and how many dials using a file descriptor run at once in
// all (default 160).
func WithMaxDials(perPeer, fd int) Option {
	return func(c *config) error {
		if perPeer <= 0 || fd <= 0 {
			return errors.Join(errBadOption, errors.New("dial limits must be positive"))
		}
		c.maxDialsPerPeer, c.maxFDDials = perPeer, fd
		return nil
	}
}

// WithMultiaddrResolver makes the swarm resolve /dnsaddr, /dns, /dns4 and
// /dns6 addresses with r before dialing. Default: none, so such addresses
// are dialed only by a transport that can dial them as they are.
func WithMultiaddrResolver(r network.MultiaddrDNSResolver) Option {
	return func(c *config) error {
		c.resolver = r
		return nil
	}
}

// WithUDPBlackHoleConfig configures black-hole detection for addresses
// over UDP (QUIC, WebTransport, WebRTC): once fewer than minSuccesses of
// the last n dials to public UDP addresses succeeded, such addresses are
// not dialed, except for every n-th dial request, which probes; a success
// lifts the block. Disabled, every UDP address is dialed. Defaults:
// enabled, DefaultBlackHoleWindow, DefaultBlackHoleMinSuccesses. Needs
// 1 <= minSuccesses <= n when enabled.
func WithUDPBlackHoleConfig(enabled bool, n, minSuccesses int) Option {
	return func(c *config) error {
		f, err := blackHoleOption("UDP", enabled, n, minSuccesses)
		if err != nil {
			return err
		}
		c.blackHoles.udp = f
		return nil
	}
}

// WithIPv6BlackHoleConfig is WithUDPBlackHoleConfig for addresses over
// IPv6. Defaults: enabled, DefaultBlackHoleWindow,
// DefaultBlackHoleMinSuccesses.
func WithIPv6BlackHoleConfig(enabled bool, n, minSuccesses int) Option {
	return func(c *config) error {
		f, err := blackHoleOption("IPv6", enabled, n, minSuccesses)
		if err != nil {
			return err
		}
		c.blackHoles.ipv6 = f
		return nil
	}
}

// blackHoleOption returns the filter the black-hole options configure,
// nil when disabled.
func blackHoleOption(name string, enabled bool, n, minSuccesses int) (*blackHoleFilter, error) {
	if !enabled {
		return nil, nil
	}
	if n < 1 || minSuccesses < 1 || minSuccesses > n {
		return nil, errors.Join(errBadOption, fmt.Errorf("%s black hole: need 1 <= minSuccesses (%d) <= n (%d)", name, minSuccesses, n))
	}
	return newBlackHoleFilter(name, n, minSuccesses), nil
}
