package connmgr

import (
	"fmt"
	"math"
	"time"

	"github.com/p2pnet/p2pnet/peer"
)

// DecayingValue is one peer's value of one decaying tag.
type DecayingValue struct {
	// Tag is the tag.
	Tag *DecayingTag
	// Peer is the peer.
	Peer peer.ID
	// Added is when the peer first got the tag.
	Added time.Time
	// LastVisit is when the value was last bumped (Added until then).
	LastVisit time.Time
	// Value is the current value.
	Value int
}

// DecayFn computes a value's next value at each of its tag's intervals;
// rm drops the tag from the peer.
type DecayFn func(v DecayingValue) (after int, rm bool)

// BumpFn computes a value's next value when it is bumped by delta.
type BumpFn func(v DecayingValue, delta int) (after int)

// DecayingTag is a tag whose value changes with time: every interval the
// manager applies its DecayFn to each peer's value, and Bump applies its
// BumpFn. Its values add to the peers' values like plain tags.
type DecayingTag struct {
	m        *Manager
	name     string
	interval time.Duration
	decayFn  DecayFn
	bumpFn   BumpFn
	next     time.Time // when it decays next; guarded by m.mu
	closed   bool      // guarded by m.mu
}

// RegisterDecayingTag registers a decaying tag named name that decays
// every interval (rounded up to a multiple of the decay resolution, see
// WithDecayResolution) with decay and grows by bump. Names are unique.
func (m *Manager) RegisterDecayingTag(name string, interval time.Duration, decay DecayFn, bump BumpFn) (*DecayingTag, error) {
	if interval <= 0 || decay == nil || bump == nil {
		return nil, fmt.Errorf("%w: decaying tag %q needs a positive interval and both functions", ErrInvalidOption, name)
	}
	res := m.cfg.decayResolution
	if r := interval % res; r != 0 {
		interval += res - r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, dup := m.decaying[name]; dup {
		return nil, fmt.Errorf("%w: decaying tag %q registered twice", ErrInvalidOption, name)
	}
	t := &DecayingTag{m: m, name: name, interval: interval, decayFn: decay, bumpFn: bump, next: time.Now().Add(interval)}
	m.decaying[name] = t
	return t, nil
}

// Name returns the tag's name.
func (t *DecayingTag) Name() string { return t.name }

// Interval returns how often the tag decays.
func (t *DecayingTag) Interval() time.Duration { return t.interval }

// Bump applies the tag's BumpFn to p's value with delta; a peer without
// the tag starts from 0.
func (t *DecayingTag) Bump(p peer.ID, delta int) error {
	m := t.m
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.closed {
		return fmt.Errorf("decaying tag %q: %w", t.name, ErrClosed)
	}
	pi := m.peerLocked(p, now)
	if pi.decaying == nil {
		pi.decaying = map[*DecayingTag]*DecayingValue{}
	}
	v := pi.decaying[t]
	if v == nil {
		v = &DecayingValue{Tag: t, Peer: p, Added: now, LastVisit: now}
		pi.decaying[t] = v
	}
	v.Value = t.bumpFn(*v, delta)
	v.LastVisit = now
	return nil
}

// Remove drops the tag from p.
func (t *DecayingTag) Remove(p peer.ID) error {
	m := t.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.closed {
		return fmt.Errorf("decaying tag %q: %w", t.name, ErrClosed)
	}
	if pi := m.peers[p]; pi != nil {
		delete(pi.decaying, t)
	}
	return nil
}

// Close drops the tag from every peer and unregisters it.
func (t *DecayingTag) Close() error {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	t.closeLocked()
	return nil
}

func (t *DecayingTag) closeLocked() {
	m := t.m
	if t.closed {
		return
	}
	t.closed = true
	delete(m.decaying, t.name)
	for _, pi := range m.peers {
		delete(pi.decaying, t)
	}
}

// decay applies each tag whose interval has passed.
func (m *Manager) decay(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.decaying {
		if now.Before(t.next) {
			continue
		}
		t.next = t.next.Add(t.interval)
		for _, pi := range m.peers {
			v := pi.decaying[t]
			if v == nil {
				continue
			}
			after, rm := t.decayFn(*v)
			if rm {
				delete(pi.decaying, t)
				continue
			}
			v.Value = after
		}
	}
}

func (m *Manager) closeDecaying() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.decaying {
		t.closeLocked()
	}
}

// DecayNone keeps values as they are.
func DecayNone() DecayFn {
	return func(v DecayingValue) (int, bool) { return v.Value, false }
}

// DecayFixed subtracts minuend at each interval and drops the tag once
// the value is 0 or less.
func DecayFixed(minuend int) DecayFn {
	return func(v DecayingValue) (int, bool) {
		after := v.Value - minuend
		return after, after <= 0
	}
}

// DecayLinear multiplies the value by coef (in [0, 1)) at each interval,
// rounding down, and drops the tag once the value is 0 or less.
func DecayLinear(coef float64) DecayFn {
	return func(v DecayingValue) (int, bool) {
		after := int(math.Floor(float64(v.Value) * coef))
		return after, after <= 0
	}
}

// DecayExpireWhenInactive keeps the value until it has not been bumped
// for after, then drops the tag.
func DecayExpireWhenInactive(after time.Duration) DecayFn {
	return func(v DecayingValue) (int, bool) {
		return v.Value, time.Since(v.LastVisit) >= after
	}
}

// BumpSumUnbounded adds delta.
func BumpSumUnbounded() BumpFn {
	return func(v DecayingValue, delta int) int { return v.Value + delta }
}

// BumpSumBounded adds delta and keeps the sum within [lo, hi].
func BumpSumBounded(lo, hi int) BumpFn {
	return func(v DecayingValue, delta int) int { return min(max(v.Value+delta, lo), hi) }
}

// BumpOverwrite replaces the value with delta.
func BumpOverwrite() BumpFn {
	return func(_ DecayingValue, delta int) int { return delta }
}
