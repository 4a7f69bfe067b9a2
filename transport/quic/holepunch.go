package quic

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"time"

	"github.com/p2pnet/p2pnet/peer"
)

// HolePunchTimeout is how long a hole-punching Dial waits for the peer's
// connection, as in go-libp2p.
const HolePunchTimeout = 5 * time.Second

// Hole-punching packets: random bytes sent at uniformly random intervals
// between punchMinInterval and punchMaxInterval, as the DCUtR spec asks
// of the side that acts as the QUIC server.
const (
	punchPacketSize  = 64
	punchMinInterval = 10 * time.Millisecond
	punchMaxInterval = 200 * time.Millisecond
)

// holePunch punches a hole from our listening socket towards ua and waits
// for p's connection from there (see Dial).
func (t *Transport) holePunch(ctx context.Context, ua *net.UDPAddr, family int, p peer.ID) (*Conn, error) {
	if p == "" {
		return nil, errors.New("quic: hole punching needs the peer's ID")
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrTransportClosed
	}
	ep := t.listeningEndpointLocked(family, ua.IP, true)
	if ep == nil {
		t.mu.Unlock()
		return nil, ErrNoListener
	}
	ep.conns++ // keeps the socket open while we send
	key := punchKey{addr: addrPort(ua), peer: p}
	if _, ok := t.punches[key]; ok {
		t.mu.Unlock()
		t.releaseEndpoint(ep)
		return nil, ErrHolePunchInProgress
	}
	got := make(chan *Conn, 1)
	t.punches[key] = got
	t.mu.Unlock()
	defer t.releaseEndpoint(ep)

	if t.punchRegistered != nil {
		t.punchRegistered()
	}
	ctx, cancel := context.WithTimeoutCause(ctx, HolePunchTimeout, ErrHolePunchTimeout)
	defer cancel()
	c, err := punch(ctx, func(b []byte) error {
		_, err := ep.qt.WriteTo(b, ua)
		return err
	}, got, t.done)

	t.mu.Lock()
	delete(t.punches, key) // unless deliverPunched did
	t.mu.Unlock()
	if err != nil {
		// The connection may have arrived as we gave up.
		select {
		case c = <-got:
			return c, nil
		default:
		}
		return nil, err
	}
	return c, nil
}

// punch sends packets of random bytes through send, at random intervals
// of punchMinInterval to punchMaxInterval, until a connection arrives on
// got, ctx ends or done is closed.
func punch(ctx context.Context, send func([]byte) error, got <-chan *Conn, done <-chan struct{}) (*Conn, error) {
	var payload [punchPacketSize]byte
	var timer *time.Timer
	for {
		rand.Read(payload[:]) // never fails
		if err := send(payload[:]); err != nil {
			return nil, fmt.Errorf("sending a hole-punching packet: %w", err)
		}
		d := punchMinInterval + mrand.N(punchMaxInterval-punchMinInterval+1)
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		} else {
			timer.Reset(d)
		}
		select {
		case c := <-got:
			return c, nil
		case <-timer.C:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-done:
			return nil, ErrTransportClosed
		}
	}
}

// deliverPunched hands c to the hole-punching Dial waiting for it, if
// any, and reports whether there was one.
func (t *Transport) deliverPunched(c *Conn) bool {
	ua, ok := c.qc.RemoteAddr().(*net.UDPAddr)
	if !ok {
		return false
	}
	key := punchKey{addr: addrPort(ua), peer: c.remote}
	t.mu.Lock()
	defer t.mu.Unlock()
	got, ok := t.punches[key]
	if !ok {
		return false
	}
	delete(t.punches, key)
	got <- c // never blocks: one delivery per channel of capacity 1
	return true
}
