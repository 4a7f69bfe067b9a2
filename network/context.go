package network

import (
	"context"
	"time"
)

// DialPeerTimeout is the default timeout for one call to DialPeer. Each of
// several concurrent calls has its own timeout; WithDialPeerTimeout
// overrides it for the calls made with that context.
var DialPeerTimeout = 60 * time.Second

// Each option has a key type of its own so that no other package can set
// or read it by accident.
type (
	noDialKey          struct{}
	dialPeerTimeoutKey struct{}
	forceDirectDialKey struct{}
	simConnectKey      struct{}
	allowLimitedKey    struct{}
)

// simConnect is the value stored under simConnectKey.
type simConnect struct {
	isClient bool
	reason   string
}

// WithNoDial returns a context telling the network not to dial when a
// stream is opened: NewStream then uses an existing connection or fails
// with ErrNoConn. reason says who asked, for debugging.
func WithNoDial(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, noDialKey{}, reason)
}

// GetNoDial reports whether WithNoDial is set on ctx, and its reason.
func GetNoDial(ctx context.Context) (nodial bool, reason string) {
	v := ctx.Value(noDialKey{})
	if v == nil {
		return false, ""
	}
	return true, v.(string)
}

// WithDialPeerTimeout returns a context whose DialPeer calls time out
// after timeout instead of DialPeerTimeout. The timeout applies to each
// call on its own.
func WithDialPeerTimeout(ctx context.Context, timeout time.Duration) context.Context {
	return context.WithValue(ctx, dialPeerTimeoutKey{}, timeout)
}

// GetDialPeerTimeout returns the DialPeer timeout set on ctx by
// WithDialPeerTimeout, or DialPeerTimeout when none is set.
func GetDialPeerTimeout(ctx context.Context) time.Duration {
	if d, ok := LookupDialPeerTimeout(ctx); ok {
		return d
	}
	return DialPeerTimeout
}

// LookupDialPeerTimeout returns the DialPeer timeout set on ctx by
// WithDialPeerTimeout and true, or false when none is set, so that a
// network with a default of its own can apply it.
func LookupDialPeerTimeout(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(dialPeerTimeoutKey{}).(time.Duration)
	return d, ok
}

// WithForceDirectDial returns a context telling the network to dial the
// peer directly even if a relayed (limited) connection to it exists, and
// to ignore dial backoff. Experimental, as in libp2p.
func WithForceDirectDial(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, forceDirectDialKey{}, reason)
}

// GetForceDirectDial reports whether WithForceDirectDial is set on ctx,
// and its reason. Experimental, as in libp2p.
func GetForceDirectDial(ctx context.Context) (forceDirect bool, reason string) {
	v := ctx.Value(forceDirectDialKey{})
	if v == nil {
		return false, ""
	}
	return true, v.(string)
}

// WithSimultaneousConnect returns a context telling the transports to use
// hole-punching logic: both peers dial each other at the same time, and
// isClient says which side acts as the client of the resulting
// connection. Experimental, as in libp2p.
func WithSimultaneousConnect(ctx context.Context, isClient bool, reason string) context.Context {
	return context.WithValue(ctx, simConnectKey{}, simConnect{isClient: isClient, reason: reason})
}

// GetSimultaneousConnect reports whether WithSimultaneousConnect is set on
// ctx, which side is the client, and the reason. Experimental, as in
// libp2p.
func GetSimultaneousConnect(ctx context.Context) (simconnect bool, isClient bool, reason string) {
	v, ok := ctx.Value(simConnectKey{}).(simConnect)
	if !ok {
		return false, false, ""
	}
	return true, v.isClient, v.reason
}

// WithAllowLimitedConn returns a context telling the network that a
// limited connection (for example one through a relay) may carry the
// streams opened with it.
func WithAllowLimitedConn(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, allowLimitedKey{}, reason)
}

// GetAllowLimitedConn reports whether WithAllowLimitedConn (or the
// deprecated WithUseTransient) is set on ctx, and its reason.
func GetAllowLimitedConn(ctx context.Context) (usetransient bool, reason string) {
	v := ctx.Value(allowLimitedKey{})
	if v == nil {
		return false, ""
	}
	return true, v.(string)
}

// WithUseTransient sets the same option as WithAllowLimitedConn.
//
// Deprecated: Use WithAllowLimitedConn.
func WithUseTransient(ctx context.Context, reason string) context.Context {
	return WithAllowLimitedConn(ctx, reason)
}

// GetUseTransient reads the same option as GetAllowLimitedConn.
//
// Deprecated: Use GetAllowLimitedConn.
func GetUseTransient(ctx context.Context) (usetransient bool, reason string) {
	return GetAllowLimitedConn(ctx)
}
