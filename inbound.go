package p2pnet

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
)

// negotiation bounds the protocol negotiation of an inbound stream with
// one timer: it fires NegotiationFirstByteTimeout after the stream
// arrived and, if a byte has been read by then, again NegotiationTimeout
// after it arrived. When it gives up it moves the stream's deadlines to
// the past, which fails the negotiation's read or write in progress and
// every later one, as deadlines set up front would; setting those
// deadlines (and clearing them) for every stream would cost a timer, a
// channel and a closure per direction each time.
//
// It is the io.ReadWriter the router negotiates over, noting the first
// byte read. Negotiations are pooled: a stream costs one timer.
type negotiation struct {
	s      network.Stream
	start  time.Time
	timer  *time.Timer
	expire func() // n.expired, bound once per pooled negotiation
	heard  atomic.Bool

	mu       sync.Mutex // guards the following
	extended bool       // the timer was moved to NegotiationTimeout
	fired    bool       // the stream's deadlines were moved to the past
	done     bool       // negotiation ended: the timer leaves the stream alone
}

var negotiations = sync.Pool{New: func() any {
	n := new(negotiation)
	n.expire = n.expired
	return n
}}

// watchNegotiation starts bounding the negotiation of s, which arrived
// at start.
func watchNegotiation(s network.Stream, start time.Time) *negotiation {
	n := negotiations.Get().(*negotiation)
	n.s, n.start = s, start
	n.mu.Lock() // so that expired sees n.timer
	n.timer = time.AfterFunc(time.Until(start.Add(NegotiationFirstByteTimeout)), n.expire)
	n.mu.Unlock()
	return n
}

// Read reads from the stream, noting that the remote has spoken.
func (n *negotiation) Read(b []byte) (int, error) {
	k, err := n.s.Read(b)
	if k > 0 && !n.heard.Load() {
		n.heard.Store(true)
	}
	return k, err
}

// Write writes to the stream.
func (n *negotiation) Write(b []byte) (int, error) { return n.s.Write(b) }

// WriteLazy writes to the stream, letting it hold b back for its next
// write when it can (see multistream.LazyWriter).
func (n *negotiation) WriteLazy(b []byte) (int, error) {
	if lw, ok := n.s.(multistream.LazyWriter); ok {
		return lw.WriteLazy(b)
	}
	return n.s.Write(b)
}

// expired is the timer's function.
func (n *negotiation) expired() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return
	}
	if n.heard.Load() && !n.extended {
		n.extended = true
		if d := time.Until(n.start.Add(NegotiationTimeout)); d > 0 {
			n.timer.Reset(d)
			return
		}
	}
	n.fired = true
	n.s.SetDeadline(time.Unix(1, 0))
}

// finish ends the watch, once negotiation has ended either way, and
// gives n back to the pool. A stream whose deadlines the timer moved gets
// them cleared, for its handler.
func (n *negotiation) finish() {
	n.mu.Lock()
	n.done = true
	fired := n.fired
	n.mu.Unlock()
	if fired {
		n.s.SetDeadline(time.Time{})
	}
	if !n.timer.Stop() {
		return // the timer's function ran or runs: n is not reused
	}
	n.s, n.timer = nil, nil
	n.heard.Store(false)
	n.extended, n.fired, n.done = false, false, false
	negotiations.Put(n)
}
