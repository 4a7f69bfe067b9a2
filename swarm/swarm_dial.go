package swarm

import (
	"context"
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// DNS resolution limits, go-libp2p's values.
const (
	// maxResolvedAddrs bounds the addresses one dial considers after DNS
	// resolution.
	maxResolvedAddrs = 100
	// maxDNSAddrRecursion bounds nested /dnsaddr lookups.
	maxDNSAddrRecursion = 4
)

// DialPeer returns a connection to p: the best existing one (see
// NewStream), or a new one. Concurrent calls for the same peer share one
// dial worker, which dials p's addresses from the peerstore in the order
// and at the pace of the dial ranker; a call that gives up does not stop
// dials that other calls still wait for. The call as a whole is bounded by
// the DialPeer timeout (see WithDialPeerTimeout), each address by the
// swarm's dial timeout. A failure is a *DialError.
//
// Under network.WithForceDirectDial only a direct (not relayed)
// connection is returned or dialed, and addresses in backoff are dialed
// anyway. Under network.WithSimultaneousConnect every address is dialed
// at once. Under both, as otherwise, public UDP and IPv6 addresses are
// left out while black-hole detection blocks them (see BlackHoleStatus;
// go-libp2p filters hole-punching dials the same way); the DialError
// records them with ErrDialRefusedBlackHole. A new connection is returned
// after its Connected notifications have returned.
func (s *Swarm) DialPeer(ctx context.Context, p peer.ID) (network.Conn, error) {
	c, err := s.dialPeer(ctx, p)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Swarm) dialPeer(ctx context.Context, p peer.ID) (*Conn, error) {
	if p == s.local {
		return nil, &DialError{Peer: p, Cause: ErrDialToSelf}
	}
	if c := s.bestAcceptableConn(ctx, p); c != nil {
		return c, nil
	}
	if err := p.Validate(); err != nil {
		return nil, &DialError{Peer: p, Cause: err}
	}
	if g := s.cfg.gater; g != nil && !g.InterceptPeerDial(p) {
		return nil, &DialError{Peer: p, Cause: &connmgr.GatedError{Hook: connmgr.HookPeerDial, Peer: p}}
	}
	ctx, cancel := context.WithTimeout(ctx, s.dialPeerTimeout(ctx))
	defer cancel()

	w, err := s.joinDialWorker(p)
	if err != nil {
		return nil, &DialError{Peer: p, Cause: err}
	}
	c, err := w.dial(ctx)
	s.leaveDialWorker(w)
	if err != nil {
		return nil, err
	}
	if c.RemotePeer() != p {
		// dialAddr checked already; a connection to the wrong peer must
		// never be handed out.
		c.Close()
		return nil, &DialError{Peer: p, Cause: ErrWrongPeer}
	}
	if err := c.waitConnected(ctx); err != nil {
		return nil, &DialError{Peer: p, Cause: err}
	}
	return c, nil
}

// joinDialWorker returns the dial worker of p, starting one if needed,
// and counts the caller as one of its waiters.
func (s *Swarm) joinDialWorker(p peer.ID) (*dialWorker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSwarmClosed
	}
	w := s.dials[p]
	if w == nil {
		w = newDialWorker(s, p)
		s.dials[p] = w
		s.wg.Add(1)
		go w.loop()
	}
	w.waiters++
	return w, nil
}

// leaveDialWorker uncounts a waiter of w, and stops w when none is left.
func (s *Swarm) leaveDialWorker(w *dialWorker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.waiters--
	if w.waiters > 0 {
		return
	}
	if s.dials[w.peer] == w {
		delete(s.dials, w.peer)
	}
	w.cancel()
}

// NewStream opens a stream to p on the best connection: an unlimited one
// over a limited one, a direct one over a relayed one, then the one with
// more streams, then the newest. Without a connection it dials p, unless
// ctx carries network.WithNoDial, in which case it fails with
// network.ErrNoConn. When only limited connections exist and ctx does not
// carry network.WithAllowLimitedConn, it waits up to the DialPeer timeout
// for a direct connection (made by hole punching or connection reversal)
// and fails with network.ErrLimitedConn if none comes; under WithNoDial it
// fails at once. See Conn.NewStream for the stream's own timeout.
func (s *Swarm) NewStream(ctx context.Context, p peer.ID) (network.Stream, error) {
	noDial, _ := network.GetNoDial(ctx)
	allowLimited, _ := network.GetAllowLimitedConn(ctx)
	for attempt := 0; ; attempt++ {
		c := s.bestConn(p)
		if c == nil {
			if noDial {
				return nil, fmt.Errorf("swarm: stream to %s: %w", p, network.ErrNoConn)
			}
			var err error
			if c, err = s.dialPeer(ctx, p); err != nil {
				return nil, err
			}
		}
		if c.stat.Limited && !allowLimited {
			if noDial {
				return nil, fmt.Errorf("swarm: stream to %s: %w", p, network.ErrLimitedConn)
			}
			var err error
			if c, err = s.waitForDirectConn(ctx, p); err != nil {
				return nil, err
			}
		}
		st, err := c.newStream(ctx)
		if err != nil {
			if c.IsClosed() && attempt == 0 {
				// The connection died under us; another one, or a new
				// dial, may do.
				continue
			}
			return nil, err
		}
		return st, nil
	}
}

// waitForDirectConn waits up to the DialPeer timeout for an unlimited
// connection to p.
func (s *Swarm) waitForDirectConn(ctx context.Context, p peer.ID) (*Conn, error) {
	s.mu.Lock()
	c := s.bestConnLocked(p)
	if c == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("swarm: stream to %s: %w", p, network.ErrNoConn)
	}
	if !c.stat.Limited {
		s.mu.Unlock()
		return c, nil
	}
	w := s.directWaiters[p]
	if w == nil {
		w = &directWaiter{ch: make(chan struct{})}
		s.directWaiters[p] = w
	}
	w.n++
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.dialPeerTimeout(ctx))
	defer cancel()
	select {
	case <-w.ch:
		// addConn removed w from directWaiters.
		c := s.bestConn(p)
		if c == nil {
			return nil, fmt.Errorf("swarm: stream to %s: %w", p, network.ErrNoConn)
		}
		if c.stat.Limited {
			return nil, fmt.Errorf("swarm: stream to %s: %w", p, network.ErrLimitedConn)
		}
		return c, nil
	case <-ctx.Done():
		s.mu.Lock()
		w.n--
		if w.n == 0 && s.directWaiters[p] == w {
			delete(s.directWaiters, p)
		}
		s.mu.Unlock()
		return nil, fmt.Errorf("swarm: no direct connection to %s: %w: %w", p, network.ErrLimitedConn, ctx.Err())
	}
}

// addrsForDial returns the addresses of p worth dialing, and a DialError
// holding the reasons other addresses were dropped. When none is left it
// returns nil and the DialError with its Cause set.
func (s *Swarm) addrsForDial(ctx context.Context, p peer.ID) ([]ma.Multiaddr, *DialError) {
	derr := &DialError{Peer: p}
	addrs := s.peers.Addrs(p)
	if len(addrs) == 0 {
		derr.Cause = network.ErrNoRemoteAddrs
		return nil, derr
	}
	addrs = s.resolveAddrs(ctx, p, addrs, derr)

	forceDirect, _ := network.GetForceDirectDial(ctx)
	ours := s.ownAddrs()
	seen := make(map[string]struct{}, len(addrs))
	good := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		a, id := peer.SplitAddr(a)
		if id != "" && id != p {
			derr.record(a, fmt.Errorf("%w: address of %s", ErrWrongPeer, id))
			continue
		}
		if len(a) == 0 {
			continue
		}
		key := string(a.Bytes())
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		switch {
		case manet.IsIPUnspecified(a), manet.IsIP6LinkLocal(a):
			// Dialing 0.0.0.0 reaches ourselves on some systems; a
			// link-local address needs a zone we do not know.
		case forceDirect && isRelayAddr(a):
		case ma.Contains(ours, a):
			derr.record(a, ErrDialToSelf)
		case s.dialTransport(a) == nil:
			derr.record(a, ErrNoTransport)
		case !forceDirect && s.backoff.backedOff(p, a):
			derr.record(a, ErrDialBackoff)
		case s.cfg.gater != nil && !s.cfg.gater.InterceptAddrDial(p, a):
			derr.record(a, &connmgr.GatedError{Hook: connmgr.HookAddrDial, Peer: p, Addr: a})
		default:
			good = append(good, a)
		}
	}
	good = s.cfg.blackHoles.filter(good, derr)
	if t := s.cfg.tracer; t != nil {
		for i := range derr.Addrs {
			t.DialSkipped(derr.Addrs[i].Addr, derr.Addrs[i].Err)
		}
	}
	if len(good) == 0 {
		derr.Cause = ErrNoGoodAddresses
		return nil, derr
	}
	return good, derr
}

// resolveAddrs resolves /dnsaddr, /dns, /dns4 and /dns6 addresses with the
// configured resolver, recording failures in derr. Without a resolver it
// returns addrs as they are.
func (s *Swarm) resolveAddrs(ctx context.Context, p peer.ID, addrs []ma.Multiaddr, derr *DialError) []ma.Multiaddr {
	r := s.cfg.resolver
	if r == nil {
		return addrs
	}
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		limit := maxResolvedAddrs - len(out)
		if limit <= 0 {
			break
		}
		if len(a) == 0 {
			continue
		}
		var res []ma.Multiaddr
		var err error
		if a[0].Code() == ma.P_DNSADDR {
			res, err = r.ResolveDNSAddr(ctx, p, a, maxDNSAddrRecursion, limit)
		} else {
			res = []ma.Multiaddr{a}
		}
		if err != nil {
			derr.record(a, err)
			continue
		}
		// /dnsaddr records may name /dns hosts: resolve those too.
		for _, ra := range res {
			if len(out) >= maxResolvedAddrs {
				break
			}
			switch ra[0].Code() {
			case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
				if nk, ok := s.transportFor(ra).(transport.NameKeeper); ok {
					ra = nk.KeepName(ra)
				}
				ips, err := r.ResolveDNSComponent(ctx, ra, maxResolvedAddrs-len(out))
				if err != nil {
					derr.record(ra, err)
					continue
				}
				out = append(out, ips[:min(len(ips), maxResolvedAddrs-len(out))]...)
			default:
				out = append(out, ra)
			}
		}
	}
	return out
}

// ownAddrs returns the addresses we listen on, unspecified ones expanded.
func (s *Swarm) ownAddrs() []ma.Multiaddr {
	addrs, err := s.InterfaceListenAddresses()
	if err != nil {
		return s.ListenAddresses()
	}
	return addrs
}

// CanDial reports whether the swarm would dial p at addr: addr is not
// unspecified, link-local or one of ours, does not name another peer, is
// not of a kind that black-hole detection blocks (asking counts as no
// dial request), and a transport can dial it.
func (s *Swarm) CanDial(p peer.ID, addr ma.Multiaddr) bool {
	if p == s.local {
		return false
	}
	a, id := peer.SplitAddr(addr)
	if (id != "" && id != p) || len(a) == 0 {
		return false
	}
	if manet.IsIPUnspecified(a) || manet.IsIP6LinkLocal(a) || ma.Contains(s.ownAddrs(), a) {
		return false
	}
	if s.cfg.blackHoles.refuses(a) {
		return false
	}
	return s.dialTransport(a) != nil
}

// dialAddr dials p at addr with the transport for addr, within the global
// limit on file-descriptor dials and the per-address timeout.
func (s *Swarm) dialAddr(ctx context.Context, p peer.ID, addr ma.Multiaddr) (transport.CapableConn, error) {
	t := s.dialTransport(addr)
	if t == nil {
		return nil, ErrNoTransport
	}
	if usesFD(addr) {
		select {
		case s.fdDials <- struct{}{}:
			defer func() { <-s.fdDials }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	timeout := s.cfg.dialTimeout
	if manet.IsPrivateAddr(addr) {
		timeout = min(timeout, s.cfg.dialTimeoutLocal)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var start time.Time
	if s.cfg.tracer != nil {
		start = time.Now()
	}
	tc, err := t.Dial(ctx, addr, p)
	// Any failure counts, a cancellation too: over a black hole a QUIC
	// dial is usually cancelled when a later TCP dial wins.
	s.cfg.blackHoles.record(addr, err == nil)
	if err == nil && tc.RemotePeer() != p {
		got := tc.RemotePeer()
		tc.Close()
		tc, err = nil, fmt.Errorf("%w: dialed %s, reached %s", ErrWrongPeer, p, got)
	}
	if tr := s.cfg.tracer; tr != nil {
		tr.DialDone(addr, time.Since(start), err)
	}
	if err != nil {
		return nil, err
	}
	return tc, nil
}

// usesFD reports whether dialing addr takes a file descriptor of its own:
// TCP and Unix sockets do, QUIC shares one UDP socket, and a relay address
// uses the relay's existing connection.
func usesFD(addr ma.Multiaddr) bool {
	return !isRelayAddr(addr) && (hasProtocol(addr, ma.P_TCP) || hasProtocol(addr, ma.P_UNIX))
}

// dialPeerTimeout bounds a DialPeer call made with ctx: the timeout ctx
// sets with network.WithDialPeerTimeout, else WithDialPeerTimeout's, else
// network.DialPeerTimeout.
func (s *Swarm) dialPeerTimeout(ctx context.Context) time.Duration {
	if d, ok := network.LookupDialPeerTimeout(ctx); ok {
		return d
	}
	if s.cfg.dialPeerTimeout > 0 {
		return s.cfg.dialPeerTimeout
	}
	return network.DialPeerTimeout
}
