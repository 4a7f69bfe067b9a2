package swarm

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// dialWorker dials one peer on behalf of every caller of DialPeer that
// waits for it, so each address is dialed at most once however many
// callers there are. Its loop owns all of its state except waiters; it
// ends when the last caller leaves (leaveDialWorker cancels ctx) or the
// swarm closes.
type dialWorker struct {
	s      *Swarm
	peer   peer.ID
	ctx    context.Context // cancelled when no caller is left
	cancel context.CancelFunc
	reqs   chan *dialRequest
	// results carries the outcome of each dial goroutine.
	results chan dialResult
	// done is closed when loop returns.
	done chan struct{}

	waiters int // guarded by s.mu: callers between joinDialWorker and leaveDialWorker

	// Owned by loop.
	pending   []*pendingRequest
	dials     map[string]*addrDial // by address bytes
	queue     []*addrDial          // not started yet, earliest first
	inFlight  int
	connected bool // a dial of this worker succeeded
	timer     *time.Timer
}

// dialRequest is one caller's request for a connection.
type dialRequest struct {
	ctx context.Context
	res chan dialResponse // buffered; receives exactly one response
}

type dialResponse struct {
	conn *Conn
	err  error
}

// pendingRequest is a request waiting for the outcome of some dials.
type pendingRequest struct {
	req       *dialRequest
	remaining map[string]struct{} // addresses whose outcome it waits for
	err       *DialError          // failures so far
}

// addrDial is the dial of one address.
type addrDial struct {
	addr    ma.Multiaddr
	key     string
	at      time.Time       // when it is due
	ctx     context.Context // the worker's context with the asking request's options
	started bool
	conn    *Conn // on success
	err     error // on failure
}

// dialResult is the outcome of one dial goroutine.
type dialResult struct {
	ad  *addrDial
	tc  transport.CapableConn
	err error
}

func newDialWorker(s *Swarm, p peer.ID) *dialWorker {
	ctx, cancel := context.WithCancel(s.ctx)
	return &dialWorker{
		s:       s,
		peer:    p,
		ctx:     ctx,
		cancel:  cancel,
		reqs:    make(chan *dialRequest),
		results: make(chan dialResult),
		done:    make(chan struct{}),
		dials:   map[string]*addrDial{},
	}
}

// dial hands a request to the worker and waits for its response. The
// caller must have joined the worker.
func (w *dialWorker) dial(ctx context.Context) (*Conn, error) {
	req := &dialRequest{ctx: ctx, res: make(chan dialResponse, 1)}
	select {
	case w.reqs <- req:
	case <-ctx.Done():
		return nil, &DialError{Peer: w.peer, Cause: ctx.Err()}
	case <-w.done:
		return nil, &DialError{Peer: w.peer, Cause: ErrSwarmClosed}
	}
	select {
	case r := <-req.res:
		return r.conn, r.err
	case <-ctx.Done():
		return nil, &DialError{Peer: w.peer, Cause: ctx.Err()}
	case <-w.done:
		return nil, &DialError{Peer: w.peer, Cause: ErrSwarmClosed}
	}
}

func (w *dialWorker) loop() {
	defer w.s.wg.Done()
	defer close(w.done)
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	for {
		select {
		case req := <-w.reqs:
			w.handleRequest(req)
		case r := <-w.results:
			w.handleResult(r)
		case <-w.timer.C:
		case <-w.ctx.Done():
			return
		}
		w.dialDue()
	}
}

// handleRequest answers req at once when a connection exists or no
// address can be dialed; otherwise it schedules the request's addresses
// that are new to the worker and makes req wait for them and for those
// already scheduled or in flight.
func (w *dialWorker) handleRequest(req *dialRequest) {
	if c := w.s.bestAcceptableConn(req.ctx, w.peer); c != nil {
		req.res <- dialResponse{conn: c}
		return
	}
	addrs, derr := w.s.addrsForDial(req.ctx, w.peer)
	if addrs == nil {
		req.res <- dialResponse{err: derr}
		return
	}
	ranker := w.s.cfg.ranker
	simConnect, _, _ := network.GetSimultaneousConnect(req.ctx)
	if simConnect {
		ranker = NoDelayDialRanker
	}
	now := time.Now()
	pr := &pendingRequest{req: req, remaining: map[string]struct{}{}, err: derr}
	for _, ad := range ranker(addrs) {
		key := string(ad.Addr.Bytes())
		at := now.Add(ad.Delay)
		d := w.dials[key]
		if d != nil && d.conn != nil && d.conn.IsClosed() {
			d = nil // its connection died: dial again
		}
		switch {
		case d == nil:
			d = &addrDial{addr: ad.Addr, key: key, at: at, ctx: dialContext(w.ctx, req.ctx)}
			w.dials[key] = d
			w.enqueue(d)
			pr.remaining[key] = struct{}{}
		case d.conn != nil:
			req.res <- dialResponse{conn: d.conn}
			return
		case d.err != nil:
			pr.err.record(d.addr, d.err)
		default: // scheduled or in flight
			pr.remaining[key] = struct{}{}
			if !d.started && (simConnect || at.Before(d.at)) {
				// The more urgent request sets the schedule and options.
				d.ctx = dialContext(w.ctx, req.ctx)
				d.at = at
				w.queue = slices.DeleteFunc(w.queue, func(x *addrDial) bool { return x == d })
				w.enqueue(d)
			}
		}
	}
	if len(pr.remaining) == 0 {
		pr.err.Cause = ErrAllDialsFailed
		req.res <- dialResponse{err: pr.err}
		return
	}
	w.pending = append(w.pending, pr)
}

// dialContext returns the worker's context carrying the dial options of
// the request's context.
func dialContext(workerCtx, reqCtx context.Context) context.Context {
	ctx := workerCtx
	if force, reason := network.GetForceDirectDial(reqCtx); force {
		ctx = network.WithForceDirectDial(ctx, reason)
	}
	if sim, isClient, reason := network.GetSimultaneousConnect(reqCtx); sim {
		ctx = network.WithSimultaneousConnect(ctx, isClient, reason)
	}
	return ctx
}

// enqueue inserts d into the queue after every dial due no later than d.
func (w *dialWorker) enqueue(d *addrDial) {
	i := len(w.queue)
	for i > 0 && w.queue[i-1].at.After(d.at) {
		i--
	}
	w.queue = slices.Insert(w.queue, i, d)
}

// handleResult records the outcome of a dial and answers the requests
// that it settles: on success every request waiting for the address gets
// the connection; on failure a request whose last address failed gets a
// DialError (or a connection that appeared meanwhile).
func (w *dialWorker) handleResult(r dialResult) {
	w.inFlight--
	d := r.ad
	err := r.err
	if err == nil {
		c, addErr := w.s.addConn(r.tc, network.DirOutbound)
		if addErr == nil {
			d.conn = c
			w.connected = true
			w.pending = slices.DeleteFunc(w.pending, func(pr *pendingRequest) bool {
				if _, ok := pr.remaining[d.key]; !ok {
					return false
				}
				pr.req.res <- dialResponse{conn: c}
				return true
			})
			return
		}
		err = addErr
	} else if !w.connected && !errors.Is(err, context.Canceled) {
		w.s.backoff.add(w.peer, d.addr)
	}
	d.err = err
	w.pending = slices.DeleteFunc(w.pending, func(pr *pendingRequest) bool {
		if _, ok := pr.remaining[d.key]; !ok {
			return false
		}
		delete(pr.remaining, d.key)
		pr.err.record(d.addr, err)
		if len(pr.remaining) > 0 {
			return false
		}
		if c := w.s.bestAcceptableConn(pr.req.ctx, w.peer); c != nil {
			pr.req.res <- dialResponse{conn: c}
		} else {
			pr.err.Cause = ErrAllDialsFailed
			pr.req.res <- dialResponse{err: pr.err}
		}
		return true
	})
}

// dialDue starts the dials that are due, within the per-peer limit; when
// no dial is in flight it starts the next batch (every dial due at the
// earliest time) at once, since waiting would gain nothing. It then sets
// the timer for the next due dial. Nothing is dialed while no request
// waits.
func (w *dialWorker) dialDue() {
	w.pending = slices.DeleteFunc(w.pending, func(pr *pendingRequest) bool {
		return pr.req.ctx.Err() != nil // its caller left
	})
	w.timer.Stop()
	if len(w.pending) == 0 || len(w.queue) == 0 {
		return
	}
	now := time.Now()
	due := 0
	for due < len(w.queue) && !w.queue[due].at.After(now) {
		due++
	}
	if due == 0 && w.inFlight == 0 {
		first := w.queue[0].at
		for due < len(w.queue) && w.queue[due].at.Equal(first) {
			due++
		}
	}
	n := max(0, min(due, w.s.cfg.maxDialsPerPeer-w.inFlight))
	for _, d := range w.queue[:n] {
		w.start(d)
	}
	w.queue = slices.Delete(w.queue, 0, n)
	if len(w.queue) > 0 && w.queue[0].at.After(now) {
		w.timer.Reset(w.queue[0].at.Sub(now))
	}
}

// start dials d on a goroutine of its own, which reports to the loop or,
// when the worker has ended, closes the connection it got.
func (w *dialWorker) start(d *addrDial) {
	d.started = true
	w.inFlight++
	ctx, addr := d.ctx, d.addr
	// The loop holds a count of wg, so this Add cannot race with Close's
	// Wait.
	w.s.wg.Go(func() {
		tc, err := w.s.dialAddr(ctx, w.peer, addr)
		select {
		case w.results <- dialResult{ad: d, tc: tc, err: err}:
		case <-w.ctx.Done():
			if tc != nil {
				tc.Close()
			}
		}
	})
}
