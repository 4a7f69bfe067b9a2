package p2pnet

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/nat"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/autonat"

	ma "github.com/multiformats/go-multiaddr"
)

// autoNATConfig is what the AutoNAT options set.
type autoNATConfig struct {
	service    bool // EnableAutoNATService: serve AutoNAT v2
	noClient   bool // DisableAutoNAT: do not check our addresses
	dialerOnly bool // the server's dial-back host: neither
}

// autoNAT is the host's AutoNAT machinery: the observed addresses that
// identify reports, the v2 client that checks our addresses and derives
// our reachability, the v2 server with its dial-back host, and the
// emitters of EvtLocalReachabilityChanged and EvtNATDeviceTypeChanged.
type autoNAT struct {
	h        *Host
	observed *nat.ObservedAddrs
	client   *autonat.Client // nil under DisableAutoNAT
	server   *autonat.Server // nil unless EnableAutoNATService
	dialer   *Host           // the server's dial-back host

	sub          *event.Subscription
	reach, natEm *event.Emitter
	notif        *network.NotifyBundle
	done         chan struct{}

	mu      sync.Mutex // guards the following
	natType map[network.NATTransportProtocol]network.NATDeviceType
}

// startAutoNAT starts what cfg asks for on h; public adds the ranges
// that count as public (PublicCIDRs, which AutoNAT honours on both
// sides); dialerOpts are added to the options of the server's dial-back
// host (New passes the one that marks it dialerOnly, so that it runs no
// AutoNAT of its own). It returns nil when cfg asks for nothing.
func (h *Host) startAutoNAT(cfg autoNATConfig, public []netip.Prefix, dialerOpts ...Option) (*autoNAT, error) {
	if cfg.dialerOnly || (cfg.noClient && !cfg.service) {
		return nil, nil
	}
	bus := h.EventBus()
	a := &autoNAT{h: h, observed: nat.NewObservedAddrs(), done: make(chan struct{}),
		natType: map[network.NATTransportProtocol]network.NATDeviceType{}}
	var err error
	if a.reach, err = bus.Emitter(new(event.EvtLocalReachabilityChanged), event.Stateful()); err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if a.natEm, err = bus.Emitter(new(event.EvtNATDeviceTypeChanged), event.Stateful()); err != nil {
		a.reach.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	if a.sub, err = bus.Subscribe(new(event.EvtPeerIdentificationCompleted), event.Name("autonat")); err != nil {
		a.reach.Close()
		a.natEm.Close()
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	a.notif = &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if h.swarm.Connectedness(c.RemotePeer()) == network.NotConnected {
			a.observed.Forget(c.RemotePeer())
		}
	}}
	h.swarm.Notify(a.notif)
	go a.consume()
	if cfg.service {
		// Another identity, listening nowhere: each dial back is a
		// fresh connection from an ephemeral port.
		opts := append([]Option{ListenAddrs(), ResourceManager(h.cfg.rcmgr), DisableHolePunching()}, dialerOpts...)
		a.dialer, err = New(opts...)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("p2pnet: AutoNAT dial-back host: %w", err)
		}
		a.server = autonat.NewServer(h, a.dialer, autonat.ServerPublic(public))
	}
	if !cfg.noClient {
		a.client = autonat.NewClient(h, autonat.ClientPublic(public),
			autonat.Candidates(a.candidates),
			autonat.OnReachability(func(r network.Reachability) {
				a.reach.Emit(event.EvtLocalReachabilityChanged{Reachability: r})
			}))
	}
	return a, nil
}

// candidates are the addresses the client checks: our listen addresses
// (the client keeps the public ones), then the observed ones, confirmed
// first.
func (a *autoNAT) candidates() []ma.Multiaddr {
	addrs, _ := a.h.swarm.InterfaceListenAddresses()
	return append(append(addrs, a.observed.Confirmed()...), a.observed.All()...)
}

// consume feeds identify's observations to the observed addresses and
// emits NAT type changes.
func (a *autoNAT) consume() {
	defer close(a.done)
	for ev := range a.sub.Out() {
		e := ev.(event.EvtPeerIdentificationCompleted)
		if e.ObservedAddr == nil || e.Conn == nil {
			continue
		}
		if !a.observed.Record(nat.Observation{
			Local: e.Conn.LocalMultiaddr(), Observed: e.ObservedAddr,
			Reporter: e.Peer, ReporterAddr: e.Conn.RemoteMultiaddr(),
			Outbound: e.Conn.Stat().Direction == network.DirOutbound,
		}) {
			continue
		}
		for _, tp := range []network.NATTransportProtocol{network.NATTransportTCP, network.NATTransportUDP} {
			t := a.observed.NATType(tp)
			a.mu.Lock()
			changed := a.natType[tp] != t
			a.natType[tp] = t
			a.mu.Unlock()
			if changed {
				a.natEm.Emit(event.EvtNATDeviceTypeChanged{TransportProtocol: tp, NatDeviceType: t})
			}
		}
		if a.client != nil {
			a.client.Kick()
		}
	}
}

// reachability returns what the client knows, Unknown without one.
func (a *autoNAT) reachability() network.Reachability {
	if a == nil || a.client == nil {
		return network.ReachabilityUnknown
	}
	return a.client.Reachability()
}

// close stops everything startAutoNAT started.
func (a *autoNAT) close() {
	if a == nil {
		return
	}
	if a.client != nil {
		a.client.Close()
	}
	if a.server != nil {
		a.server.Close()
	}
	if a.dialer != nil {
		a.dialer.Close()
	}
	a.h.swarm.StopNotify(a.notif)
	a.sub.Close()
	<-a.done
	a.reach.Close()
	a.natEm.Close()
}

// EnableAutoNATService serves AutoNAT v2 (/libp2p/autonat/2/dial-request),
// dialing peers back from a second, dial-only host of another identity,
// within the rate limits of proto/autonat. Default: off.
func EnableAutoNATService() Option {
	return func(c *config) error { c.autoNAT.service = true; return nil }
}

// DisableAutoNAT stops the host checking its addresses with AutoNAT v2
// servers; its reachability then stays Unknown. Default: on.
func DisableAutoNAT() Option {
	return func(c *config) error { c.autoNAT.noClient = true; return nil }
}

// autoNATDialerOnly marks the AutoNAT server's dial-back host: it runs no
// AutoNAT.
func autoNATDialerOnly() Option {
	return func(c *config) error { c.autoNAT.dialerOnly = true; return nil }
}

// Reachability returns what AutoNAT has learned of the host's
// reachability.
func (h *Host) Reachability() network.Reachability { return h.autoNAT.reachability() }
