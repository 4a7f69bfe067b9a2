package p2pnet

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"

	ma "github.com/multiformats/go-multiaddr"
)

// DefaultAutoRelays is how many relays a host that finds itself Private
// reserves on by itself (see AutoRelays); go-libp2p's autorelay keeps 2.
const DefaultAutoRelays = 2

// autoRelayRetry is how long a relay whose reservation failed is left
// alone before it is tried again.
const autoRelayRetry = time.Minute

// AutoRelays sets how many relays the host reserves on by itself while
// AutoNAT says it is Private: relays it is connected to (the peers whose
// identify lists the circuit relay v2 hop protocol), whose
// /…/p2p/RELAY/p2p-circuit addresses then join Addrs; the reservations
// are dropped when the host is no longer Private. Static relays
// (StaticRelays) count towards n and are kept whatever the reachability.
// 0 turns this off. Default: DefaultAutoRelays.
func AutoRelays(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("p2pnet: AutoRelays(%d): want 0 or more", n)
		}
		c.relay.auto, c.relay.autoSet = n, true
		return nil
	}
}

// autoRelay reserves on connected relays while the host is Private.
type autoRelay struct {
	h     *Host
	res   *reserver
	want  int
	sub   *event.Subscription
	retry chan struct{} // cap 1: a relay gave up, or its pause ended
	done  chan struct{}

	mu        sync.Mutex            // guards the following
	listening bool                  // on /p2p-circuit
	failed    map[peer.ID]time.Time // relays whose reservation failed, when
	timer     *time.Timer           // ends the earliest pause of failed
}

// startAutoRelay starts reserving when the host is Private, nil when n
// is 0 or there is no AutoNAT client to say so.
func (h *Host) startAutoRelay(n int, res *reserver) (*autoRelay, error) {
	if n == 0 || h.autoNAT == nil || h.autoNAT.clientOpts == nil {
		return nil, nil
	}
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged), new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerProtocolsUpdated), new(event.EvtPeerConnectednessChanged),
	}, event.Name("autorelay"))
	if err != nil {
		return nil, fmt.Errorf("p2pnet: autorelay: %w", err)
	}
	ar := &autoRelay{h: h, res: res, want: n, sub: sub,
		retry: make(chan struct{}, 1), done: make(chan struct{}), failed: map[peer.ID]time.Time{},
		listening: len(res.static) > 0} // newRelay listens for static relays
	go ar.run()
	return ar, nil
}

// close stops it; the reserver's close drops the reservations.
func (ar *autoRelay) close() {
	if ar == nil {
		return
	}
	ar.sub.Close()
	<-ar.done
	ar.mu.Lock()
	if ar.timer != nil {
		ar.timer.Stop()
	}
	ar.mu.Unlock()
}

func (ar *autoRelay) run() {
	defer close(ar.done)
	private := false
	for {
		select {
		case ev, ok := <-ar.sub.Out():
			if !ok {
				return
			}
			if e, ok := ev.(event.EvtLocalReachabilityChanged); ok {
				private = e.Reachability == network.ReachabilityPrivate
			}
		case <-ar.retry:
		}
		ar.reconcile(private)
	}
}

// reconcile reserves on more relays while private and too few are kept,
// and drops the ones it added once not private.
func (ar *autoRelay) reconcile(private bool) {
	kept := ar.res.kept()
	static := map[peer.ID]bool{}
	for _, ri := range ar.res.static {
		static[ri.ID] = true
	}
	if !private {
		for _, p := range kept {
			if !static[p] {
				ar.res.remove(p)
			}
		}
		return
	}
	for _, p := range ar.candidates() {
		if len(kept) >= ar.want {
			return
		}
		if slices.Contains(kept, p) {
			continue
		}
		if !ar.listen() {
			return
		}
		ri := peer.AddrInfo{ID: p, Addrs: ar.h.ps.Addrs(p)}
		if ar.res.add(ri, true, func() { ar.gaveUp(p) }) {
			kept = append(kept, p)
		}
	}
}

// candidates returns the connected peers that serve the hop protocol
// over a direct connection and have not failed lately, in a stable
// order.
func (ar *autoRelay) candidates() []peer.ID {
	now := time.Now()
	var out []peer.ID
	for _, p := range ar.h.swarm.Peers() {
		if ar.h.swarm.Connectedness(p) != network.Connected {
			continue // only relayed: a relay behind a relay is no help
		}
		if ok, _ := ar.h.ps.SupportsProtocols(p, relay.ProtoHop); len(ok) == 0 {
			continue
		}
		ar.mu.Lock()
		at, failed := ar.failed[p]
		ar.mu.Unlock()
		if failed && now.Sub(at) < autoRelayRetry {
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// listen listens on /p2p-circuit once, so that relays can hand us the
// circuits of our reservations.
func (ar *autoRelay) listen() bool {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if ar.listening {
		return true
	}
	if err := ar.h.swarm.Listen(ma.StringCast("/p2p-circuit")); err != nil {
		return false
	}
	ar.listening = true
	return true
}

// gaveUp notes that p refused or failed a reservation: another relay is
// tried now, and p again after autoRelayRetry.
func (ar *autoRelay) gaveUp(p peer.ID) {
	ar.mu.Lock()
	ar.failed[p] = time.Now()
	if ar.timer == nil {
		ar.timer = time.AfterFunc(autoRelayRetry, ar.poke)
	} else {
		ar.timer.Reset(autoRelayRetry)
	}
	ar.mu.Unlock()
	ar.poke()
}

func (ar *autoRelay) poke() {
	select {
	case ar.retry <- struct{}{}:
	default:
	}
}
