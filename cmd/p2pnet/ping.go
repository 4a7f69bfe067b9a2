package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
)

// streamOpener opens streams to peers: the *p2pnet.Host, or a fake host
// in tests.
type streamOpener interface {
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// noReplyError is the error of a ping whose reply did not come in time.
type noReplyError struct{ timeout time.Duration }

func (e *noReplyError) Error() string { return fmt.Sprintf("no reply within %v", e.timeout) }

// errEchoMismatch is the error of a ping answered with other bytes than
// those sent.
var errEchoMismatch = errors.New("the reply differs from the payload sent")

// pinger pings one peer as ping(8) pings a host, over /ipfs/ping/1.0.0:
// one round trip at a time on one stream. It builds on the protocol's
// wire format rather than on ping.Ping, which pings as fast as it can
// and ends at the first failure: a pinger times each reply out on its
// own, and after a lost reply resets the stream and opens a new one.
type pinger struct {
	h       streamOpener
	peer    peer.ID
	timeout time.Duration // how long a reply may take

	s   network.Stream // the open stream, nil if none
	rng *rand.ChaCha8
	out [ping.PayloadSize]byte
	in  [ping.PayloadSize]byte
}

func newPinger(h streamOpener, p peer.ID, timeout time.Duration) *pinger {
	var seed [32]byte
	crand.Read(seed[:]) // never fails (crypto/rand's documented guarantee)
	return &pinger{h: h, peer: p, timeout: timeout, rng: rand.NewChaCha8(seed)}
}

// pingResult is the outcome of one ping.
type pingResult struct {
	seq int
	// rtt is the round-trip time, measured on a negotiated stream.
	rtt time.Duration
	// newStream is true if the ping went on a new stream; setup is how
	// long opening it took (with its first round trip, which carries the
	// protocol proposal).
	newStream bool
	setup     time.Duration
	// err is why the reply was lost, nil if it came.
	err error
	// interrupted is true if ctx ended while the ping waited for its
	// reply; err is ctx's error then. Like ping(8), a summary counts
	// such a ping as transmitted and not received.
	interrupted bool
}

// run pings count times (forever if count is 0), interval apart, until
// ctx is done, and reports each result, the one ctx interrupted
// included. The only error is a peer that does not serve ping at the
// first try.
func (p *pinger) run(ctx context.Context, count int, interval time.Duration, report func(pingResult)) error {
	next := time.Now()
	for seq := 1; count == 0 || seq <= count; seq++ {
		if seq > 1 && !sleepUntil(ctx, next) {
			return nil
		}
		next = time.Now().Add(interval)
		r := p.ping(ctx)
		r.seq = seq
		if r.err != nil && ctx.Err() != nil {
			r.err, r.interrupted = ctx.Err(), true
			report(r)
			return nil
		}
		if seq == 1 && errors.Is(r.err, multistream.ErrNotSupported) {
			return r.err
		}
		report(r)
	}
	return nil
}

// sleepUntil waits until t or until ctx is done, and reports whether t
// came first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ping makes one round trip, on a new stream if none is open.
func (p *pinger) ping(ctx context.Context) pingResult {
	var r pingResult
	if p.s == nil {
		start := time.Now()
		if r.err = p.open(ctx); r.err != nil {
			return r
		}
		// The first round trip carries the protocol proposal and its
		// answer: it is the stream's setup, not a ping.
		if _, r.err = p.roundTrip(ctx); r.err != nil {
			return r
		}
		r.newStream, r.setup = true, time.Since(start)
	}
	r.rtt, r.err = p.roundTrip(ctx)
	return r
}

// open opens a stream, within the reply timeout.
func (p *pinger) open(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	s, err := p.h.NewStream(network.WithAllowLimitedConn(octx, "ping"), p.peer, ping.ID)
	if err != nil {
		if ctx.Err() == nil && octx.Err() != nil {
			return &noReplyError{p.timeout}
		}
		return err
	}
	if err := s.Scope().SetService(ping.ServiceName); err != nil {
		s.Reset()
		return err
	}
	p.s = s
	return nil
}

// roundTrip sends a payload on the open stream and reads its echo. When
// the echo does not come within the timeout, or ctx ends first, the
// stream is reset. A failed round trip leaves no stream open.
func (p *pinger) roundTrip(ctx context.Context) (time.Duration, error) {
	s := p.s
	tctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	stop := context.AfterFunc(tctx, func() { s.Reset() })
	p.rng.Read(p.out[:])
	start := time.Now()
	_, err := s.Write(p.out[:])
	if err == nil {
		_, err = io.ReadFull(s, p.in[:])
	}
	rtt := time.Since(start)
	if !stop() {
		// Reset by tctx: a reply that made it anyway still counts.
		p.s = nil
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return 0, cerr
			}
			return 0, &noReplyError{p.timeout}
		}
	}
	switch {
	case err == nil && !bytes.Equal(p.out[:], p.in[:]):
		err = errEchoMismatch
	case (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) && !errors.Is(err, net.ErrClosed):
		err = &explained{msg: "the peer closed the stream", err: err}
	}
	if err != nil {
		s.Reset()
		p.s = nil
		return 0, err
	}
	return rtt, nil
}

// close closes the open stream, if any.
func (p *pinger) close() {
	if p.s != nil {
		p.s.Close()
		p.s = nil
	}
}

// pingStats accumulates round-trip times as ping(8) reports them.
type pingStats struct {
	sent, received     int
	min, max, sum, sq2 float64 // milliseconds
}

func (s *pingStats) add(r pingResult) {
	s.sent++
	if r.err != nil {
		return
	}
	v := ms(r.rtt)
	if s.received == 0 || v < s.min {
		s.min = v
	}
	if v > s.max {
		s.max = v
	}
	s.received++
	s.sum += v
	s.sq2 += v * v
}

func (s *pingStats) avg() float64 {
	if s.received == 0 {
		return 0
	}
	return s.sum / float64(s.received)
}

// mdev is the standard deviation of the round-trip times, as ping(8)
// computes it.
func (s *pingStats) mdev() float64 {
	if s.received == 0 {
		return 0
	}
	a := s.avg()
	return math.Sqrt(math.Max(0, s.sq2/float64(s.received)-a*a))
}

func (s *pingStats) loss() float64 {
	if s.sent == 0 {
		return 0
	}
	return 100 * float64(s.sent-s.received) / float64(s.sent)
}

// formatPercent prints a percentage whole, or with one decimal.
func formatPercent(p float64) string {
	if p == math.Trunc(p) {
		return strconv.FormatFloat(p, 'f', 0, 64)
	}
	return strconv.FormatFloat(p, 'f', 1, 64)
}

// The JSON lines of ping.
type (
	pingReplyLine struct {
		Type    string  `json:"type"` // "reply"
		Peer    string  `json:"peer"`
		Addr    string  `json:"addr"`
		Seq     int     `json:"seq"`
		RTTMs   float64 `json:"rtt_ms"`
		SetupMs float64 `json:"stream_setup_ms,omitempty"`
	}
	pingLossLine struct {
		Type  string `json:"type"` // "error"
		Peer  string `json:"peer"`
		Addr  string `json:"addr"`
		Seq   int    `json:"seq"`
		Error string `json:"error"`
	}
	// pingConnectionLine says which connection the pings use, when
	// ping connected through a relay.
	pingConnectionLine struct {
		Type string `json:"type"` // "connection"
		Peer string `json:"peer"`
		Addr string `json:"addr"` // of the connection the pings use
		// Direct is true when hole punching gave a direct connection,
		// AfterMs after the relayed one opened.
		Direct    bool    `json:"direct"`
		Transport string  `json:"transport,omitempty"`
		AfterMs   float64 `json:"after_ms,omitempty"`
		// Reason says why the pings go through the relay.
		Reason string `json:"reason,omitempty"`
	}
	pingSummaryLine struct {
		Type        string  `json:"type"` // "summary"
		Peer        string  `json:"peer"`
		Addr        string  `json:"addr"`
		Transmitted int     `json:"transmitted"`
		Received    int     `json:"received"`
		LossPercent float64 `json:"loss_percent"`
		TimeMs      int64   `json:"time_ms"`
		MinMs       float64 `json:"min_ms"`
		AvgMs       float64 `json:"avg_ms"`
		MaxMs       float64 `json:"max_ms"`
		MdevMs      float64 `json:"mdev_ms"`
		ConnectMs   float64 `json:"connect_ms"`
	}
)

func runPing(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("ping", stderr)
	var count countFlag
	fl.Var(&count, "c", "stop after `N` pings (default: until interrupted)")
	interval := durationFlag{d: time.Second, min: 10 * time.Millisecond}
	fl.Var(&interval, "i", "send a ping every `INTERVAL`: seconds (1, 0.2) or a duration (200ms); at least 10ms")
	timeout := durationFlag{d: 10 * time.Second, min: time.Millisecond}
	fl.Var(&timeout, "W", "wait at most `TIMEOUT` for each reply (seconds or a duration); a later reply is lost")
	var deadline durationFlag
	fl.Var(&deadline, "w", "stop after `DEADLINE` (seconds or a duration), however many pings were sent")
	quiet := fl.Bool("q", false, "quiet: print the first line and the summary only")
	asJSON := fl.Bool("json", false, `print JSON lines: "reply" or "error" (a lost reply) for each ping, then a "summary"; `+
		`a "connection" before them when connected through a relay`)
	target := clientFlags(fl, false)
	target.holePunchFlags(fl)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	addr, err := oneArg(fl, "MADDR/p2p/ID")
	if err != nil {
		return err
	}
	out := printer{w: stdout, json: *asJSON}

	ctx, stop := signalContext()
	defer stop()
	if deadline.d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline.d)
		defer cancel()
	}
	sess, err := target.connect(ctx, addr)
	if err != nil {
		return out.fail("", err)
	}
	defer sess.h.Close()
	id, raddr := sess.peer.String(), sess.addr.String()
	out.textf("PING %s (%s): %d data bytes, connected in %.3f ms", id, raddr, ping.PayloadSize, ms(sess.connectTime))
	if relayed := limitedConn(sess.h, sess.peer); relayed != nil {
		// Through a relay: the peer starts a hole punch on its side,
		// which we answer from our --listen address, if any.
		var direct network.Conn
		if len(target.listen) > 0 {
			direct = awaitDirect(ctx, sess.h, sess.peer, holePunchWait)
		}
		l := pingConnectionLine{Type: "connection", Peer: id}
		if direct != nil {
			raddr = direct.RemoteMultiaddr().String()
			after := max(0, direct.Stat().Opened.Sub(relayed.Stat().Opened))
			l.Addr, l.Direct, l.Transport, l.AfterMs = raddr, true, direct.ConnState().Transport, round3(ms(after))
			if !*quiet {
				out.textf("direct connection: %s after %d ms", raddr, after.Milliseconds())
			}
		} else {
			l.Addr = relayed.RemoteMultiaddr().String()
			why := "hole punching gave none within " + holePunchWait.String()
			if len(target.listen) == 0 {
				why = "no --listen address to punch from"
			}
			l.Reason = why
			if !*quiet {
				out.textf("no direct connection: pinging through the relay (%s)", why)
			}
		}
		if !*quiet {
			out.emit(l)
		}
	}

	p := newPinger(sess.h, sess.peer, timeout.d)
	defer p.close()
	var st pingStats
	start := time.Now()
	err = p.run(ctx, int(count), interval.d, func(r pingResult) {
		st.add(r)
		if *quiet || r.interrupted {
			return
		}
		switch {
		case r.err != nil:
			why := reason(r.err)
			out.textf("seq=%d lost: %s", r.seq, why)
			out.emit(pingLossLine{Type: "error", Peer: id, Addr: raddr, Seq: r.seq, Error: why})
		case r.newStream:
			out.textf("%d bytes from %s: seq=%d time=%.3f ms (new stream: %.3f ms)", ping.PayloadSize, id, r.seq, ms(r.rtt), ms(r.setup))
			out.emit(pingReplyLine{Type: "reply", Peer: id, Addr: raddr, Seq: r.seq, RTTMs: round3(ms(r.rtt)), SetupMs: round3(ms(r.setup))})
		default:
			out.textf("%d bytes from %s: seq=%d time=%.3f ms", ping.PayloadSize, id, r.seq, ms(r.rtt))
			out.emit(pingReplyLine{Type: "reply", Peer: id, Addr: raddr, Seq: r.seq, RTTMs: round3(ms(r.rtt))})
		}
	})
	if err != nil {
		return out.fail(id, withReason("pinging "+id, err))
	}
	elapsed := time.Since(start)
	out.textf("--- %s ping statistics ---", id)
	out.textf("%d transmitted, %d received, %s%% loss, time %dms", st.sent, st.received, formatPercent(st.loss()), elapsed.Milliseconds())
	if st.received > 0 {
		out.textf("rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms", st.min, st.avg(), st.max, st.mdev())
	}
	out.emit(pingSummaryLine{Type: "summary", Peer: id, Addr: raddr,
		Transmitted: st.sent, Received: st.received, LossPercent: round3(st.loss()), TimeMs: elapsed.Milliseconds(),
		MinMs: round3(st.min), AvgMs: round3(st.avg()), MaxMs: round3(st.max), MdevMs: round3(st.mdev()),
		ConnectMs: round3(ms(sess.connectTime))})
	if st.received == 0 {
		// The summary says it: 100% loss, or nothing sent.
		return errReported
	}
	return nil
}

// holePunchWait bounds how long ping, connected to a peer through a
// relay, waits for hole punching to give a direct connection: the peer's
// three attempts (DCUtR) normally end well within it.
const holePunchWait = 10 * time.Second

// limitedConn returns h's connection to p if every connection to p is
// limited (relayed), nil otherwise.
func limitedConn(h *p2pnet.Host, p peer.ID) network.Conn {
	var limited network.Conn
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited {
			return nil
		}
		limited = c
	}
	return limited
}

// awaitDirect waits up to wait, or until ctx ends, for a direct
// connection of h to p (one that is not limited) and returns it, or nil.
func awaitDirect(ctx context.Context, h *p2pnet.Host, p peer.ID, wait time.Duration) network.Conn {
	got := make(chan network.Conn, 1)
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == p && !c.Stat().Limited {
			select {
			case got <- c:
			default:
			}
		}
	}}
	h.Network().Notify(nb)
	defer h.Network().StopNotify(nb)
	// One may have come before we listened for it.
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !c.IsClosed() {
			return c
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case c := <-got:
		return c
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}
