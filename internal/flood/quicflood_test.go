package flood

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/attack"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// quicFloodSources are the addresses the QUIC Initial flood comes from,
// as if from eight other hosts: 127.0.0.2 to 127.0.0.9.
func quicFloodSources() []netip.Addr {
	var srcs []netip.Addr
	for i := byte(2); i <= 9; i++ {
		srcs = append(srcs, netip.AddrFrom4([4]byte{127, 0, 0, i}))
	}
	return srcs
}

// initialFloodVisitor is where the well-behaved peer lives, apart from
// the flood's addresses and the victim's.
const initialFloodVisitor = "127.0.0.100"

// withTransport keeps the addresses of ai that use protocol code.
func withTransport(ai peer.AddrInfo, code int) peer.AddrInfo {
	out := peer.AddrInfo{ID: ai.ID}
	for _, a := range ai.Addrs {
		if _, err := a.ValueForProtocol(code); err == nil {
			out.Addrs = append(out.Addrs, a)
		}
	}
	return out
}

// newInitialFloodVisitor returns a well-behaved host listening on listen
// (on initialFloodVisitor), so that its dials leave from there. The test
// closes it at its end.
func newInitialFloodVisitor(t *testing.T, listen string) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings(listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// floodVisitors are the well-behaved peer's hosts for one visit over
// QUIC and one over TCP. Each visit has hosts of its own, listening on
// initialFloodVisitor: a new TCP port per visit keeps a dial from meeting
// the TIME_WAIT of the previous visit's connection (which would make it
// leave from another address), and a fresh peerstore keeps each visit to
// the addresses it is given.
type floodVisitors struct{ quic, tcp *p2pnet.Host }

func newFloodVisitors(t *testing.T) floodVisitors {
	return floodVisitors{
		quic: newInitialFloodVisitor(t, "/ip4/"+initialFloodVisitor+"/udp/0/quic-v1"),
		tcp:  newInitialFloodVisitor(t, "/ip4/"+initialFloodVisitor+"/tcp/0"),
	}
}

// visitBoth runs v's two visits to victim at once, and fails t unless
// both were served, each over its transport, from initialFloodVisitor.
// It returns the connection times.
func visitBoth(t *testing.T, ctx context.Context, when string, v floodVisitors, victim peer.AddrInfo) (quicConnect, tcpConnect time.Duration) {
	t.Helper()
	overQUIC := goVisit(v.quic, withTransport(victim, ma.P_QUIC_V1))
	overTCP := goVisit(v.tcp, withTransport(victim, ma.P_TCP))
	rq, rt := await(t, ctx, overQUIC, "the QUIC visit "+when), await(t, ctx, overTCP, "the TCP visit "+when)
	served := true
	for _, r := range []struct {
		transport string
		h         *p2pnet.Host
		r         visitResult
	}{{"quic-v1", v.quic, rq}, {"tcp", v.tcp, rt}} {
		if r.r.err != nil {
			t.Errorf("the well-behaved peer was not served %s (%s): %v", when, r.transport, r.r.err)
			served = false
			continue
		}
		t.Logf("well-behaved peer %s (%s): %v", when, r.transport, r.r.s)
		checkVisitedFrom(t, r.h, victim.ID, r.transport)
	}
	if !served {
		t.FailNow()
	}
	return rq.s.connect, rt.s.connect
}

// checkVisitedFrom fails t unless h's connection to p uses transport and
// leaves from initialFloodVisitor.
func checkVisitedFrom(t *testing.T, h *p2pnet.Host, p peer.ID, transport string) {
	t.Helper()
	conns := h.Network().ConnsToPeer(p)
	if len(conns) != 1 {
		t.Errorf("the %s visitor has %d connections to the victim; want 1", transport, len(conns))
		return
	}
	c := conns[0]
	if c.ConnState().Transport != transport || !strings.HasPrefix(c.LocalMultiaddr().String(), "/ip4/"+initialFloodVisitor+"/") {
		t.Errorf("the %s visitor's connection runs %q from %s", transport, c.ConnState().Transport, c.LocalMultiaddr())
	}
}

// TestQUICInitialFlood floods a host with QUIC Initial packets that never
// complete a handshake, from eight addresses, at a steady rate and in a
// heavier burst. Every Initial used to take a connection slot in the
// transient scope for the handshake timeout (5 s): about 80 such
// Initials (on a machine with 24 GiB) left no slot for anyone, over QUIC
// or TCP. Now handshakes in progress count only against the QUIC
// transport's own budget, and beyond a few from unverified addresses the
// host demands a Retry, which the flood never answers. During the flood a
// well-behaved peer from another address connects over QUIC and,
// separately, over TCP, pings and moves 4 MiB each way; the heap stays
// bounded; the moment the flood ends the transient scope holds nothing of
// it, and the host serves both visitors again at once.
func TestQUICInitialFlood(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate float64
	}{
		{"100/s", 100},
		{"1000/s", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) { testQUICInitialFlood(t, tc.rate) })
	}
}

// testQUICInitialFlood floods at rate until the visits during the flood
// are over (on a loaded machine they take seconds), then stops it.
func testQUICInitialFlood(t *testing.T, rate float64) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rm := newManager(t, nil)
	victim, err := p2pnet.New(
		p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		p2pnet.ResourceManager(rm),
		p2pnet.EnablePerf(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	vi := info(victim)
	viQUIC := withTransport(vi, ma.P_QUIC_V1)
	if len(viQUIC.Addrs) == 0 || len(withTransport(vi, ma.P_TCP).Addrs) == 0 {
		t.Fatalf("the victim listens on %v", vi.Addrs)
	}
	target, err := manet.ToNetAddr(viQUIC.Addrs[0].Decapsulate(ma.StringCast("/quic-v1")))
	if err != nil {
		t.Fatal(err)
	}
	before, during, after := newFloodVisitors(t), newFloodVisitors(t), newFloodVisitors(t)
	visitBoth(t, ctx, "before the flood", before, vi)
	base := liveHeap()

	f, err := attack.StartQUICFlood(ctx, attack.QUICFloodConfig{
		Target:         netip.MustParseAddrPort(target.String()),
		Sources:        quicFloodSources(),
		PortsPerSource: 32,
		Rate:           rate,
		Duration:       testTimeout, // a bound: Close ends it sooner
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Once a second's worth of Initials, at least 100, is out, the
	// transient scope would be full if each held a slot.
	if err := f.WaitFor(ctx, func(s attack.QUICFloodStats) bool { return s.Sent >= int64(max(rate, 100)) }); err != nil {
		t.Fatal(err)
	}
	t.Logf("the flood so far: %+v; transient scope: %+v", f.Stats(), transientStat(rm))
	visitBoth(t, ctx, "during the flood", during, vi)
	select {
	case <-f.Done():
		t.Fatal("the flood ended before the visits did: make it longer")
	default:
	}
	checkHeap(t, "during the flood", base, heapSlack)
	checkLimits(t, rm)

	f.Close()
	st := f.Stats()
	t.Logf("the flood: %+v (%.0f%% answered with a Retry)", st, 100*float64(st.Retried)/float64(max(st.Sent, 1)))
	if tr := transientStat(rm); tr.NumConnsInbound != 0 {
		t.Errorf("when the flood ended, the transient scope held %d inbound connections; want none", tr.NumConnsInbound)
	}
	// Served again at once. The resources are checked exactly above; a
	// connect time is a latency on a shared 2-core machine running other
	// race-detector tests, so its bound leaves room for that.
	quicConnect, tcpConnect := visitBoth(t, ctx, "right after the flood", after, vi)
	if quicConnect > 3*time.Second || tcpConnect > 3*time.Second {
		t.Errorf("right after the flood, the visitors took %v (QUIC) and %v (TCP) to connect; want less than 3 s each", quicConnect, tcpConnect)
	}
	t.Logf("refusals: %v", rm.Refusals())

	f.Close()
	victim.Close()
	checkReleased(t, rm)
}
