package compat

import (
	"context"
	"fmt"
	"time"

	lconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/peer"
)

// connMgr is the host's connection manager seen as go-libp2p's
// connmgr.ConnManager and connmgr.Decayer.
type connMgr struct{ m *connmgr.Manager }

var (
	_ lconnmgr.ConnManager = connMgr{}
	_ lconnmgr.Decayer     = connMgr{}
)

func (c connMgr) TagPeer(p lpeer.ID, tag string, v int) { c.m.TagPeer(peer.ID(p), tag, v) }
func (c connMgr) UntagPeer(p lpeer.ID, tag string)      { c.m.UntagPeer(peer.ID(p), tag) }

func (c connMgr) UpsertTag(p lpeer.ID, tag string, upsert func(int) int) {
	c.m.UpsertTag(peer.ID(p), tag, upsert)
}

func (c connMgr) GetTagInfo(p lpeer.ID) *lconnmgr.TagInfo {
	ti := c.m.GetTagInfo(peer.ID(p))
	if ti == nil {
		return nil
	}
	return &lconnmgr.TagInfo{FirstSeen: ti.FirstSeen, Value: ti.Value, Tags: ti.Tags, Conns: ti.Conns}
}

func (c connMgr) TrimOpenConns(ctx context.Context) { c.m.TrimOpenConns(ctx) }

// Notifee returns a notifiee that does nothing: the host registered the
// manager with its swarm when it started, so the manager already sees
// every connection.
func (c connMgr) Notifee() lnetwork.Notifiee { return &lnetwork.NoopNotifiee{} }

func (c connMgr) Protect(p lpeer.ID, tag string)        { c.m.Protect(peer.ID(p), tag) }
func (c connMgr) Unprotect(p lpeer.ID, tag string) bool { return c.m.Unprotect(peer.ID(p), tag) }
func (c connMgr) IsProtected(p lpeer.ID, tag string) bool {
	return c.m.IsProtected(peer.ID(p), tag)
}

// CheckLimit fails when l allows fewer connections than the high
// watermark, as go-libp2p's manager does.
func (c connMgr) CheckLimit(l lconnmgr.GetConnLimiter) error {
	_, high := c.m.Watermarks()
	if limit := l.GetConnLimit(); limit < high {
		return fmt.Errorf("compat: connection manager high watermark %d is above the connection limit %d", high, limit)
	}
	return nil
}

// Close does nothing: the manager belongs to the host, which closes it.
func (c connMgr) Close() error { return nil }

// RegisterDecayingTag registers a decaying tag with p2pnet's manager.
func (c connMgr) RegisterDecayingTag(name string, interval time.Duration, decay lconnmgr.DecayFn, bump lconnmgr.BumpFn) (lconnmgr.DecayingTag, error) {
	if decay == nil || bump == nil {
		return nil, fmt.Errorf("compat: decaying tag %q needs both functions", name)
	}
	value := func(v connmgr.DecayingValue) lconnmgr.DecayingValue {
		return lconnmgr.DecayingValue{Tag: decayingTag{v.Tag}, Peer: lpeer.ID(v.Peer), Added: v.Added, LastVisit: v.LastVisit, Value: v.Value}
	}
	t, err := c.m.RegisterDecayingTag(name, interval,
		func(v connmgr.DecayingValue) (int, bool) { return decay(value(v)) },
		func(v connmgr.DecayingValue, delta int) int { return bump(value(v), delta) })
	if err != nil {
		return nil, fmt.Errorf("compat: %w", err)
	}
	return decayingTag{t}, nil
}

// decayingTag is a p2pnet decaying tag seen as go-libp2p's.
type decayingTag struct{ t *connmgr.DecayingTag }

func (d decayingTag) Name() string                     { return d.t.Name() }
func (d decayingTag) Interval() time.Duration          { return d.t.Interval() }
func (d decayingTag) Bump(p lpeer.ID, delta int) error { return d.t.Bump(peer.ID(p), delta) }
func (d decayingTag) Remove(p lpeer.ID) error          { return d.t.Remove(peer.ID(p)) }
func (d decayingTag) Close() error                     { return d.t.Close() }
