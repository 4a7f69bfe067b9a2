package flood

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/attack"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"

	ma "github.com/multiformats/go-multiaddr"
)

// unnegotiatedSources are the addresses of the unnegotiated-stream
// flood's connections: three attacking addresses, the last with two
// connections (two peers).
var unnegotiatedSources = []netip.Addr{
	netip.MustParseAddr("127.0.0.2"),
	netip.MustParseAddr("127.0.0.3"),
	netip.MustParseAddr("127.0.0.4"),
	netip.MustParseAddr("127.0.0.4"),
}

// visitorAddr is where the well-behaved peer of the attack tests comes
// from: an address no attacker uses.
const visitorAddr = "127.0.0.100"

// releaseWithin bounds how long the victim may take to release what the
// attackers held once they are gone.
const releaseWithin = time.Second

// unnegotiatedHeap bounds the growth of the live heap (the victim's and
// the attackers', which run in this process) during the flood.
const unnegotiatedHeap = 64 << 20

// onlyTransport returns the addresses of h that use the protocol code.
func onlyTransport(h *p2pnet.Host, code int) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range h.Addrs() {
		if _, err := a.ValueForProtocol(code); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// TestUnnegotiatedStreamFlood: a victim with the default limits, and
// per-address limits applied to loopback as to any address, is flooded by
// four connections from three addresses (the last address has two peers)
// that open streams as fast as the victim lets them and never name a
// protocol: silent streams, or streams trickling their negotiation one
// byte a second. During the flood a well-behaved peer from a fourth
// address connects, pings and moves 4 MiB each way, over TCP and over
// QUIC. Once the attackers hang up, everything they held is released
// within a second.
func TestUnnegotiatedStreamFlood(t *testing.T) {
	for _, tc := range []struct {
		name    string
		quic    bool
		trickle time.Duration
	}{
		{"tcp/silent", false, 0},
		{"tcp/trickle", false, time.Second},
		{"quic/silent", true, 0},
		{"quic/trickle", true, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testUnnegotiatedStreamFlood(t, tc.quic, tc.trickle)
		})
	}
}

func testUnnegotiatedStreamFlood(t *testing.T, overQUIC bool, trickle time.Duration) {
	rm, err := rcmgr.New(rcmgr.DefaultLimits(), rcmgr.WithLoopbackExempt(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	victim, err := p2pnet.New(
		p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		p2pnet.EnablePerf(),
		p2pnet.ResourceManager(rm),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Close() })
	code, visitorListen := ma.P_TCP, "/ip4/"+visitorAddr+"/tcp/0"
	if overQUIC {
		code, visitorListen = ma.P_QUIC_V1, "/ip4/"+visitorAddr+"/udp/0/quic-v1"
	}
	target := onlyTransport(victim, code)
	if len(target) == 0 {
		t.Fatalf("the victim listens on no address of protocol %d: %v", code, victim.Addrs())
	}
	vi := peer.AddrInfo{ID: victim.ID(), Addrs: target}
	good, err := p2pnet.New(p2pnet.ListenAddrStrings(visitorListen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { good.Close() })

	// The victim's connections to the attackers, as they end.
	gone := make(chan network.Conn, 64)
	victim.Network().Notify(&network.NotifyBundle{
		DisconnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() != good.ID() {
				gone <- c
			}
		},
	})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	base := liveHeap()
	flood, err := attack.StartStreamFlood(ctx, attack.StreamFloodConfig{
		Target:   victim.ID(),
		Addr:     target[0],
		Sources:  unnegotiatedSources,
		Trickle:  trickle,
		Duration: testTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	// The flood is on once the victim turns streams away.
	if err := flood.WaitFor(ctx, func(s attack.StreamFloodStats) bool { return s.Reset >= 100 }); err != nil {
		t.Fatal(err)
	}
	held := transientStat(rm).NumStreamsInbound
	r := <-goVisit(good, vi)
	st := flood.Stats()
	t.Logf("flood: %+v; the transient scope held %d inbound streams as the visit began; refusals: %+v", st, held, rm.Refusals())
	select {
	case <-flood.Done():
		t.Fatal("the flood ended before the visit did")
	default:
	}
	checkVisit(t, "during the flood", r)
	// The fair shares turned the flood away before the transient scope
	// filled up, and say so.
	if n := refusals(rm, rcmgr.KindTransient, rcmgr.ResourceStreamsInbound); n != 0 {
		t.Errorf("the transient scope refused %d inbound streams; want none", n)
	}
	byShares := uint64(0)
	for _, c := range rm.RefusalsByLimit() {
		if strings.HasPrefix(c.Limit, "Shares.UnnegotiatedStreams") {
			byShares += c.Count
		}
	}
	if byShares == 0 {
		t.Errorf("no refusal by the shares of unnegotiated streams: %+v", rm.RefusalsByLimit())
	}
	checkLimits(t, rm)
	checkHeap(t, "during the flood", base, unnegotiatedHeap)

	// The attackers hang up; the victim releases what they held.
	flood.Close()
	release, cancelRelease := context.WithTimeout(ctx, releaseWithin)
	defer cancelRelease()
	for range st.Conns - st.Lost {
		await(t, release, gone, "the victim to notice the attackers hanging up")
	}
	// A stream that ends as its connection closes may be released just
	// after the connection is: pollTransient (slowloris_test.go) looks.
	if !pollTransient(release, rm, func(s network.ScopeStat) bool { return s == network.ScopeStat{} }) {
		t.Errorf("%v after the attackers hung up, the transient scope holds %+v; want nothing", releaseWithin, transientStat(rm))
		for _, s := range rm.Snapshot().Scopes {
			if s.Kind == rcmgr.KindPeer && s.Use != (network.ScopeStat{}) {
				t.Logf("%s (the visitor is %s) holds %+v", s.Name, good.ID(), s.Use)
			}
		}
	}
	if srcs := rm.Snapshot().Sources; len(srcs) != 0 {
		t.Errorf("after the attackers hung up, sources still hold %+v", srcs)
	}
	mustVisit(t, "after the flood", good, vi)

	good.Close()
	victim.Close()
	checkReleased(t, rm)
}

// TestNegotiationTimeouts: a host resets an inbound stream that has sent
// nothing p2pnet.NegotiationFirstByteTimeout after it arrived, and one
// that has sent a byte but not named a protocol
// p2pnet.NegotiationTimeout after it arrived. The bounds above allow
// for a loaded machine.
func TestNegotiationTimeouts(t *testing.T) {
	const slack = 2 * time.Second
	victim := newHost(t)
	atk := newAttacker(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := atk.dial(ctx, info(victim))
	if err != nil {
		t.Fatal(err)
	}
	type ended struct {
		after time.Duration
		err   error
	}
	hold := func(send []byte) <-chan ended {
		out := make(chan ended, 1)
		start := time.Now()
		s, err := conn.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(send) > 0 {
			if _, err := s.Write(send); err != nil {
				t.Fatal(err)
			}
		}
		go func() {
			var b [1]byte
			_, err := s.Read(b[:])
			out <- ended{time.Since(start), err}
			s.Reset()
		}()
		return out
	}
	silent := hold(nil)
	spoken := hold([]byte{19}) // the first byte of "/multistream/1.0.0\n"
	for _, c := range []struct {
		what string
		end  <-chan ended
		want time.Duration
	}{
		{"a silent stream", silent, p2pnet.NegotiationFirstByteTimeout},
		{"a stream that sent one byte", spoken, p2pnet.NegotiationTimeout},
	} {
		e := await(t, ctx, c.end, c.what+" to be reset")
		t.Logf("%s was reset after %v", c.what, e.after.Round(time.Millisecond))
		if !errors.Is(e.err, network.ErrReset) {
			t.Errorf("%s ended with %v; want a reset", c.what, e.err)
		}
		if e.after < c.want || e.after > c.want+slack {
			t.Errorf("%s was reset after %v; want %v (up to %v more on a loaded machine)", c.what, e.after, c.want, slack)
		}
	}
}
