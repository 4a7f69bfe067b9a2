package p2pnet

import (
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/resolver"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
)

// Option configures a Host. Each option documents its default.
type Option func(*config) error

type config struct {
	priv      ic.PrivKey
	listen    []ma.Multiaddr
	listenSet bool
	security  []protocol.ID
	rcmgr     network.ResourceManager
	ranker    network.DialRanker
	userAgent string
	dns       resolver.BasicResolver

	upgradeTimeout     time.Duration
	maxInflight        int
	maxInflightPerAddr int

	perf        bool
	forgetAfter time.Duration
	quicOpts    []quic.Option
	relay       relayConfig             // EnableRelayService, StaticRelays (relay.go)
	holePunch   holePunchConfig         // DisableHolePunching, PublicCIDRs (holepunch.go)
	connMgr     connMgrConfig           // ConnectionManager, NoConnectionManager (connmgr.go)
	gater       connmgr.ConnectionGater // ConnectionGater (connmgr.go)
	swarm       swarmConfig             // DialPeerTimeout, DialTimeout, DialBackoff, black holes (swarmopts.go)
	autoNAT     autoNATConfig           // EnableAutoNATService, DisableAutoNAT (autonat.go)
	portMap     portMapConfig           // NATPortMap (portmap.go)
	metrics     metricsConfig           // PrometheusRegisterer (metrics.go)
	ws          wsConfig                // WebSocketOptions, WebSocketTLS (websocket.go)
	wt          wtConfig                // WebTransportOptions (webtransport.go)
}

// DefaultUserAgent is what identify tells peers unless UserAgent says
// otherwise.
const DefaultUserAgent = "p2pnet/0.1.0"

// DefaultListenAddrs are the addresses a Host listens on by default:
// every interface, IPv4 and IPv6, TCP and QUIC, on ports the system
// chooses.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0", "/ip6/::/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1", "/ip6/::/udp/0/quic-v1",
}

func defaultConfig() config {
	return config{
		security:    []protocol.ID{noise.ID, tls.ID},
		userAgent:   DefaultUserAgent,
		forgetAfter: DefaultForgetPeersAfter,
	}
}

// Identity sets the host's private key. Default: a fresh Ed25519 key.
func Identity(priv ic.PrivKey) Option {
	return func(c *config) error {
		if priv == nil {
			return fmt.Errorf("p2pnet: Identity: nil key")
		}
		c.priv = priv
		return nil
	}
}

// ListenAddrs adds addresses to listen on; given more than once, the
// addresses add up. Without it the host listens on DefaultListenAddrs,
// skipping those that fail (a machine without IPv6, say); with it, New
// fails if any given address fails, naming each. ListenAddrs() with no
// address listens nowhere: the host only dials.
func ListenAddrs(addrs ...ma.Multiaddr) Option {
	return func(c *config) error {
		c.listen = append(c.listen, addrs...)
		c.listenSet = true
		return nil
	}
}

// ListenAddrStrings is ListenAddrs with addresses in text form.
func ListenAddrStrings(addrs ...string) Option {
	return func(c *config) error {
		for _, s := range addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("p2pnet: listen address %q: %w", s, err)
			}
			c.listen = append(c.listen, a)
		}
		c.listenSet = true
		return nil
	}
}

// Security sets the security protocols and their order of preference, by
// protocol ID: noise.ID ("/noise") and tls.ID ("/tls/1.0.0"). Default:
// Noise, then TLS. There is no plaintext option.
func Security(ids ...protocol.ID) Option {
	return func(c *config) error {
		if len(ids) == 0 {
			return fmt.Errorf("p2pnet: Security: at least one protocol is needed")
		}
		for _, id := range ids {
			if id != noise.ID && id != tls.ID {
				return fmt.Errorf("p2pnet: Security: unknown protocol %q (want %q or %q)", id, noise.ID, tls.ID)
			}
		}
		c.security = append([]protocol.ID(nil), ids...)
		return nil
	}
}

// ResourceManager sets the resource manager. Default: an rcmgr.Manager
// with rcmgr.DefaultLimits(), which scale with the machine's memory and
// file-descriptor limit. Pass &network.NullResourceManager{} to account
// for nothing. A manager given here is not closed by Host.Close.
func ResourceManager(rm network.ResourceManager) Option {
	return func(c *config) error {
		c.rcmgr = rm
		return nil
	}
}

// DialRanker sets how dials of a peer's addresses are scheduled.
// Default: swarm.DefaultDialRanker.
func DialRanker(r network.DialRanker) Option {
	return func(c *config) error {
		c.ranker = r
		return nil
	}
}

// DNSResolver sets the resolver of /dns, /dns4, /dns6 and /dnsaddr
// addresses. Default: net.DefaultResolver.
func DNSResolver(r resolver.BasicResolver) Option {
	return func(c *config) error {
		if r == nil {
			return fmt.Errorf("p2pnet: DNSResolver: nil resolver")
		}
		c.dns = r
		return nil
	}
}

// InboundHandshakes bounds inbound connections that have not finished
// their security handshake: each may take at most timeout, and at most
// maxInflight run at once on each TCP listener. The slots are shared
// fairly among source addresses (see InboundHandshakesPerAddress): when
// they are all taken, a connection from a less represented address
// evicts the oldest handshake of the most represented one, and any
// other is closed at once; none waits. Default:
// upgrader.DefaultInboundUpgradeTimeout (15 s) and
// upgrader.DefaultMaxInflightInbound (64). A shorter timeout frees the
// slots sooner when peers connect and stay silent; zero keeps a default.
func InboundHandshakes(timeout time.Duration, maxInflight int) Option {
	return func(c *config) error {
		if timeout < 0 || maxInflight < 0 {
			return fmt.Errorf("p2pnet: InboundHandshakes: negative timeout or limit")
		}
		c.upgradeTimeout, c.maxInflight = timeout, maxInflight
		return nil
	}
}

// InboundHandshakesPerAddress caps the inbound handshakes in progress
// from one source address (an IPv4 address, or an IPv6 /56) on each TCP
// listener at n: a connection beyond it is closed at once, before its
// handshake. Handshakes evicted to make room for other addresses count
// until their timeout would have run out. Default: 1/8 of the slots of
// InboundHandshakes, at least 1: 8 of the default 64. Zero keeps the
// default; more than the slots means all of them.
func InboundHandshakesPerAddress(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("p2pnet: InboundHandshakesPerAddress: negative limit")
		}
		c.maxInflightPerAddr = n
		return nil
	}
}

// UserAgent sets the agent version identify announces. Default:
// DefaultUserAgent.
func UserAgent(ua string) Option {
	return func(c *config) error {
		c.userAgent = ua
		return nil
	}
}

// EnablePerf serves the perf protocol (/perf/1.0.0), which lets any peer
// make the host send and receive as much data as it asks for. Default:
// off, as the perf spec advises for public nodes; `p2pnet listen` turns
// it on unless given --no-perf.
func EnablePerf() Option {
	return func(c *config) error {
		c.perf = true
		return nil
	}
}

// ForgetPeersAfter sets how long after a peer's last connection closes
// the host forgets the peer: its keys, protocols, metadata and latency
// leave the peerstore (its addresses expire by their own TTLs), so that
// peers that come and go do not grow the host's memory. A peer that
// connects again in time is kept. Default: DefaultForgetPeersAfter, one
// minute, as in go-libp2p. Zero forgets at once; a negative duration is
// an error.
func ForgetPeersAfter(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("p2pnet: ForgetPeersAfter: negative duration %v", d)
		}
		c.forgetAfter = d
		return nil
	}
}

// QUICHandshakes bounds the QUIC transport's inbound handshakes in
// progress, which hold nothing in the resource manager: while
// retryThreshold of them come from addresses nobody validated, new clients
// must first prove their address with a Retry (0: always); at most
// maxHandshakes run at once, and further clients are refused with
// CONNECTION_REFUSED. Default: quic.DefaultRetryThreshold (8) and
// quic.DefaultMaxHandshakes (64).
func QUICHandshakes(retryThreshold, maxHandshakes int) Option {
	return func(c *config) error {
		c.quicOpts = append(c.quicOpts, quic.WithRetryThreshold(retryThreshold), quic.WithMaxHandshakes(maxHandshakes))
		return nil
	}
}
