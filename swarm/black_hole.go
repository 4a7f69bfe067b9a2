package swarm

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Black-hole detection. A node behind a network that drops UDP, or that
// has no IPv6 route, would otherwise try QUIC and IPv6 addresses on every
// dial and wait for each to time out. The swarm keeps one filter per kind
// of address (UDP: addresses with a /udp component; IPv6: addresses with
// an /ip6 component) that watches the outcomes of dials to public
// addresses of its kind and, once they almost never succeed, refuses such
// dials except for an occasional probe.
//
// The behaviour is go-libp2p's (v0.51.0), with these deliberate
// differences:
//   - The probe count starts when a filter becomes Blocked, so the first
//     probe is exactly N requests later (go-libp2p counts requests since
//     its last reset, which makes the first probe come anywhere from 1 to
//     N requests after blocking).
//   - A request is counted only when, after every other check (backoff,
//     own addresses, transports), the peer still has a public address of
//     the kind to dial, so a probe always leads to a dial.
//   - Relay addresses are neither filtered nor counted: a relayed dial
//     fails for reasons of the relay's, and the dial to the relay itself
//     goes through the filters.
//   - CanDial consults the filters without counting a request.
//
// Like go-libp2p, dials under network.WithForceDirectDial and
// network.WithSimultaneousConnect (hole punching) are filtered too: over a
// black-holed network such a dial cannot succeed either.

// The defaults of black-hole detection, go-libp2p's values. A black hole
// is all or nothing, so 5 successes in 100 dials tell a working network
// from a black hole even when many dials fail for other reasons (dead
// peers, dials cancelled because another address won).
const (
	// DefaultBlackHoleWindow is how many of the latest dial outcomes a
	// filter keeps, and how many requests pass between probes while it
	// is Blocked.
	DefaultBlackHoleWindow = 100
	// DefaultBlackHoleMinSuccesses is how many of the outcomes in a full
	// window must be successes for the filter not to block.
	DefaultBlackHoleMinSuccesses = 5
)

// ErrDialRefusedBlackHole is wrapped by the error recorded in a DialError
// for an address that was not dialed because black-hole detection found
// its kind of address (UDP or IPv6) unreachable from here.
var ErrDialRefusedBlackHole = errors.New("swarm: dial refused: black hole")

// BlackHoleState is what a black-hole filter does with dials of its kind.
type BlackHoleState int

const (
	// BlackHoleProbing: fewer outcomes than the window holds are known
	// (at start, and after a success unblocked the filter); every dial is
	// allowed.
	BlackHoleProbing BlackHoleState = iota
	// BlackHoleAllowed: enough of the latest dials succeeded; every dial
	// is allowed.
	BlackHoleAllowed
	// BlackHoleBlocked: too few of the latest dials succeeded; dials are
	// refused, except that every window-th request is let through as a
	// probe. A successful dial returns the filter to BlackHoleProbing
	// with an empty window.
	BlackHoleBlocked
)

// String returns "Probing", "Allowed" or "Blocked".
func (st BlackHoleState) String() string {
	switch st {
	case BlackHoleProbing:
		return "Probing"
	case BlackHoleAllowed:
		return "Allowed"
	case BlackHoleBlocked:
		return "Blocked"
	default:
		return fmt.Sprintf("BlackHoleState(%d)", int(st))
	}
}

// BlackHoleStatus describes one black-hole filter, for logs and metrics.
type BlackHoleStatus struct {
	// Enabled is false when the filter was turned off; the other fields
	// are then zero.
	Enabled bool
	// State is the filter's state.
	State BlackHoleState
	// Window is the number of outcomes the filter keeps (N).
	Window int
	// Outcomes is the number of outcomes it holds now, at most Window.
	Outcomes int
	// Successes is how many of them are successes.
	Successes int
	// NextProbeIn is, while Blocked, the number of requests until the
	// next probe (1: the next request is one); otherwise 0.
	NextProbeIn int
}

// blackHoleFilter tracks the outcomes of dials to public addresses of one
// kind: a sliding window of the last n outcomes decides the state.
type blackHoleFilter struct {
	n, minSuccesses int
	// refusal is recorded for the addresses it refuses.
	refusal error

	mu        sync.Mutex // guards the following
	outcomes  []bool     // the last n outcomes (true: success); a ring once full
	next      int        // where the next outcome goes once the ring is full
	successes int        // true values in outcomes
	state     BlackHoleState
	// blockedRequests counts requests since the filter became Blocked,
	// modulo n.
	blockedRequests int
}

func newBlackHoleFilter(name string, n, minSuccesses int) *blackHoleFilter {
	return &blackHoleFilter{
		n:            n,
		minSuccesses: minSuccesses,
		refusal:      fmt.Errorf("%w (%s)", ErrDialRefusedBlackHole, name),
		outcomes:     make([]bool, 0, n),
	}
}

// request counts a request to dial addresses of the filter's kind and
// returns the verdict: BlackHoleAllowed or BlackHoleProbing let the dials
// through (Probing also overrides the other filter's Blocked, so that the
// outcomes this filter lacks are gathered), BlackHoleBlocked refuses
// them.
func (f *blackHoleFilter) request() BlackHoleState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state != BlackHoleBlocked {
		return f.state
	}
	f.blockedRequests++
	if f.blockedRequests == f.n {
		f.blockedRequests = 0
		return BlackHoleProbing
	}
	return BlackHoleBlocked
}

// record adds the outcome of a dial. A success while Blocked empties the
// window: a black hole is all or nothing, so one success shows the
// network works again.
func (f *blackHoleFilter) record(success bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if success && f.state == BlackHoleBlocked {
		f.outcomes = f.outcomes[:0]
		f.next, f.successes = 0, 0
		f.updateLocked()
		return
	}
	if len(f.outcomes) < f.n {
		f.outcomes = append(f.outcomes, success)
	} else {
		if f.outcomes[f.next] {
			f.successes--
		}
		f.outcomes[f.next] = success
		f.next = (f.next + 1) % f.n
	}
	if success {
		f.successes++
	}
	f.updateLocked()
}

func (f *blackHoleFilter) updateLocked() {
	old := f.state
	switch {
	case len(f.outcomes) < f.n:
		f.state = BlackHoleProbing
	case f.successes >= f.minSuccesses:
		f.state = BlackHoleAllowed
	default:
		f.state = BlackHoleBlocked
	}
	if f.state == BlackHoleBlocked && old != BlackHoleBlocked {
		f.blockedRequests = 0
	}
}

// currentState returns the state without counting a request.
func (f *blackHoleFilter) currentState() BlackHoleState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *blackHoleFilter) status() BlackHoleStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := BlackHoleStatus{
		Enabled:   true,
		State:     f.state,
		Window:    f.n,
		Outcomes:  len(f.outcomes),
		Successes: f.successes,
	}
	if f.state == BlackHoleBlocked {
		st.NextProbeIn = f.n - f.blockedRequests
	}
	return st
}

// blackHoleDetector applies the UDP and the IPv6 filter; a nil filter is
// turned off. It filters per dial request rather than per address, so
// that a probe is a whole request's addresses of the kind, which the
// ranker then schedules as usual.
type blackHoleDetector struct {
	udp, ipv6 *blackHoleFilter
}

// blackHoleKinds reports which filters count addr: only public addresses
// that do not go through a relay.
func blackHoleKinds(addr ma.Multiaddr) (udp, ipv6 bool) {
	if isRelayAddr(addr) || !manet.IsPublicAddr(addr) {
		return false, false
	}
	return hasProtocol(addr, ma.P_UDP), hasProtocol(addr, ma.P_IP6)
}

// refusal returns why addr is refused under the verdicts udp and ipv6
// (BlackHoleAllowed for a filter that is off or was not asked), or nil.
func (d *blackHoleDetector) refusal(addr ma.Multiaddr, udp, ipv6 BlackHoleState) error {
	isUDP, isIPv6 := blackHoleKinds(addr)
	switch {
	case isUDP && udp == BlackHoleProbing, isIPv6 && ipv6 == BlackHoleProbing:
		return nil
	case isUDP && udp == BlackHoleBlocked:
		return d.udp.refusal
	case isIPv6 && ipv6 == BlackHoleBlocked:
		return d.ipv6.refusal
	}
	return nil
}

// filter counts one dial request with each filter that has an address of
// its kind among addrs, and removes from addrs (in place) the addresses
// the verdicts refuse, recording each in derr.
func (d *blackHoleDetector) filter(addrs []ma.Multiaddr, derr *DialError) []ma.Multiaddr {
	var hasUDP, hasIPv6 bool
	for _, a := range addrs {
		udp, ipv6 := blackHoleKinds(a)
		hasUDP, hasIPv6 = hasUDP || udp, hasIPv6 || ipv6
	}
	udp, ipv6 := BlackHoleAllowed, BlackHoleAllowed
	if hasUDP && d.udp != nil {
		udp = d.udp.request()
	}
	if hasIPv6 && d.ipv6 != nil {
		ipv6 = d.ipv6.request()
	}
	if udp != BlackHoleBlocked && ipv6 != BlackHoleBlocked {
		return addrs
	}
	return slices.DeleteFunc(addrs, func(a ma.Multiaddr) bool {
		if err := d.refusal(a, udp, ipv6); err != nil {
			derr.record(a, err)
			return true
		}
		return false
	})
}

// refuses reports whether a dial of addr would be refused now, without
// counting a request.
func (d *blackHoleDetector) refuses(addr ma.Multiaddr) bool {
	udp, ipv6 := BlackHoleAllowed, BlackHoleAllowed
	if d.udp != nil {
		udp = d.udp.currentState()
	}
	if d.ipv6 != nil {
		ipv6 = d.ipv6.currentState()
	}
	return d.refusal(addr, udp, ipv6) != nil
}

// record adds the outcome of a dial of addr to the filters that count it.
func (d *blackHoleDetector) record(addr ma.Multiaddr, success bool) {
	udp, ipv6 := blackHoleKinds(addr)
	if udp && d.udp != nil {
		d.udp.record(success)
	}
	if ipv6 && d.ipv6 != nil {
		d.ipv6.record(success)
	}
}

// BlackHoleStatus returns the state of black-hole detection for UDP and
// for IPv6 addresses.
func (s *Swarm) BlackHoleStatus() (udp, ipv6 BlackHoleStatus) {
	d := s.cfg.blackHoles
	if d.udp != nil {
		udp = d.udp.status()
	}
	if d.ipv6 != nil {
		ipv6 = d.ipv6.status()
	}
	return udp, ipv6
}
