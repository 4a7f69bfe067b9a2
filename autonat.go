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
	server   *autonat.Server // nil unless EnableAutoNATService
	dialer   *Host           // the server's dial-back host

	clientOpts []autonat.ClientOption // for the client start starts; nil under DisableAutoNAT

	sub          *event.Subscription
	reach, natEm *event.Emitter
	notif        *network.NotifyBundle
	done         chan struct{}

	mu      sync.Mutex // guards the following
	natType map[network.NATTransportProtocol]network.NATDeviceType
	client  *autonat.Client // nil under DisableAutoNAT; set once its goroutine runs
}

// getClient returns the v2 client, nil when there is none (yet).
func (a *autoNAT) getClient() *autonat.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// verdict returns what the client concluded of addr: Unknown without a
// client or a verdict.
func (a *autoNAT) verdict(addr ma.Multiaddr) network.Reachability {
	if c := a.getClient(); c != nil {
		return c.AddrReachability(addr)
	}
	return network.ReachabilityUnknown
}

// startAutoNAT starts what cfg asks for on h; public adds the ranges
// that count as public (PublicCIDRs, which AutoNAT honours on both
// sides); dialerOpts are added to the options of the server's dial-back
// host (New passes the one that marks it dialerOnly, so that it runs no
// AutoNAT of its own). It sets h.autoNAT, and leaves it nil when cfg asks
// for nothing. The client starts with autoNAT.start.
func (h *Host) startAutoNAT(cfg autoNATConfig, public []netip.Prefix, dialerOpts ...Option) error {
	if cfg.dialerOnly || (cfg.noClient && !cfg.service) {
		return nil
	}
	bus := h.EventBus()
	a := &autoNAT{h: h, observed: nat.NewObservedAddrs(), done: make(chan struct{}),
		natType: map[network.NATTransportProtocol]network.NATDeviceType{}}
	var err error
	if a.reach, err = bus.Emitter(new(event.EvtLocalReachabilityChanged), event.Stateful()); err != nil {
		return fmt.Errorf("p2pnet: %w", err)
	}
	if a.natEm, err = bus.Emitter(new(event.EvtNATDeviceTypeChanged), event.Stateful()); err != nil {
		a.reach.Close()
		return fmt.Errorf("p2pnet: %w", err)
	}
	if a.sub, err = bus.Subscribe(new(event.EvtPeerIdentificationCompleted), event.Name("autonat")); err != nil {
		a.reach.Close()
		a.natEm.Close()
		return fmt.Errorf("p2pnet: %w", err)
	}
	a.notif = &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		if h.swarm.Connectedness(c.RemotePeer()) == network.NotConnected {
			a.observed.Forget(c.RemotePeer())
		}
	}}
	h.swarm.Notify(a.notif)
	h.autoNAT = a // Close closes it from here on
	go a.consume()
	if cfg.service {
		// Another identity, listening nowhere: each dial back is a
		// fresh connection from an ephemeral port.
		opts := append([]Option{ListenAddrs(), ResourceManager(h.cfg.rcmgr), DisableHolePunching()}, dialerOpts...)
		a.dialer, err = New(opts...)
		if err != nil {
			h.autoNAT = nil
			a.close()
			return fmt.Errorf("p2pnet: AutoNAT dial-back host: %w", err)
		}
		a.server = autonat.NewServer(h, a.dialer, autonat.ServerPublic(public))
	}
	if !cfg.noClient {
		a.clientOpts = []autonat.ClientOption{autonat.ClientPublic(public),
			autonat.Candidates(a.candidates),
			// Each result may change which addresses we announce.
			autonat.OnResult(func(_ ma.Multiaddr, r autonat.Result, err error) {
				if h.metrics != nil {
					h.metrics.m.AutoNATResult(r.Reachable, err)
				}
				h.addrsChanged()
			}),
			autonat.OnReachability(func(r network.Reachability) {
				a.reach.Emit(event.EvtLocalReachabilityChanged{Reachability: r})
			})}
	}
	return nil
}

// start starts the client, once the host is whole: its results reach
// Addrs, identify and the event bus from its own goroutine.
func (a *autoNAT) start() {
	if a == nil || a.clientOpts == nil {
		return
	}
	client := autonat.NewClient(a.h, a.clientOpts...)
	a.mu.Lock()
	a.client = client
	a.mu.Unlock()
}

// candidates are the addresses the client checks: our listen addresses
// (the client keeps the public ones), the gateway's port mappings, then
// the observed ones, confirmed first.
func (a *autoNAT) candidates() []ma.Multiaddr {
	addrs, _ := a.h.swarm.InterfaceListenAddresses()
	addrs = append(addrs, a.h.mappedAddrs()...) // NATPortMap (portmap.go)
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
		if c := a.getClient(); c != nil {
			c.Kick()
		}
	}
}

// reachability returns what the client knows, Unknown without one.
func (a *autoNAT) reachability() network.Reachability {
	if a == nil {
		return network.ReachabilityUnknown
	}
	if c := a.getClient(); c != nil {
		return c.Reachability()
	}
	return network.ReachabilityUnknown
}

// close stops everything startAutoNAT started.
func (a *autoNAT) close() {
	if a == nil {
		return
	}
	if c := a.getClient(); c != nil {
		c.Close()
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

// EnableAutoNATService serves AutoNAT v2 (/libp2p/autonat/2/dial-request)
// and AutoNAT v1 (/libp2p/autonat/1.0.0), dialing peers back from a
// second, dial-only host of another identity, within the rate limits
// and the dial-back timeout of proto/autonat. Default: off. (The
// client, on unless DisableAutoNAT, asks v2 servers, and v1 servers
// when no v2 server is connected.)
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
