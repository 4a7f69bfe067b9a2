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
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"

	"github.com/libp2p/go-libp2p"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	manet "github.com/multiformats/go-multiaddr/net"
)

const (
	// slowlorisVisitorAddr is where the well-behaved peer lives, apart
	// from the attackers (127.0.0.2 on) and the victims (127.0.0.1).
	slowlorisVisitorAddr = "127.0.0.100"
	// slowlorisVisitTimeout bounds a visit during an attack, well within
	// both victims' handshake timeout (15 s): a visitor served only once
	// the attack's handshakes time out is not served during the attack.
	slowlorisVisitTimeout = 10 * time.Second
	// slowlorisBytes is what the visitor uploads, then downloads.
	slowlorisBytes = 4 << 20
)

// slowlorisOutcome is what the well-behaved peer saw on one visit.
type slowlorisOutcome struct {
	connect, rtt, transfer time.Duration
	err                    error
}

func (o slowlorisOutcome) String() string {
	if o.err != nil {
		return "not served: " + o.err.Error()
	}
	return fmt.Sprintf("served: connect %v, ping %v, perf %d+%d bytes in %v", o.connect.Round(time.Microsecond),
		o.rtt.Round(time.Microsecond), slowlorisBytes, slowlorisBytes, o.transfer.Round(time.Millisecond))
}

// slowlorisVisit connects h to victim, pings it once and moves
// slowlorisBytes each way with perf.
func slowlorisVisit(ctx context.Context, h *p2pnet.Host, victim peer.AddrInfo) (o slowlorisOutcome) {
	start := time.Now()
	if o.err = h.Connect(ctx, victim); o.err != nil {
		o.err = fmt.Errorf("connect after %v: %w", time.Since(start).Round(time.Millisecond), o.err)
		return o
	}
	o.connect = time.Since(start)
	if o.rtt, o.err = ping.PingOnce(ctx, h, victim.ID); o.err != nil {
		o.err = fmt.Errorf("ping: %w", o.err)
		return o
	}
	start = time.Now()
	res, err := perf.Run(ctx, h, victim.ID, slowlorisBytes, slowlorisBytes, nil)
	if err != nil {
		o.err = fmt.Errorf("perf: %w", err)
		return o
	}
	o.transfer = time.Since(start)
	if res.Uploaded != slowlorisBytes || res.Downloaded != slowlorisBytes {
		o.err = fmt.Errorf("perf moved %d and %d bytes; want %d each", res.Uploaded, res.Downloaded, slowlorisBytes)
	}
	return o
}

// slowlorisVictim is a host under attack: its address, and how many
// inbound connections its transient scope holds (the handshakes in
// progress, in both implementations).
type slowlorisVictim struct {
	info      peer.AddrInfo
	transient func() int
}

// ourSlowlorisVictim is a p2pnet host with the defaults: its limits and
// its handshake timeout.
func ourSlowlorisVictim(t *testing.T) slowlorisVictim {
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.EnablePerf())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return slowlorisVictim{
		info: peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()},
		transient: func() int {
			var n int
			h.Network().ResourceManager().ViewTransient(func(s network.ResourceScope) error {
				n = s.Stat().NumConnsInbound
				return nil
			})
			return n
		},
	}
}

// goSlowlorisVictim is a go-libp2p host with its defaults (its resource
// manager and limits, its handshake timeout) on TCP with Noise and yamux,
// serving perf.
func goSlowlorisVictim(t *testing.T) slowlorisVictim {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Security(lpnoise.ID, lpnoise.New),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(lpprotocol.ID(perf.ID), goPerfHandler)
	return slowlorisVictim{
		info: peer.AddrInfo{ID: peer.ID(h.ID()), Addrs: h.Addrs()},
		transient: func() int {
			var n int
			h.Network().ResourceManager().ViewTransient(func(s lpnetwork.ResourceScope) error {
				n = s.Stat().NumConnsInbound
				return nil
			})
			return n
		},
	}
}

// TestSlowlorisSideBySide runs the slowloris attacks of internal/attack
// (TCP connections that stay silent, trickle a valid Noise opening at one
// byte per second, or stall after multistream-select's header; from 8
// addresses × 8 connections and from 64 addresses × 1, reopening what the
// victim closes) against a p2pnet host and a go-libp2p host, each with
// its defaults. During each attack a well-behaved p2pnet peer from
// another address visits: it connects, pings and moves 4 MiB each way.
// The test reports, for both, whether it was served and how fast, or
// why not; it requires only p2pnet to serve it.
func TestSlowlorisSideBySide(t *testing.T) {
	var report []string
	for _, kind := range []attack.SlowlorisKind{attack.Silent, attack.Trickle, attack.HeaderOnly} {
		for _, sh := range []struct{ addrs, perAddr int }{{8, 8}, {64, 1}, {16, 8}, {128, 1}} {
			name := fmt.Sprintf("%v/%dx%d", kind, sh.addrs, sh.perAddr)
			for _, impl := range []string{"p2pnet", "go-libp2p"} {
				t.Run(name+"/"+impl, func(t *testing.T) {
					victim := ourSlowlorisVictim
					if impl == "go-libp2p" {
						victim = goSlowlorisVictim
					}
					o := slowlorisSideBySide(t, victim(t), kind, sh.addrs, sh.perAddr)
					report = append(report, fmt.Sprintf("%-20s %-10s %v", name, impl, o))
					if impl == "p2pnet" && o.err != nil {
						t.Errorf("p2pnet did not serve the well-behaved peer during the attack: %v", o.err)
					}
				})
			}
		}
	}
	t.Log("well-behaved peer during each slowloris attack:\n" + strings.Join(report, "\n"))
}

// slowlorisSources returns the sources of an attack from addrs addresses
// with perAddr connections each: 127.0.0.2 on, skipping the visitor's.
func slowlorisSources(addrs, perAddr int) []netip.Addr {
	visitor := netip.MustParseAddr(slowlorisVisitorAddr)
	var out []netip.Addr
	a := netip.MustParseAddr("127.0.0.2")
	for range addrs {
		if a == visitor {
			a = a.Next()
		}
		out = append(out, attack.LoopbackSources(a, 1, perAddr)...)
		a = a.Next()
	}
	return out
}

func slowlorisSideBySide(t *testing.T, v slowlorisVictim, kind attack.SlowlorisKind, addrs, perAddr int) slowlorisOutcome {
	n := addrs * perAddr
	na, err := manet.ToNetAddr(v.info.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	target, err := netip.ParseAddrPort(na.String())
	if err != nil {
		t.Fatal(err)
	}
	visitor, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/" + slowlorisVisitorAddr + "/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer visitor.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	atk, err := attack.StartSlowloris(ctx, attack.SlowlorisConfig{
		Target:  target,
		Sources: slowlorisSources(addrs, perAddr),
		Kind:    kind,
		Redial:  10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer atk.Close()
	// In place once 64 connections are open (or all, if fewer): beyond
	// what a victim holds (p2pnet 64 handshakes, go-libp2p a transient
	// scope of 79 here) the rest are refused and redial, so more are
	// never open for long.
	if err := atk.WaitFor(ctx, func(s attack.SlowlorisStats) bool { return s.Open >= int64(min(n, 64)) }); err != nil {
		t.Fatal(err)
	}
	// The victim takes the connections into handshakes as it accepts
	// them, as many as its limits allow; give it a moment to, looking
	// every few milliseconds (a measurement's set-up: it proceeds either
	// way, and neither victim takes all of 128).
	wait, wcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	tick := time.NewTicker(5 * time.Millisecond)
	for v.transient() < n && wait.Err() == nil {
		select {
		case <-tick.C:
		case <-wait.Done():
		}
	}
	tick.Stop()
	wcancel()
	t.Logf("attack in place: %+v; the victim's transient scope holds %d inbound connections", atk.Stats(), v.transient())

	vctx, vcancel := context.WithTimeout(ctx, slowlorisVisitTimeout)
	o := slowlorisVisit(vctx, visitor, v.info)
	vcancel()
	t.Logf("well-behaved peer: %v", o)
	t.Logf("attack after the visit: %+v", atk.Stats())
	if o.err == nil {
		for _, c := range visitor.Network().ConnsToPeer(v.info.ID) {
			if !strings.HasPrefix(c.LocalMultiaddr().String(), "/ip4/"+slowlorisVisitorAddr+"/") {
				t.Errorf("the visitor's connection leaves from %s; want %s", c.LocalMultiaddr(), slowlorisVisitorAddr)
			}
		}
	}
	return o
}
