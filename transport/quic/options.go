package quic

import (
	"fmt"
	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/transport"
	"time"
)

// Defaults of the options, the values go-libp2p v0.51.0 uses.
const (
	// DefaultIdleTimeout closes a connection that received nothing for
	// this long. The peers use the smaller of their two values.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultKeepAlivePeriod is how often an otherwise idle connection
	// sends a PING, so that neither the idle timeout nor a NAT mapping
	// expires. quic-go shortens it to half the idle timeout if need be.
	DefaultKeepAlivePeriod = 15 * time.Second
	// DefaultHandshakeTimeout aborts a handshake that received nothing
	// for this long; a handshake may take twice this in all.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultMaxIncomingStreams is how many bidirectional streams the
	// remote may have open at once on one connection; OpenStream on the
	// remote side waits while the limit is reached.
	DefaultMaxIncomingStreams = 256
)

// Defaults of the handshake limits, which are p2pnet's own (go-libp2p
// takes a transient connection slot for each handshake and demands a
// Retry only at a rate per subnet, never from loopback).
const (
	// DefaultRetryThreshold is how many inbound handshakes from addresses
	// nobody validated may be in progress before new clients must prove
	// their address with a Retry. Such handshakes may come from spoofed
	// addresses and cost an attacker one packet each, so they get a
	// small share (1/8) of DefaultMaxHandshakes; a client pays the Retry's
	// round trip only while that many are in progress, which takes a
	// burst of new clients or a flood.
	DefaultRetryThreshold = 8
	// DefaultMaxHandshakes is how many inbound handshakes may be in
	// progress at once, as many as TCP's upgrader runs
	// (upgrader.DefaultMaxInflightInbound); beyond it new clients are
	// refused with CONNECTION_REFUSED. Handshakes hold no slot in the
	// resource manager, so this bounds what they cost: the handshake's
	// cryptography, and quic-go's state, measured at about 56 KiB of
	// heap and 4 goroutines each (3.5 MiB and 256 goroutines at this
	// default).
	DefaultMaxHandshakes = 64
)

// Flow-control windows. A stream starts with 512 KiB of receive window
// and a connection with 768 KiB (quic-go's defaults); quic-go's
// auto-tuning grows them while the application reads faster than the
// round trip allows, up to 10 MiB per stream and 15 MiB per connection
// (go-libp2p's values), enough for one stream to fill a link of about
// 800 Mbit/s at a 100 ms round trip. Growth beyond the initial connection
// window is reserved in the connection's resource scope.
const (
	initialStreamWindow = 512 << 10
	maxStreamWindow     = 10 << 20
	initialConnWindow   = 768 << 10
	maxConnWindow       = 15 << 20
)

// Option configures a Transport in New.
type Option func(*options) error

type options struct {
	idleTimeout      time.Duration
	keepAlive        time.Duration
	handshakeTimeout time.Duration
	maxStreams       int64
	retryThreshold   int
	maxHandshakes    int
	gater            connmgr.ConnectionGater
	tracer           transport.HandshakeTracer
}

func defaultOptions() options {
	return options{
		idleTimeout:      DefaultIdleTimeout,
		keepAlive:        DefaultKeepAlivePeriod,
		handshakeTimeout: DefaultHandshakeTimeout,
		maxStreams:       DefaultMaxIncomingStreams,
		retryThreshold:   DefaultRetryThreshold,
		maxHandshakes:    DefaultMaxHandshakes,
	}
}

// WithIdleTimeout sets how long a connection may receive nothing before
// it is closed (default DefaultIdleTimeout). It must be positive. A peer
// that vanishes without closing is noticed after this long.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: idle timeout %v", ErrInvalidOption, d)
		}
		o.idleTimeout = d
		return nil
	}
}

// WithKeepAlivePeriod sets how often an idle connection sends a PING
// (default DefaultKeepAlivePeriod); 0 sends none, leaving idle
// connections to time out. It must not be negative.
func WithKeepAlivePeriod(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: keep-alive period %v", ErrInvalidOption, d)
		}
		o.keepAlive = d
		return nil
	}
}

// WithHandshakeTimeout sets how long a handshake may receive nothing
// before it is aborted (default DefaultHandshakeTimeout); the whole
// handshake may take twice this. It must be positive.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: handshake timeout %v", ErrInvalidOption, d)
		}
		o.handshakeTimeout = d
		return nil
	}
}

// WithMaxIncomingStreams sets how many bidirectional streams the remote
// may have open at once on one connection (default
// DefaultMaxIncomingStreams). It must be positive.
func WithMaxIncomingStreams(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: max incoming streams %d", ErrInvalidOption, n)
		}
		o.maxStreams = int64(n)
		return nil
	}
}

// WithRetryThreshold sets how many inbound handshakes from addresses
// nobody validated may be in progress before new clients must prove
// their address with a Retry (default DefaultRetryThreshold); 0 makes
// every client prove it, at the cost of one round trip. It must not be
// negative. A threshold at or above WithMaxHandshakes never asks for a
// Retry: the budget refuses first.
func WithRetryThreshold(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("%w: retry threshold %d", ErrInvalidOption, n)
		}
		o.retryThreshold = n
		return nil
	}
}

// WithMaxHandshakes sets how many inbound handshakes may be in progress
// at once (default DefaultMaxHandshakes); further clients are refused
// with CONNECTION_REFUSED until some finish or time out. It must be
// positive.
func WithMaxHandshakes(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: max handshakes %d", ErrInvalidOption, n)
		}
		o.maxHandshakes = n
		return nil
	}
}

// WithConnectionGater has g vet every connection: InterceptAccept and
// InterceptSecured for inbound ones once their handshake has proved the
// peer (QUIC's handshake ends before a connection is accepted), and
// InterceptSecured for outbound ones. A refusal closes the connection
// before the resource manager accounts for it and is a
// *connmgr.GatedError. Default: no gater.
func WithConnectionGater(g connmgr.ConnectionGater) Option {
	return func(o *options) error {
		o.gater = g
		return nil
	}
}

// WithHandshakeTracer tells t of every handshake: dialed ones (hole
// punches aside, whose time is the peer's to choose), and inbound ones
// that completed, timed from their first packet. Default: none.
func WithHandshakeTracer(t transport.HandshakeTracer) Option {
	return func(o *options) error {
		o.tracer = t
		return nil
	}
}
