package rcmgr

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// connScope is a connection's scope. It counts against the transient and
// system scopes until SetPeer, then against its peer's scope and the
// system scope. A connection let in by the allowlist uses the allowlisted
// transient and system scopes instead.
type connScope struct {
	scope
	dir network.Direction
	// shared says the remote address counts towards the per-source caps
	// of the Shares (it is neither allowlisted nor exempt loopback).
	shared bool

	// Guarded by m.mu.
	ipCounted     bool // holds a slot of the per-IP limits
	transientSlot bool // holds one of its source's transient connections
	allowlisted   bool // counts against the allowlisted scopes

	endpoint ma.Multiaddr
	ip       netip.Addr // the remote IP, if the endpoint has one

	// Guarded by m.mu.
	peer         *peerScope
	unnegotiated int // inbound streams on it that have not named a protocol
}

var (
	_ network.ConnManagementScope = (*connScope)(nil)
	_ network.ConnScope           = (*connScope)(nil)
)

// source returns the source of the remote address (see Shares), or the
// zero Prefix when it has no IP. It is computed rather than kept: every
// connection would otherwise carry 32 bytes more.
func (c *connScope) source() netip.Prefix {
	if !c.ip.IsValid() {
		return netip.Prefix{}
	}
	return c.m.sourceOf(c.ip)
}

// PeerScope returns the scope of the connection's peer, or nil before
// SetPeer.
func (c *connScope) PeerScope() network.PeerScope {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	if c.peer == nil {
		return nil
	}
	return c.peer
}

// SetPeer moves the connection from the transient scope into p's scope,
// which frees its source's transient connection slot. When p's limits
// refuse, the connection stays where it was.
//
// A connection let in by the allowlist stays under the allowlisted system
// scope when the allowlist admits p at the connection's address. When it
// does not (the matching entries name other peers), the connection moves
// under the normal system scope, whose limits must then accept it.
func (c *connScope) SetPeer(p peer.ID) error {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.done {
		return c.closedError()
	}
	if c.peer != nil {
		return fmt.Errorf("%s: %w to peer %s", c.name(), ErrAlreadyAttached, c.peer.peerID)
	}
	ps := m.peerLocked(p)
	defer func() {
		// moveLocked took the reference the connection keeps.
		m.decRefLocked(&ps.scope)
		m.maybeSweepLocked()
	}()

	transient, system := c.up[0], c.up[1]
	if c.allowlisted && !m.allowlist.allows(p, c.ip) {
		add := [2]*scope{&ps.scope, m.system}
		drop := [2]*scope{transient, system}
		if err := m.moveLocked(&c.scope, add[:], drop[:]); err != nil {
			return fmt.Errorf("%s: the allowlist admits %s only for other peers than %s, and the normal limits refuse the connection: %w", c.name(), c.ip, p, err)
		}
		c.allowlisted = false
		c.setUp(&ps.scope, m.system)
	} else {
		add := [1]*scope{&ps.scope}
		drop := [1]*scope{transient}
		if err := m.moveLocked(&c.scope, add[:], drop[:]); err != nil {
			return err
		}
		c.setUp(&ps.scope, system)
	}
	c.peer = ps
	ps.conns = append(ps.conns, c)
	m.releaseTransientConnLocked(c)
	return nil
}

// Done releases everything the connection and its spans hold, once.
func (c *connScope) Done() {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.done {
		return
	}
	if c.ipCounted {
		m.perIP.removeLocked(c.ip)
		c.ipCounted = false
	}
	m.releaseTransientConnLocked(c)
	if ps := c.peer; ps != nil {
		if i := slices.Index(ps.conns, c); i >= 0 {
			ps.conns = slices.Delete(ps.conns, i, i+1)
		}
	}
	m.unlinkOpenLocked(&c.scope)
	m.doneLocked(&c.scope)
	m.maybeSweepLocked()
}
