// Package p2pnet is a libp2p node: New builds a Host that listens and
// dials over TCP (secured with Noise or TLS, multiplexed with yamux) and
// QUIC, and serves ping, identify and perf. It is the one entry point most
// users need.
//
//	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
//	if err != nil { ... }
//	defer h.Close()
//	h.SetStreamHandler("/echo/1.0.0", func(s network.Stream) { io.Copy(s, s); s.Close() })
//
// The host sits on top of the stack and may import everything below it.
package p2pnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/proto/holepunch"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/resolver"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/swarm"
	"github.com/p2pnet/p2pnet/transport/quic"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/transport/websocket"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// NegotiationTimeout bounds how long an inbound stream may take to name
// its protocol.
const NegotiationTimeout = 10 * time.Second

// NegotiationFirstByteTimeout bounds how long an inbound stream may stay
// silent: one that has sent nothing this long after it arrived is reset,
// so that streams that never speak hold the transient scope briefly. Once
// a stream has sent a byte, NegotiationTimeout bounds its negotiation,
// counted from its arrival.
const NegotiationFirstByteTimeout = 2 * time.Second

// Host is a libp2p node. It is safe for concurrent use.
type Host struct {
	id    peer.ID
	ps    *peerstore.Memory
	swarm *swarm.Swarm
	cfg   config

	router multistream.Router[network.StreamHandler]

	ownRcmgr *rcmgr.Manager // closed by Close; nil when the user gave one

	forget *forgetter // forgets disconnected peers (forget.go)

	ids  *identify.Service
	ping *ping.Service
	perf *perf.Service

	relay     *relayState        // circuit transport, relay service, reservations (relay.go)
	holePunch *holepunch.Service // DCUtR (holepunch.go); nil when disabled
	autoNAT   *autoNAT           // AutoNAT v2, observed addresses, NAT type (autonat.go); nil when off
	portMap   *portMap           // UPnP IGD / NAT-PMP port mappings (portmap.go); nil without NATPortMap
	cm        *connmgr.Manager   // trims connections (connmgr.go); nil under NoConnectionManager
	events    *hostEvents        // event bus and the host's emitters (events.go)
	metrics   *hostMetrics       // nil unless PrometheusRegisterer (metrics.go)

	closeOnce sync.Once
	closeErr  error
}

// New builds a host and starts listening. See the options for the
// defaults.
func New(opts ...Option) (_ *Host, err error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.priv == nil {
		priv, _, err := ic.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("p2pnet: generating a key: %w", err)
		}
		cfg.priv = priv
	}
	if !cfg.listenSet {
		for _, s := range DefaultListenAddrs {
			cfg.listen = append(cfg.listen, ma.StringCast(s))
		}
	}
	var ownRcmgr *rcmgr.Manager
	defer func() {
		if err != nil && ownRcmgr != nil {
			ownRcmgr.Close()
		}
	}()
	if cfg.rcmgr == nil {
		m, err := rcmgr.New(rcmgr.DefaultLimits())
		if err != nil {
			return nil, fmt.Errorf("p2pnet: resource manager: %w", err)
		}
		ownRcmgr, cfg.rcmgr = m, m
	}
	id, err := peer.IDFromPrivateKey(cfg.priv)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	ps := peerstore.New()
	if err := ps.AddPrivKey(id, cfg.priv); err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}

	muxers := []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}
	muxIDs := []protocol.ID{yamux.ID}
	var secs []sec.Transport
	for _, sid := range cfg.security {
		var st sec.Transport
		switch sid {
		case noise.ID:
			st, err = noise.New(cfg.priv, muxIDs)
		case tls.ID:
			st, err = tls.New(cfg.priv, muxIDs)
		}
		if err != nil {
			return nil, fmt.Errorf("p2pnet: %s: %w", sid, err)
		}
		secs = append(secs, st)
	}
	hm, err := newHostMetrics(cfg.metrics)
	if err != nil {
		return nil, err
	}
	u, err := upgrader.New(upgrader.Config{
		Security:              secs,
		Muxers:                muxers,
		ResourceManager:       cfg.rcmgr,
		InboundUpgradeTimeout: cfg.upgradeTimeout,
		MaxInflightInbound:    handshakeSlots(cfg.rcmgr, cfg.maxInflight),
		MaxInflightPerGroup:   cfg.maxInflightPerAddr,
		ConnectionGater:       cfg.gater,
		Tracer:                hm.handshakeTracer(),
	})
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	var resOpts []resolver.Option
	if cfg.dns != nil {
		resOpts = append(resOpts, resolver.WithDefaultResolver(cfg.dns))
	}
	res, err := resolver.New(resOpts...)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	cfg.relay.serviceOpts = append(cfg.relay.serviceOpts, hm.relayOpts()...)
	swOpts := []swarm.Option{swarm.WithResourceManager(cfg.rcmgr), swarm.WithMultiaddrResolver(res)}
	swOpts = append(swOpts, hm.swarmOpts()...)
	swOpts = append(swOpts, cfg.swarm.opts...) // dial options (swarmopts.go)
	if cfg.ranker != nil {
		swOpts = append(swOpts, swarm.WithDialRanker(cfg.ranker))
	}
	if cfg.gater != nil {
		swOpts = append(swOpts, swarm.WithConnectionGater(cfg.gater))
	}
	sw, err := swarm.New(id, ps, swOpts...)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if err := sw.AddTransport(tcp.New(u, cfg.rcmgr)); err != nil {
		sw.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if err := sw.AddTransport(websocket.New(u, cfg.rcmgr, cfg.ws.opts...)); err != nil {
		sw.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	quicOpts := append(cfg.quicOpts[:len(cfg.quicOpts):len(cfg.quicOpts)], hm.quicOpts()...)
	if cfg.gater != nil {
		quicOpts = append(quicOpts, quic.WithConnectionGater(cfg.gater))
	}
	qt, err := quic.New(cfg.priv, cfg.rcmgr, quicOpts...)
	if err != nil {
		sw.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if err := sw.AddTransport(qt); err != nil {
		qt.Close()
		sw.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if wtt, err := newWebTransport(&cfg, qt); err != nil { // webtransport.go
		sw.Close()
		return nil, err
	} else if err := sw.AddTransport(wtt); err != nil {
		sw.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	h := &Host{id: id, ps: ps, swarm: sw, cfg: cfg, ownRcmgr: ownRcmgr, metrics: hm}
	h.events = newHostEvents(h)
	sw.SetStreamHandler(h.handleStream)
	if h.relay, err = h.newRelay(u, cfg.relay); err != nil {
		sw.Close()
		return nil, err
	}

	// AutoNAT before identify, whose first push reads Addrs, which reads
	// h.autoNAT.
	if err = h.startAutoNAT(cfg.autoNAT, cfg.holePunch.public, autoNATDialerOnly()); err != nil {
		h.Close()
		return nil, err
	}
	h.ids, err = identify.NewService(h, append(hm.identifyOpts(), identify.UserAgent(cfg.userAgent), identify.WithEvents(h.events.identifyEvents()))...)
	if err != nil {
		sw.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	h.ids.Start()
	h.holePunch = h.newHolePunch(cfg.holePunch)
	h.forget = h.startForgetting(cfg.forgetAfter)
	h.ping = ping.NewService(h, hm.pingOpts()...)
	if cfg.perf {
		h.perf = perf.NewService(h, hm.perfOpts()...)
	}

	if err := h.startConnManager(); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.listen(cfg.listen, !cfg.listenSet); err != nil {
		h.Close()
		return nil, err
	}
	if err := h.watchMetrics(); err != nil {
		h.Close()
		return nil, err
	}
	// Reservations dial only now: a TCP dial leaves from a listen port
	// once there is one, so the relay observes (and identify reports,
	// and DCUtR offers) the port a hole punch dials from. Dialed before
	// the listener, the relay connection leaves from an ephemeral port,
	// the NAT maps it to that port, and the peer punches at a port no
	// punch of ours ever opens.
	h.startPortMap(cfg.portMap) // once listening: it maps the listen ports
	h.autoNAT.start()
	if err := h.startRelays(); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// ID returns the host's peer ID.
func (h *Host) ID() peer.ID { return h.id }

// Network returns the host's network (the swarm).
func (h *Host) Network() network.Network { return h.swarm }

// Peerstore returns the host's peerstore.
func (h *Host) Peerstore() peerstore.Peerstore { return h.ps }

// listen listens on addrs. Every address the user gave must work: the
// error names each one that failed. Of the default addresses, those that
// fail are skipped (a machine without IPv6, say) as long as one works.
func (h *Host) listen(addrs []ma.Multiaddr, defaults bool) error {
	var errs []error
	for _, a := range addrs {
		if err := h.swarm.Listen(a); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case defaults && len(errs) < len(addrs):
		for _, err := range errs {
			slog.Debug("default listen address skipped", "err", err)
		}
		return nil
	}
	return fmt.Errorf("p2pnet: %w", errors.Join(errs...))
}

// P2PAddrs returns Addrs with this host's /p2p/ID appended: the
// addresses others can dial.
func (h *Host) P2PAddrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.id, Addrs: h.Addrs()})
	return addrs
}

// Protocols returns the protocols the host serves, sorted.
func (h *Host) Protocols() []protocol.ID { return h.router.Protocols() }

// Identify returns the identify service, which knows what connected
// peers told about themselves.
func (h *Host) Identify() *identify.Service { return h.ids }

// Ping returns the ping service: its Ping and PingOnce measure round
// trips to a peer (and count them in the metrics, PrometheusRegisterer).
func (h *Host) Ping() *ping.Service { return h.ping }

// Connect makes sure the host is connected to pi.ID, dialing pi.Addrs (and
// any addresses the peerstore already knows) when it is not.
func (h *Host) Connect(ctx context.Context, pi peer.AddrInfo) error {
	if pi.ID == h.id {
		return fmt.Errorf("p2pnet: connect to %s: that is this host", pi.ID)
	}
	h.ps.AddAddrs(pi.ID, pi.Addrs, peerstore.TempAddrTTL)
	if h.swarm.Connectedness(pi.ID) == network.Connected {
		return nil
	}
	_, err := h.swarm.DialPeer(ctx, pi.ID)
	return err
}

// SetStreamHandler serves protocol pid with handler: streams the remote
// opens for pid reach handler with their protocol negotiated. The
// handler owns the stream and must Close or Reset it. A nil handler is a
// programming error: SetStreamHandler panics at once, as
// net/http.Handle does, rather than when a peer opens a stream.
func (h *Host) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if handler == nil {
		panic("p2pnet: SetStreamHandler(" + string(pid) + ") with a nil handler")
	}
	h.router.AddHandler(pid, handler)
	h.protocolsChanged()
}

// SetStreamHandlerMatch serves every protocol that match accepts with
// handler; pid names the registration (for RemoveStreamHandler and for
// what identify announces). A nil match or handler makes it panic at
// once, like SetStreamHandler.
func (h *Host) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	if handler == nil || match == nil {
		panic("p2pnet: SetStreamHandlerMatch(" + string(pid) + ") with a nil handler or match function")
	}
	h.router.AddHandlerMatch(pid, match, handler)
	h.protocolsChanged()
}

// RemoveStreamHandler stops serving pid.
func (h *Host) RemoveStreamHandler(pid protocol.ID) {
	h.router.RemoveHandler(pid)
	h.protocolsChanged()
}

// protocolsChanged tells connected peers, once identify runs.
func (h *Host) protocolsChanged() {
	if h.ids != nil {
		h.ids.Push()
	}
	if h.events != nil {
		h.events.protocolsChanged()
	}
}

// handleStream negotiates an inbound stream's protocol and hands it to
// the protocol's handler.
func (h *Host) handleStream(s network.Stream) {
	n := watchNegotiation(s, time.Now()) // NegotiationFirstByteTimeout, NegotiationTimeout
	pid, handler, err := h.router.Negotiate(n)
	n.finish()
	if err != nil {
		slog.Debug("inbound stream negotiation failed", "peer", s.Conn().RemotePeer(), "err", err)
		s.Reset()
		return
	}
	if err := s.SetProtocol(pid); err != nil {
		slog.Debug("inbound stream refused", "peer", s.Conn().RemotePeer(), "protocol", pid, "err", err)
		refuseStream(s, err)
		return
	}
	handler(s)
}

// codeResetter is a stream whose reset can carry an error code, as the
// swarm's streams over yamux do.
type codeResetter interface {
	ResetWithError(network.StreamErrorCode) error
}

// refuseStream resets s, whose protocol the resource manager refused with
// err, telling the remote side it was refused for resources when that is
// why and the multiplexer can say so (go-libp2p's host does the same).
func refuseStream(s network.Stream, err error) {
	if r, ok := s.(codeResetter); ok && errors.Is(err, network.ErrResourceLimitExceeded) {
		r.ResetWithError(network.StreamResourceLimitExceeded)
		return
	}
	s.Reset()
}

// Close stops the services, closes every connection and listener, and
// returns when everything the host started has ended.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.portMap.close() // nil-safe; first, so its last changes meet a working host
		h.autoNAT.close() // nil-safe
		if h.holePunch != nil {
			h.holePunch.Close()
		}
		h.relay.close()
		h.stopForgetting(h.forget)
		if h.ids != nil {
			h.ids.Close()
		}
		if h.ping != nil {
			h.ping.Close()
		}
		if h.perf != nil {
			h.perf.Close()
		}
		h.closeErr = h.swarm.Close()
		h.stopConnManager()
		h.metrics.close()
		h.events.close()
		h.ps.Close()
		if h.ownRcmgr != nil {
			h.ownRcmgr.Close()
		}
	})
	return h.closeErr
}

// handshakeSlots is how many inbound handshakes a TCP listener runs at
// once: configured if set, else upgrader.DefaultMaxInflightInbound, but
// never more than an rcmgr.Manager's transient scope admits inbound. A
// pool larger than that scope lets flooding handshakes fill the scope
// while slots are still free, and the pool's fair eviction, which acts on
// a full pool, never starts (machines with less than about 16 GiB get a
// transient scope below 64).
func handshakeSlots(rm network.ResourceManager, configured int) int {
	if configured > 0 {
		return configured
	}
	m, ok := rm.(*rcmgr.Manager)
	if !ok {
		return 0 // the upgrader's default
	}
	for _, sc := range m.Snapshot().Scopes {
		if sc.Kind == rcmgr.KindTransient && sc.Limit != nil {
			if n := sc.Limit.ConnsInbound; n > 0 && n < upgrader.DefaultMaxInflightInbound {
				return n
			}
		}
	}
	return 0
}
