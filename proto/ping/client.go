package ping

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
)

// Result is the outcome of one ping: its round-trip time, or an error.
type Result struct {
	// RTT is the time from writing the payload to reading its echo.
	RTT time.Duration
	// Err is why the ping failed; RTT is zero then.
	Err error
}

// Ping pings p over one stream, again and again, until ctx is done. The
// channel receives one Result per round trip, as fast as the caller reads
// them; it is closed after ctx is done or after the first failure (whose
// Result carries the error). The caller must read the channel until it is
// closed or cancel ctx, or the goroutine behind it waits forever.
//
// The spec allows a dialer one ping stream per peer, and listeners (ours
// included) serve at most two per peer: do not run several Pings or
// PingOnces to one peer at the same time.
func Ping(ctx context.Context, h Host, p peer.ID) <-chan Result {
	return pingLoop(ctx, h, p, nil)
}

// Ping is the package's Ping, with each round trip reported to the
// service's tracer (WithTracer).
func (s *Service) Ping(ctx context.Context, p peer.ID) <-chan Result {
	return pingLoop(ctx, s.h, p, s.tracer)
}

// PingOnce is the package's PingOnce, with the round trip reported to
// the service's tracer (WithTracer).
func (s *Service) PingOnce(ctx context.Context, p peer.ID) (time.Duration, error) {
	return pingOnce(ctx, s.h, p, s.tracer)
}

// pingLoop is Ping, reporting to t when it is not nil.
func pingLoop(ctx context.Context, h Host, p peer.ID, t Tracer) <-chan Result {
	out := make(chan Result)
	c, err := newClient(ctx, h, p, t)
	if err != nil {
		go func() {
			select {
			case out <- Result{Err: err}:
			case <-ctx.Done():
			}
			close(out)
		}()
		return out
	}
	go func() {
		defer close(out)
		defer c.close()
		for ctx.Err() == nil {
			rtt, err := c.ping()
			if ctx.Err() != nil {
				return // the reset by ctx explains err; nobody waits
			}
			c.record(rtt, err)
			select {
			case out <- Result{RTT: rtt, Err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// PingOnce pings p once, on a stream of its own, and returns the
// round-trip time.
func PingOnce(ctx context.Context, h Host, p peer.ID) (time.Duration, error) {
	return pingOnce(ctx, h, p, nil)
}

// pingOnce is PingOnce, reporting to t when it is not nil.
func pingOnce(ctx context.Context, h Host, p peer.ID, t Tracer) (time.Duration, error) {
	c, err := newClient(ctx, h, p, t)
	if err != nil {
		return 0, err
	}
	defer c.close()
	if d, ok := ctx.Deadline(); ok {
		c.s.SetDeadline(d)
	}
	rtt, err := c.ping()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		} else if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			// The stream's deadline, set from ctx's, fired before ctx's
			// own timer did.
			err = context.DeadlineExceeded
		}
		c.record(0, err)
		return 0, err
	}
	c.record(rtt, nil)
	return rtt, nil
}

// client is the dialing side of one ping stream.
type client struct {
	h      Host
	p      peer.ID
	s      network.Stream
	stop   func() bool // stops resetting s when ctx is done
	rng    *rand.ChaCha8
	buf    [PayloadSize]byte
	rbuf   [PayloadSize]byte
	ok     bool // the last round trip succeeded
	scope  network.StreamScope
	tracer Tracer // nil: none
}

// newClient opens the stream. The stream is reset as soon as ctx is done,
// which aborts a round trip in progress.
func newClient(ctx context.Context, h Host, p peer.ID, t Tracer) (*client, error) {
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "ping"), p, ID)
	if err != nil {
		return nil, fmt.Errorf("ping: opening a stream to %s: %w", p, err)
	}
	scope := s.Scope()
	if err := scope.SetService(ServiceName); err != nil {
		s.Reset()
		return nil, fmt.Errorf("ping: %w", err)
	}
	if err := scope.ReserveMemory(2*PayloadSize, network.ReservationPriorityAlways); err != nil {
		s.Reset()
		return nil, fmt.Errorf("ping: %w", err)
	}
	var seed [32]byte
	crand.Read(seed[:]) // never fails (crypto/rand's documented guarantee)
	c := &client{h: h, p: p, s: s, rng: rand.NewChaCha8(seed), scope: scope, tracer: t}
	c.stop = context.AfterFunc(ctx, func() { s.Reset() })
	return c, nil
}

// ping makes one round trip.
func (c *client) ping() (time.Duration, error) {
	c.ok = false
	c.rng.Read(c.buf[:])
	start := time.Now()
	if _, err := c.s.Write(c.buf[:]); err != nil {
		return 0, fmt.Errorf("ping: sending to %s: %w", c.p, err)
	}
	if _, err := io.ReadFull(c.s, c.rbuf[:]); err != nil {
		return 0, fmt.Errorf("ping: reading the echo of %s: %w", c.p, err)
	}
	rtt := time.Since(start)
	if !bytes.Equal(c.buf[:], c.rbuf[:]) {
		return 0, fmt.Errorf("%w (peer %s)", ErrPayloadMismatch, c.p)
	}
	c.ok = true
	return rtt, nil
}

// record gives a successful round-trip time to the peerstore, which
// keeps their moving average (Peerstore.LatencyEWMA), and every outcome
// to the tracer.
func (c *client) record(rtt time.Duration, err error) {
	if c.tracer != nil {
		c.tracer.RoundTrip(rtt, err)
	}
	if err != nil {
		return
	}
	c.h.Peerstore().RecordLatency(c.p, rtt)
}

// close ends the stream: politely (closing our side, as the spec asks)
// after a successful round trip, with a reset otherwise.
func (c *client) close() {
	c.stop()
	c.scope.ReleaseMemory(2 * PayloadSize)
	if c.ok {
		c.s.Close()
		return
	}
	c.s.Reset()
}
