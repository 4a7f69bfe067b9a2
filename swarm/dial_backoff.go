package swarm

import (
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// maxBackoffTries caps the failure count of an address so that the square
// in the backoff formula cannot overflow.
const maxBackoffTries = 1 << 10

// dialBackoff remembers which addresses of which peers failed recently.
// An address that failed n times before (n from 0) is not dialed again
// for min(base + coef*n², max). A connection to the peer clears all of
// its entries. Entries whose backoff ended more than max ago are dropped,
// at most once every max, when a failure is added.
type dialBackoff struct {
	base, coef, max time.Duration

	mu        sync.Mutex // guards the following
	entries   map[peer.ID]map[string]*backoffEntry
	lastPrune time.Time
}

// backoffEntry is the backoff state of one address.
type backoffEntry struct {
	tries int
	until time.Time
}

func newDialBackoff(base, coef, max time.Duration) *dialBackoff {
	return &dialBackoff{
		base:    base,
		coef:    coef,
		max:     max,
		entries: map[peer.ID]map[string]*backoffEntry{},
	}
}

// backedOff reports whether addr of p is in backoff now.
func (b *dialBackoff) backedOff(p peer.ID, addr ma.Multiaddr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[p][string(addr.Bytes())]
	return ok && time.Now().Before(e.until)
}

// add records a failure of addr of p.
func (b *dialBackoff) add(p peer.ID, addr ma.Multiaddr) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked(now)
	addrs, ok := b.entries[p]
	if !ok {
		addrs = map[string]*backoffEntry{}
		b.entries[p] = addrs
	}
	key := string(addr.Bytes())
	e, ok := addrs[key]
	if !ok {
		e = &backoffEntry{}
		addrs[key] = e
	}
	d := min(b.base+b.coef*time.Duration(e.tries*e.tries), b.max)
	e.until = now.Add(d)
	if e.tries < maxBackoffTries {
		e.tries++
	}
}

// clear forgets every failure of p.
func (b *dialBackoff) clear(p peer.ID) {
	b.mu.Lock()
	delete(b.entries, p)
	b.mu.Unlock()
}

// pruneLocked drops the entries that ended more than max ago, at most once
// every max.
func (b *dialBackoff) pruneLocked(now time.Time) {
	if now.Sub(b.lastPrune) < b.max {
		return
	}
	b.lastPrune = now
	for p, addrs := range b.entries {
		for k, e := range addrs {
			if now.Sub(e.until) > b.max {
				delete(addrs, k)
			}
		}
		if len(addrs) == 0 {
			delete(b.entries, p)
		}
	}
}
