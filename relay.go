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
	auto        int  // AutoRelays (autorelay.go)
	autoSet     bool // auto was given; else DefaultAutoRelays
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
	reserver  *reserver      // static relays, and those AutoRelays adds
	auto      *autoRelay     // nil under AutoRelays(0) or DisableAutoNAT
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
	}
	rs.reserver = newReserver(cfg.static, reserverDeps{
		reserve: func(ctx context.Context, ri peer.AddrInfo) (*circuit.Reservation, error) {
			return circuit.Reserve(ctx, h, ri)
		},
		network: h.swarm,
		changed: h.addrsChanged, // the bus and identify push tell of our new addresses
	})
	return rs, nil
}

// startRelays starts reserving on the static relays, and on relays
// found while Private (AutoRelays).
func (h *Host) startRelays() error {
	h.relay.reserver.start()
	n := DefaultAutoRelays
	if h.cfg.relay.autoSet {
		n = h.cfg.relay.auto
	}
	var err error
	h.relay.auto, err = h.startAutoRelay(n, h.relay.reserver)
	return err
}

// close stops the reservations and the relay service.
func (rs *relayState) close() {
	if rs == nil {
		return
	}
	rs.auto.close() // nil-safe
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
// relays that hold a reservation for the host now: static ones, and
// those it found by itself while Private (AutoRelays).
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

// reserver keeps a reservation on each of its relays: the static ones
// for as long as it runs, retrying with backoff, and those added later
// (AutoRelays) until they are removed or a reservation on them fails.
type reserver struct {
	deps   reserverDeps
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	notif  *network.NotifyBundle
	static []peer.AddrInfo

	mu      sync.Mutex // guards the following
	relays  map[peer.ID]*keptRelay
	held    map[peer.ID][]ma.Multiaddr
	changed chan struct{}
}

// keptRelay is one relay the reserver keeps a reservation on.
type keptRelay struct {
	info   peer.AddrInfo
	once   bool          // give up after the first failure (added relays)
	cancel func()        // stops keeping it
	lost   chan struct{} // cap 1: its connection dropped
	done   chan struct{} // closed when keep returns
}

func newReserver(static []peer.AddrInfo, deps reserverDeps) *reserver {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reserver{
		deps: deps, ctx: ctx, cancel: cancel, static: static,
		relays:  map[peer.ID]*keptRelay{},
		held:    map[peer.ID][]ma.Multiaddr{},
		changed: make(chan struct{}),
	}
	r.notif = &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		if n.Connectedness(c.RemotePeer()) == network.Connected {
			return
		}
		r.mu.Lock()
		k := r.relays[c.RemotePeer()]
		r.mu.Unlock()
		if k == nil {
			return
		}
		select {
		case k.lost <- struct{}{}:
		default:
		}
	}}
	return r
}

// start begins keeping a reservation on each static relay.
func (r *reserver) start() {
	r.deps.network.Notify(r.notif)
	for _, ri := range r.static {
		r.add(ri, false, nil)
	}
}

// add starts keeping a reservation on ri unless it already does. With
// once, a failed reservation ends it: gone is then called (not under
// any lock), and the relay is forgotten.
func (r *reserver) add(ri peer.AddrInfo, once bool, gone func()) bool {
	ctx, cancel := context.WithCancel(r.ctx)
	k := &keptRelay{info: ri, once: once, cancel: cancel, lost: make(chan struct{}, 1), done: make(chan struct{})}
	r.mu.Lock()
	if _, ok := r.relays[ri.ID]; ok || r.ctx.Err() != nil {
		r.mu.Unlock()
		cancel()
		return false
	}
	r.relays[ri.ID] = k
	r.mu.Unlock()
	r.wg.Go(func() {
		defer close(k.done)
		failed := r.keep(ctx, k)
		cancel()
		r.mu.Lock()
		if r.relays[ri.ID] == k {
			delete(r.relays, ri.ID)
		}
		r.mu.Unlock()
		if failed && gone != nil {
			gone()
		}
	})
	return true
}

// remove stops keeping the reservation on p and waits until its
// addresses are gone.
func (r *reserver) remove(p peer.ID) {
	r.mu.Lock()
	k := r.relays[p]
	r.mu.Unlock()
	if k == nil {
		return
	}
	k.cancel()
	<-k.done
}

// kept returns the relays the reserver keeps reservations on.
func (r *reserver) kept() []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []peer.ID
	for id := range r.relays {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (r *reserver) close() {
	r.cancel()
	r.deps.network.StopNotify(r.notif)
	r.wg.Wait()
}

// keep holds a reservation on k until ctx ends, or, for a relay kept
// once, until a reservation fails; it reports whether one failed.
func (r *reserver) keep(ctx context.Context, k *keptRelay) (failed bool) {
	ri := k.info
	defer r.set(ri.ID, nil)
	backoff := relayBackoffMin
	for {
		// A drop seen before this attempt is old news.
		select {
		case <-k.lost:
		default:
		}
		res, err := r.deps.reserve(ctx, ri)
		if ctx.Err() != nil {
			return false
		}
		var wait time.Duration
		if err != nil {
			slog.Debug("p2pnet: relay reservation failed", "relay", ri.ID, "err", err, "retry", backoff, "give_up", k.once)
			if k.once {
				return true
			}
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
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-k.lost:
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
