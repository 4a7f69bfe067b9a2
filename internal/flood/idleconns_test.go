package flood

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/rcmgr"

	ma "github.com/multiformats/go-multiaddr"
)

// The idle-connection attack: many peers, each from an address of its
// own, hold idle authenticated connections to the victim.
const (
	// idlePeers is how many attackers there are, one connection each.
	// 300 raw attackers (a key, Noise and yamux each, no host) run in
	// about 10 s under -race on 2 cores, both runs of the test included.
	idlePeers = 300
	// idleDialers is how many attackers dial at once, below the victim's
	// 64 handshake slots, so that the inbound connection limit, not the
	// handshake slots, is what refuses them.
	idleDialers = 16
	// idleInboundCap is the victim's inbound connection limit. It is
	// below the high watermark, as rcmgr.DefaultLimits' is below
	// connmgr.DefaultHighWater: only the resource manager's pressure,
	// not the watermark, makes the manager trim.
	idleInboundCap = 40
	// idleLow and idleHigh are the manager's watermarks, go-libp2p's
	// defaults (160, 192) scaled down.
	idleLow, idleHigh = 32, 48
	// idleSilence is the manager's silence period. The first trim comes
	// during the flood, which fills the limit again at once; the flood
	// usually ends well within the silence period that follows, so the
	// well-behaved peer usually finds the victim full and is served after
	// the next trim.
	idleSilence = time.Second
	// idleRetry paces the well-behaved peer's attempts.
	idleRetry = 50 * time.Millisecond
	// idleServedWithin bounds how long after the flood the well-behaved
	// peer may wait to be served when the manager trims.
	idleServedWithin = 10 * time.Second
	// idleLockedOutFor is how long the well-behaved peer keeps trying in
	// the control run without a manager: three silence periods, in which
	// a manager would have trimmed three times.
	idleLockedOutFor = 3 * idleSilence
)

// idleSource returns the address attacker i dials from: 127.0.1.1 to
// 127.0.1.250, then 127.0.2.1 and on, apart from the victim (127.0.0.1)
// and the well-behaved peer (127.0.0.2).
func idleSource(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)})
}

// newAttackerFrom returns an attacker whose dials leave from src: its
// transport listens there, and a TCP dial leaves from a listen port.
func newAttackerFrom(t *testing.T, src netip.Addr) *attacker {
	t.Helper()
	a := newAttacker(t)
	l, err := a.tr.Listen(ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/0", src)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return a
}

// idleFlood is what the flood left behind.
type idleFlood struct {
	held     int    // connections the victim accepted
	refusals uint64 // inbound connections the system scope refused
}

// floodIdle makes idlePeers attackers, each from its own address, dial
// the victim once and hold the connection, idleDialers at a time, and
// returns when every dial has ended.
func floodIdle(t *testing.T, ctx context.Context, rm *rcmgr.Manager, victim *p2pnet.Host) idleFlood {
	t.Helper()
	vi := info(victim)
	attackers := make([]*attacker, idlePeers)
	for i := range attackers {
		attackers[i] = newAttackerFrom(t, idleSource(i))
	}
	var (
		held atomic.Int64
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range idleDialers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < idlePeers; i = next.Add(1) - 1 {
				// Refusals are expected once the limit is full.
				if _, err := attackers[i].dial(ctx, vi); err == nil {
					held.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return idleFlood{held: int(held.Load()), refusals: refusals(rm, rcmgr.KindSystem, rcmgr.ResourceConnsInbound)}
}

// newIdleVictim returns a victim whose system scope takes idleInboundCap
// inbound connections, with loopback addresses limited like any other,
// and its resource manager.
func newIdleVictim(t *testing.T, opts ...p2pnet.Option) (*p2pnet.Host, *rcmgr.Manager) {
	t.Helper()
	l := rcmgr.DefaultLimits()
	l.System.ConnsInbound = idleInboundCap
	l.System.Conns = idleInboundCap + 8
	rm, err := rcmgr.New(l, rcmgr.WithLoopbackExempt(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	return newHost(t, append([]p2pnet.Option{p2pnet.ResourceManager(rm)}, opts...)...), rm
}

// newIdleVisitor returns the well-behaved peer: it dials from 127.0.0.2,
// and without dial backoff, so that each attempt dials.
func newIdleVisitor(t *testing.T) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.2/tcp/0"), p2pnet.DialBackoff(0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// keepVisiting makes h visit the victim every idleRetry until a visit is
// served or within has passed; a visit under way then still ends on its
// own (within testTimeout). It returns the served session, how many
// visits failed before, and the last failure.
func keepVisiting(h *p2pnet.Host, victim *p2pnet.Host, within time.Duration) (s session, failed int, served bool, last error) {
	window := time.NewTimer(within)
	defer window.Stop()
	tick := time.NewTicker(idleRetry)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		s, err := visit(ctx, h, info(victim))
		cancel()
		if err == nil {
			return s, failed, true, nil
		}
		failed, last = failed+1, err
		select {
		case <-tick.C:
		case <-window.C:
			return s, failed, false, last
		}
	}
}

// TestIdleConnsTrimmed: idlePeers peers, each from an address of its own
// (loopback is not exempt from the per-address limits here), hold idle
// authenticated connections to the victim and fill its inbound
// connection limit, which is below the manager's high watermark. A
// well-behaved peer then keeps connecting.
//
//   - Without a connection manager (the control), nothing ever closes an
//     idle connection: the well-behaved peer is locked out for as long as
//     it tries, every attempt refused by the inbound limit.
//   - With one (watermarks 32/48, no grace period, silence period
//     idleSilence), the resource manager's pressure makes it trim the
//     idle peers, and the well-behaved peer is served within
//     idleServedWithin.
func TestIdleConnsTrimmed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("no connection manager", func(t *testing.T) {
		victim, rm := newIdleVictim(t, p2pnet.NoConnectionManager())
		f := floodIdle(t, ctx, rm, victim)
		t.Logf("flood: %d connections held, %d refused", f.held, f.refusals)
		if f.held != idleInboundCap || f.refusals == 0 {
			t.Fatalf("the flood holds %d connections with %d refusals; want the limit, %d, full", f.held, f.refusals, idleInboundCap)
		}
		_, failed, served, last := keepVisiting(newIdleVisitor(t), victim, idleLockedOutFor)
		if served {
			t.Fatalf("the well-behaved peer was served after %d attempts with no connection manager", failed)
		}
		more := refusals(rm, rcmgr.KindSystem, rcmgr.ResourceConnsInbound) - f.refusals
		t.Logf("well-behaved peer locked out for %v: %d attempts, %d inbound refusals; last: %v", idleLockedOutFor, failed, more, last)
		if more < uint64(failed) {
			t.Errorf("the inbound limit refused %d connections of %d attempts; want every attempt refused by it", more, failed)
		}
		if n := len(victim.Network().Conns()); n != idleInboundCap {
			t.Errorf("the victim has %d connections; want the %d idle ones", n, idleInboundCap)
		}
	})

	t.Run("connection manager", func(t *testing.T) {
		victim, rm := newIdleVictim(t,
			p2pnet.ConnectionManager(idleLow, idleHigh, connmgr.WithGracePeriod(0), connmgr.WithSilencePeriod(idleSilence)))
		f := floodIdle(t, ctx, rm, victim)
		t.Logf("flood: %d connections held, %d refused", f.held, f.refusals)
		if f.held < idleInboundCap || f.refusals == 0 {
			t.Fatalf("the flood holds %d connections with %d refusals; want the limit, %d, filled", f.held, f.refusals, idleInboundCap)
		}
		start := time.Now()
		s, failed, served, last := keepVisiting(newIdleVisitor(t), victim, idleServedWithin)
		if !served {
			t.Fatalf("the well-behaved peer was not served within %v (%d attempts); last: %v", idleServedWithin, failed, last)
		}
		st := victim.ConnManager().Stats()
		t.Logf("well-behaved peer served %v after the flood, after %d refused attempts: %v; trims %d, closed %d",
			time.Since(start).Round(time.Millisecond), failed, s, st.Trims, st.Closed)
		if st.Trims == 0 || st.Closed < uint64(f.held-idleInboundCap) {
			t.Errorf("the manager made %d trims closing %d connections; the flood held %d with a limit of %d", st.Trims, st.Closed, f.held, idleInboundCap)
		}
		if n := len(victim.Network().Conns()); n > idleInboundCap {
			t.Errorf("the victim has %d connections, above its inbound limit %d", n, idleInboundCap)
		}
	})
}
