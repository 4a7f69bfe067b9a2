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
	"github.com/p2pnet/p2pnet/proto/ping"

	"github.com/libp2p/go-libp2p"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// floodVisitor is where the well-behaved peer of the attack tests comes
// from: an address no attacker uses.
const floodVisitor = "127.0.0.100"

// floodVisitBytes is what the well-behaved peer moves each way.
const floodVisitBytes = 4 << 20

// floodVisit is what one visit of the well-behaved peer measured.
type floodVisit struct {
	connect, rtt, transfer time.Duration
	transport              string // of the connection made
	err                    error
}

func (v floodVisit) String() string {
	if v.err != nil {
		return "not served: " + strings.Join(strings.Fields(v.err.Error()), " ")
	}
	return fmt.Sprintf("connected over %s in %v, ping %v, 4+4 MiB in %v", v.transport,
		v.connect.Round(time.Microsecond), v.rtt.Round(time.Microsecond), v.transfer.Round(time.Millisecond))
}

// visitVictim connects to victim from h (anew), pings once and moves
// floodVisitBytes each way with perf. admit bounds the connection and
// the ping (being served at all), ctx the transfer too, whose time on a
// loaded machine under the race detector says little about lockouts.
func visitVictim(ctx, admit context.Context, h *p2pnet.Host, victim peer.AddrInfo) (v floodVisit) {
	if v.err = h.Network().ClosePeer(victim.ID); v.err != nil {
		return v
	}
	start := time.Now()
	if v.err = h.Connect(admit, victim); v.err != nil {
		v.err = fmt.Errorf("connect (after %v): %w", time.Since(start).Round(time.Millisecond), v.err)
		return v
	}
	v.connect = time.Since(start)
	if conns := h.Network().ConnsToPeer(victim.ID); len(conns) > 0 {
		v.transport = conns[0].ConnState().Transport
	}
	if v.rtt, v.err = ping.PingOnce(admit, h, victim.ID); v.err != nil {
		v.err = fmt.Errorf("ping: %w", v.err)
		return v
	}
	start = time.Now()
	res, err := perf.Run(ctx, h, victim.ID, floodVisitBytes, floodVisitBytes, nil)
	if err == nil && (res.Uploaded != floodVisitBytes || res.Downloaded != floodVisitBytes) {
		err = fmt.Errorf("moved %d and %d bytes", res.Uploaded, res.Downloaded)
	}
	if err != nil {
		v.err = fmt.Errorf("perf: %w", err)
		return v
	}
	v.transfer = time.Since(start)
	return v
}

// initialFloodSources are the eight addresses the flood comes from,
// 127.0.0.2 to 127.0.0.9.
func initialFloodSources() []netip.Addr {
	var srcs []netip.Addr
	for a, i := netip.MustParseAddr("127.0.0.2"), 0; i < 8; a, i = a.Next(), i+1 {
		srcs = append(srcs, a)
	}
	return srcs
}

// withProtocol keeps the addresses that use protocol code.
func withProtocol(ai peer.AddrInfo, code int) peer.AddrInfo {
	out := peer.AddrInfo{ID: ai.ID}
	for _, a := range ai.Addrs {
		if _, err := a.ValueForProtocol(code); err == nil {
			out.Addrs = append(out.Addrs, a)
		}
	}
	return out
}

// quicTarget returns the UDP address of ai's first QUIC address.
func quicTarget(t *testing.T, ai peer.AddrInfo) netip.AddrPort {
	t.Helper()
	a := withProtocol(ai, ma.P_QUIC_V1).Addrs[0]
	ip, _ := a.ValueForProtocol(ma.P_IP4)
	port, _ := a.ValueForProtocol(ma.P_UDP)
	ap, err := netip.ParseAddrPort(ip + ":" + port)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestQUICInitialFloodSideBySide floods a p2pnet host and a go-libp2p
// v0.51.0 host, each with its default resource manager and listening on
// loopback TCP and QUIC, with QUIC Initial packets that never complete a
// handshake, from 127.0.0.2 to 127.0.0.9: 100 per second, then a burst of
// 1000 per second. During each flood a well-behaved p2pnet peer from
// 127.0.0.100 visits over QUIC and, separately, over TCP: connect, ping,
// 4 MiB each way. The outcomes are logged side by side; only p2pnet's are
// asserted (go-libp2p takes a transient connection slot for every
// Initial, and on loopback never demands a Retry, so it locks both out).
func TestQUICInitialFloodSideBySide(t *testing.T) {
	type row struct {
		host, flood       string
		overQUIC, overTCP floodVisit
		stats             attack.QUICFloodStats
	}
	var rows []row
	for _, fl := range []struct {
		name     string
		rate     float64
		duration time.Duration
	}{
		{"100/s", 100, 5 * time.Second},
		{"1000/s", 1000, 3 * time.Second},
	} {
		for _, host := range []string{"p2pnet", "go-libp2p"} {
			t.Run(host+"/"+fl.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				var victim peer.AddrInfo
				if host == "p2pnet" {
					h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"), p2pnet.EnablePerf())
					if err != nil {
						t.Fatal(err)
					}
					defer h.Close()
					victim = peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
				} else {
					// go-libp2p's default resource manager, as users get it.
					h, err := libp2p.New(
						libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
						libp2p.Transport(lptcp.NewTCPTransport),
						libp2p.Transport(libp2pquic.NewTransport),
					)
					if err != nil {
						t.Fatal(err)
					}
					defer h.Close()
					h.SetStreamHandler(lpprotocol.ID(perf.ID), goPerfHandler)
					victim = peer.AddrInfo{ID: peer.ID(h.ID()), Addrs: h.Addrs()}
				}
				viQUIC, viTCP := withProtocol(victim, ma.P_QUIC_V1), withProtocol(victim, ma.P_TCP)
				// Fresh visitors for each visit, listening on floodVisitor:
				// a new TCP port keeps a dial from meeting the TIME_WAIT of
				// the previous visit's connection (which would make it
				// leave from another address).
				newVisitor := func(listen string) *p2pnet.Host {
					h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/" + floodVisitor + listen))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { h.Close() })
					return h
				}
				if v := visitVictim(ctx, ctx, newVisitor("/udp/0/quic-v1"), viQUIC); v.err != nil {
					t.Fatalf("QUIC visit before the flood: %v", v)
				}
				if v := visitVictim(ctx, ctx, newVisitor("/tcp/0"), viTCP); v.err != nil {
					t.Fatalf("TCP visit before the flood: %v", v)
				}
				quicVisitor, tcpVisitor := newVisitor("/udp/0/quic-v1"), newVisitor("/tcp/0")

				f, err := attack.StartQUICFlood(ctx, attack.QUICFloodConfig{
					Target:         quicTarget(t, victim),
					Sources:        initialFloodSources(),
					PortsPerSource: 32,
					Rate:           fl.rate,
					Duration:       fl.duration,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := f.WaitFor(ctx, func(s attack.QUICFloodStats) bool { return s.Sent >= int64(max(fl.rate, 100)) }); err != nil {
					t.Fatal(err)
				}
				// Admission bounded, so that a locked-out visit ends
				// within the flood.
				vctx, vcancel := context.WithTimeout(ctx, fl.duration/2)
				defer vcancel()
				quicDone, tcpDone := make(chan floodVisit, 1), make(chan floodVisit, 1)
				go func() { quicDone <- visitVictim(ctx, vctx, quicVisitor, viQUIC) }()
				go func() { tcpDone <- visitVictim(ctx, vctx, tcpVisitor, viTCP) }()
				r := row{host: host, flood: fl.name, overQUIC: <-quicDone, overTCP: <-tcpDone}
				<-f.Done()
				r.stats = f.Stats()
				rows = append(rows, r)
				t.Logf("%s under %s: QUIC: %v; TCP: %v; flood %+v", host, fl.name, r.overQUIC, r.overTCP, r.stats)
				if host != "p2pnet" {
					return
				}
				if r.overQUIC.err != nil || r.overQUIC.transport != "quic-v1" {
					t.Errorf("p2pnet did not serve the QUIC visitor during the flood: %v", r.overQUIC)
				}
				if r.overTCP.err != nil || r.overTCP.transport != "tcp" {
					t.Errorf("p2pnet did not serve the TCP visitor during the flood: %v", r.overTCP)
				}
			})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "side by side, a well-behaved peer visiting during a QUIC Initial flood:\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-9s %-6s  QUIC: %s\n  %-9s %-6s  TCP:  %s\n  %-9s %-6s  flood: %d Initials, %d answered with a Retry, %d otherwise\n",
			r.host, r.flood, r.overQUIC, "", "", r.overTCP, "", "", r.stats.Sent, r.stats.Retried, r.stats.Answered)
	}
	t.Log(b.String())
}
