package yamux

import (
	"sync"
	"time"
)

// deadline is a read or write deadline of a stream: a channel closed by a
// timer when the deadline passes. Nothing is allocated while no deadline
// is set. Whoever waits on wait() must be woken when the deadline is
// changed (the stream notifies), since a new deadline comes with a new
// channel.
type deadline struct {
	mu    sync.Mutex    // guards the following
	timer *time.Timer   // closes ch
	ch    chan struct{} // nil: no deadline
}

// set sets the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		d.ch = nil
		return
	}
	ch := make(chan struct{})
	d.ch = ch
	dur := time.Until(t)
	if dur <= 0 {
		close(ch)
		return
	}
	d.timer = time.AfterFunc(dur, func() { close(ch) })
}

// stop stops the timer, if any, without changing the deadline: for a
// stream that is done, so that an idle connection holds no timers of its
// finished streams.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// wait returns a channel closed once the deadline passes, or nil when no
// deadline is set.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool {
	d.mu.Lock()
	ch := d.ch
	d.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
