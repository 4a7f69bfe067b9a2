package autonat

import (
	"sync"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// DefaultConfidence is how many agreeing results, among the last
// Window, decide an address: the spec suggests more than 3 servers; we
// take 3 of the last 5 results (from distinct servers when there are
// several, round robin).
const DefaultConfidence = 3

// Window is how many of an address's latest results are kept.
const Window = 5

// addrState is an address's latest results and verdict.
type addrState struct {
	results []bool // the last Window, oldest first
	verdict network.Reachability
}

// Tracker derives reachability from check results with hysteresis. An
// address becomes Public when at least the confidence of its last
// Window results are successes, Private when that many are failures,
// and otherwise keeps its verdict: one contrary result does not flip it.
// The host is Public when any checked address is Public, Private when
// none is and one is Private, Unknown otherwise. It is safe for
// concurrent use.
type Tracker struct {
	confidence int

	mu    sync.Mutex // guards the following
	addrs map[string]*addrState
	last  network.Reachability
}

// NewTracker returns a tracker that decides on confidence agreeing
// results (at most Window).
func NewTracker(confidence int) *Tracker {
	return &Tracker{confidence: min(max(confidence, 1), Window), addrs: map[string]*addrState{}}
}

// Add records a result for a and reports whether the host's
// reachability changed, and to what.
func (t *Tracker) Add(a ma.Multiaddr, reachable bool) (bool, network.Reachability) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := string(a.Bytes())
	st := t.addrs[k]
	if st == nil {
		st = &addrState{}
		t.addrs[k] = st
	}
	st.results = append(st.results, reachable)
	if len(st.results) > Window {
		st.results = st.results[len(st.results)-Window:]
	}
	ok := 0
	for _, r := range st.results {
		if r {
			ok++
		}
	}
	switch {
	case ok >= t.confidence:
		st.verdict = network.ReachabilityPublic
	case len(st.results)-ok >= t.confidence:
		st.verdict = network.ReachabilityPrivate
	}
	return t.updateLocked()
}

// Retain forgets the addresses not in addrs and reports whether the
// host's reachability changed, and to what.
func (t *Tracker) Retain(addrs []ma.Multiaddr) (bool, network.Reachability) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := map[string]bool{}
	for _, a := range addrs {
		keep[string(a.Bytes())] = true
	}
	for k := range t.addrs {
		if !keep[k] {
			delete(t.addrs, k)
		}
	}
	return t.updateLocked()
}

// Decided reports whether a has a verdict.
func (t *Tracker) Decided(a ma.Multiaddr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.addrs[string(a.Bytes())]
	return st != nil && st.verdict != network.ReachabilityUnknown
}

// AddrReachability returns a's verdict.
func (t *Tracker) AddrReachability(a ma.Multiaddr) network.Reachability {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.addrs[string(a.Bytes())]; st != nil {
		return st.verdict
	}
	return network.ReachabilityUnknown
}

// Reachability returns the host's reachability.
func (t *Tracker) Reachability() network.Reachability {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// updateLocked recomputes the host's reachability.
func (t *Tracker) updateLocked() (bool, network.Reachability) {
	r := network.ReachabilityUnknown
	for _, st := range t.addrs {
		if st.verdict == network.ReachabilityPublic {
			r = network.ReachabilityPublic
			break
		}
		if st.verdict == network.ReachabilityPrivate {
			r = network.ReachabilityPrivate
		}
	}
	if r == t.last {
		return false, r
	}
	t.last = r
	return true, r
}
