package interop

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/attack"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/rcmgr"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"

	ma "github.com/multiformats/go-multiaddr"
)

// streamFloodSources are the addresses of the stream flood's
// connections: three attacking addresses, the last with two connections
// (two peers).
var streamFloodSources = []netip.Addr{
	netip.MustParseAddr("127.0.0.2"),
	netip.MustParseAddr("127.0.0.3"),
	netip.MustParseAddr("127.0.0.4"),
	netip.MustParseAddr("127.0.0.4"),
}

// streamFloodVisitTimeout bounds each visit of the well-behaved peer: a
// victim that locks it out makes it wait this long at most.
const streamFloodVisitTimeout = 15 * time.Second

// streamFloodAndVisit floods the victim with unnegotiated streams from
// streamFloodSources, and once the victim turns streams away, visits it
// from floodVisitor during the flood (visitVictim, withProtocol and
// floodVisitor are in attack_quic_test.go).
func streamFloodAndVisit(t *testing.T, victim peer.AddrInfo, visitorListen string, trickle time.Duration) (attack.StreamFloodStats, floodVisit) {
	t.Helper()
	good, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/" + floodVisitor + visitorListen))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flood, err := attack.StartStreamFlood(ctx, attack.StreamFloodConfig{
		Target:   victim.ID,
		Addr:     victim.Addrs[0],
		Sources:  streamFloodSources,
		Trickle:  trickle,
		Duration: 60 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	if err := flood.WaitFor(ctx, func(s attack.StreamFloodStats) bool { return s.Reset >= 100 }); err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithTimeout(ctx, streamFloodVisitTimeout)
	defer vcancel()
	r := visitVictim(vctx, vctx, good, victim)
	st := flood.Stats()
	select {
	case <-flood.Done():
		t.Fatal("the flood ended before the visit did")
	default:
	}
	return st, r
}

// TestUnnegotiatedStreamFloodSideBySide floods a p2pnet host and a
// go-libp2p host, each with its default limits (p2pnet's per-address
// limits applied to loopback too), with streams that never name a
// protocol, over TCP and QUIC, and visits each during the flood from
// another address. It reports both side by side; it asserts only that
// p2pnet serves the visitor.
func TestUnnegotiatedStreamFloodSideBySide(t *testing.T) {
	var table strings.Builder
	fmt.Fprintf(&table, "a well-behaved peer visiting during a flood of unnegotiated streams (4 connections from 3 addresses):\n")
	fmt.Fprintf(&table, "  %-13s %-10s %-9s %-10s %-10s %s\n", "flood", "host", "connected", "connect", "ping", "4+4 MiB")
	defer func() { t.Log(table.String()) }()
	for _, tc := range []struct {
		name    string
		code    int
		listen  string
		trickle time.Duration
	}{
		{"tcp/silent", ma.P_TCP, "/tcp/0", 0},
		{"tcp/trickle", ma.P_TCP, "/tcp/0", time.Second},
		{"quic/silent", ma.P_QUIC_V1, "/udp/0/quic-v1", 0},
		{"quic/trickle", ma.P_QUIC_V1, "/udp/0/quic-v1", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm, err := rcmgr.New(rcmgr.DefaultLimits(), rcmgr.WithLoopbackExempt(false))
			if err != nil {
				t.Fatal(err)
			}
			defer rm.Close()
			us, err := p2pnet.New(
				p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
				p2pnet.ResourceManager(rm),
				p2pnet.EnablePerf(),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer us.Close()
			usFlood, usVisit := streamFloodAndVisit(t, withProtocol(peer.AddrInfo{ID: us.ID(), Addrs: us.Addrs()}, tc.code), tc.listen, tc.trickle)
			us.Close()

			gh := goDefaultHost(t)
			gh.SetStreamHandler(lpprotocol.ID(perf.ID), goPerfHandler)
			goFlood, goVisit := streamFloodAndVisit(t, withProtocol(peer.AddrInfo{ID: peer.ID(gh.ID()), Addrs: gh.Addrs()}, tc.code), tc.listen, tc.trickle)
			gh.Close()

			for _, r := range []struct {
				host  string
				visit floodVisit
				flood attack.StreamFloodStats
			}{{"p2pnet", usVisit, usFlood}, {"go-libp2p", goVisit, goFlood}} {
				v := r.visit
				row := fmt.Sprintf("  %-13s %-10s %-9v %-10v %-10v ", tc.name, r.host, v.connect > 0,
					v.connect.Round(time.Microsecond), v.rtt.Round(time.Microsecond))
				if v.err != nil {
					row += "FAILED: " + v.err.Error()
				} else {
					row += v.transfer.Round(time.Millisecond).String()
				}
				fmt.Fprintln(&table, row)
				t.Logf("flood against %s: %+v", r.host, r.flood)
			}
			if usVisit.err != nil {
				t.Errorf("p2pnet did not serve the well-behaved peer during the flood: %v", usVisit.err)
			}
		})
	}
}

// goDefaultHost is a go-libp2p host on loopback TCP and QUIC with its
// default resource manager and limits, as users get it.
func goDefaultHost(t testing.TB) lphost.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}
