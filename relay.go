package p2pnet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/transport/circuit"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// relayConfig is what the relay options set.
type relayConfig struct {
	service     bool
	serviceOpts []relay.Option
	static      []peer.AddrInfo
}

// EnableRelayService makes the host a circuit relay v2 relay for others:
// it grants reservations and relays circuits, with the limits and caps
// of opts (default: relay's defaults, go-libp2p's: reservations of one
// hour, circuits of 2 minutes and 128 KiB each way). Default: off.
func EnableRelayService(opts ...relay.Option) Option {
	return func(c *config) error {
		c.relay.service = true
		c.relay.serviceOpts = append(c.relay.serviceOpts, opts...)
		return nil
	}
}

// StaticRelays makes the host reachable through the given relays,
// /…/p2p/RELAY addresses: it reserves a slot on each, refreshes the
// reservation before it expires, reserves again (with backoff) when the
// relay's connection drops, and adds /…/p2p/RELAY/p2p-circuit to Addrs
// while a reservation holds. Given more than once, the relays add up.
// Default: none. Dialing circuit addresses needs no option.
func StaticRelays(addrs ...ma.Multiaddr) Option {
	return func(c *config) error {
		infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
		if err != nil {
			return fmt.Errorf("p2pnet: StaticRelays: %w", err)
		}
		c.relay.static = append(c.relay.static, infos...)
		return nil
	}
}

// relayState is the host's relay machinery.
type relayState struct {
	transport *circuit.Transport
	service   *relay.Service // nil unless EnableRelayService
	reserver  *reserver      // nil without static relays
}

// newRelay registers the circuit transport, starts the relay service
// and prepares the reservations that cfg asks for. New calls it before
// any service that may call Host.Addrs runs, and start after.
func (h *Host) newRelay(u *upgrader.Upgrader, cfg relayConfig) (*relayState, error) {
	rs := &relayState{transport: circuit.New(h, u, h.cfg.rcmgr)}
	if err := h.swarm.AddTransport(rs.transport); err != nil {
		return nil, fmt.Errorf("p2pnet: circuit transport: %w", err)
	}
	if cfg.service {
		svc, err := relay.New(h, cfg.serviceOpts...)
		if err != nil {
			return nil, fmt.Errorf("p2pnet: relay service: %w", err)
		}
		rs.service = svc
	}
	if len(cfg.static) > 0 {
		if err := h.swarm.Listen(ma.StringCast("/p2p-circuit")); err != nil {
			rs.close()
			return nil, fmt.Errorf("p2pnet: listening for circuits: %w", err)
		}
		rs.reserver = newReserver(cfg.static, reserverDeps{
			reserve: func(ctx context.Context, ri peer.AddrInfo) (*circuit.Reservation, error) {
				return circuit.Reserve(ctx, h, ri)
			},
			network: h.swarm,
			changed: h.protocolsChanged, // identify pushes our new addresses
		})
	}
	return rs, nil
}

// start starts reserving on the static relays.
func (rs *relayState) start() {
	if rs.reserver != nil {
		rs.reserver.start()
	}
}

// close stops the reservations and the relay service.
func (rs *relayState) close() {
	if rs == nil {
		return
	}
	if rs.reserver != nil {
		rs.reserver.close()
	}
	if rs.service != nil {
		rs.service.Close()
	}
}

// RelayService returns the host's relay service, or nil when it has
// none (see EnableRelayService).
func (h *Host) RelayService() *relay.Service {
	if h.relay == nil {
		return nil
	}
	return h.relay.service
}

// RelayAddrs returns the /…/p2p/RELAY/p2p-circuit addresses of the
// static relays that hold a reservation for the host now.
func (h *Host) RelayAddrs() []ma.Multiaddr {
	if h.relay == nil || h.relay.reserver == nil {
		return nil
	}
	return h.relay.reserver.addrs()
}

// RelayAddrsChanged returns a channel that is closed the next time
// RelayAddrs changes.
func (h *Host) RelayAddrsChanged() <-chan struct{} {
	if h.relay == nil || h.relay.reserver == nil {
		return nil
	}
	return h.relay.reserver.changedChan()
}

// Reservation timing.
const (
	// relayRefreshBefore is how long before expiry a reservation is
	// renewed; a reservation shorter than twice this is renewed halfway
	// through its life.
	relayRefreshBefore = 2 * time.Minute
	// relayBackoffMin and relayBackoffMax bound the wait before a
	// failed reservation is tried again; it doubles with each failure.
	relayBackoffMin = time.Second
	relayBackoffMax = time.Minute
)

// reserverDeps is what the reserver needs, separate so that tests can
// drive it.
type reserverDeps struct {
	reserve func(ctx context.Context, ri peer.AddrInfo) (*circuit.Reservation, error)
	network network.Network // tells of disconnections from relays
	changed func()          // called when the relayed addresses change
}

// reserver keeps a reservation on each static relay.
type reserver struct {
	deps   reserverDeps
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	notif  *network.NotifyBundle
	relays []peer.AddrInfo
	lost   map[peer.ID]chan struct{} // signalled when the relay's connection drops

	mu      sync.Mutex // guards the following
	held    map[peer.ID][]ma.Multiaddr
	changed chan struct{}
}

func newReserver(relays []peer.AddrInfo, deps reserverDeps) *reserver {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reserver{
		deps: deps, ctx: ctx, cancel: cancel,
		lost:    map[peer.ID]chan struct{}{},
		held:    map[peer.ID][]ma.Multiaddr{},
		changed: make(chan struct{}),
	}
	for _, ri := range relays {
		r.lost[ri.ID] = make(chan struct{}, 1)
		r.relays = append(r.relays, ri)
	}
	r.notif = &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		ch, ok := r.lost[c.RemotePeer()]
		if !ok || n.Connectedness(c.RemotePeer()) == network.Connected {
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	}}
	return r
}

// start begins keeping a reservation on each relay.
func (r *reserver) start() {
	r.deps.network.Notify(r.notif)
	for _, ri := range r.relays {
		r.wg.Go(func() { r.keep(ri) })
	}
}

func (r *reserver) close() {
	r.cancel()
	r.deps.network.StopNotify(r.notif)
	r.wg.Wait()
}

// keep holds a reservation on ri until the reserver closes.
func (r *reserver) keep(ri peer.AddrInfo) {
	backoff := relayBackoffMin
	lost := r.lost[ri.ID]
	for {
		// A drop seen before this attempt is old news.
		select {
		case <-lost:
		default:
		}
		res, err := r.deps.reserve(r.ctx, ri)
		if r.ctx.Err() != nil {
			return
		}
		var wait time.Duration
		if err != nil {
			slog.Debug("p2pnet: relay reservation failed", "relay", ri.ID, "err", err, "retry", backoff)
			r.set(ri.ID, nil)
			wait = backoff
			backoff = min(2*backoff, relayBackoffMax)
		} else {
			backoff = relayBackoffMin
			r.set(ri.ID, circuitAddrs(ri, res))
			life := time.Until(res.Expiration)
			wait = max(life-relayRefreshBefore, life/2, 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			r.set(ri.ID, nil)
			return
		case <-t.C:
		case <-lost:
			t.Stop()
			r.set(ri.ID, nil)
		}
	}
}

// circuitAddrs returns the relayed addresses a reservation gives us:
// each of the relay's addresses with /p2p-circuit.
func circuitAddrs(ri peer.AddrInfo, res *circuit.Reservation) []ma.Multiaddr {
	base := res.Addrs
	if len(base) == 0 {
		base, _ = peer.AddrInfoToP2pAddrs(&ri)
	}
	circ := ma.StringCast("/p2p-circuit")
	var out []ma.Multiaddr
	for _, a := range base {
		if _, id := peer.SplitAddr(a); id != ri.ID {
			continue
		}
		out = append(out, a.Encapsulate(circ))
	}
	return out
}

// set records the addresses of the reservation on p (nil: none).
func (r *reserver) set(p peer.ID, addrs []ma.Multiaddr) {
	r.mu.Lock()
	old := r.held[p]
	if slices.EqualFunc(old, addrs, ma.Multiaddr.Equal) {
		r.mu.Unlock()
		return
	}
	if addrs == nil {
		delete(r.held, p)
	} else {
		r.held[p] = addrs
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if r.deps.changed != nil {
		r.deps.changed()
	}
}

// addrs returns the relayed addresses held, in a stable order.
func (r *reserver) addrs() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ma.Multiaddr
	for _, as := range r.held {
		out = append(out, as...)
	}
	slices.SortFunc(out, func(a, b ma.Multiaddr) int { return a.Compare(b) })
	return out
}

func (r *reserver) changedChan() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}
