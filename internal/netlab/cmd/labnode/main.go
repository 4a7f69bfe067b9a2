// Command labnode is a p2pnet host for the namespace lab's scenario
// tests, built by the tests with go build. It uses the library directly
// (the hole-punching service included) and reports on standard output
// in JSON lines with a "type":
//
//	labnode relay  --listen MADDR...                      {"type":"listen"}
//	labnode listen --listen MADDR --relay MADDR ...      {"type":"circuit"}, {"type":"holepunch"}...
//	labnode ping   --listen MADDR [--wait D] CIRCUIT     {"type":"relayed"}, then {"type":"direct"} or {"type":"nodirect"}
//
// --public-cidr CIDR (repeatable) marks a range public for hole punching.
// It runs until killed, except ping, which exits after its report: 0 when
// the final ping succeeded over whatever connection there was.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/netlab/labcmd"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/holepunch"
	"github.com/p2pnet/p2pnet/proto/ping"

	ma "github.com/multiformats/go-multiaddr"
)

func main() {
	mode, fs := labcmd.Mode("labnode relay|listen|ping [flags]")
	var f labcmd.Flags
	f.Register(fs)
	var relays labcmd.Strings
	fs.Var(&relays, "relay", "relay to reserve on (repeatable)")
	wait := fs.Duration("wait", 30*time.Second, "ping: how long to wait for a direct connection")
	fs.Parse(os.Args[2:])
	labcmd.Exit("labnode", run(mode, f.Listen, relays, f.PublicCIDR, *wait, fs.Args()))
}

func run(mode string, listen, relays, cidrs []string, wait time.Duration, args []string) error {
	prefixes, err := labcmd.Prefixes(cidrs)
	if err != nil {
		return err
	}
	// The node runs its own DCUtR service below, to report each result.
	opts := []p2pnet.Option{p2pnet.ListenAddrStrings(listen...), p2pnet.DisableHolePunching()}
	switch mode {
	case "relay":
		opts = append(opts, p2pnet.EnableRelayService())
	case "listen":
		for _, r := range relays {
			a, err := ma.NewMultiaddr(r)
			if err != nil {
				return err
			}
			opts = append(opts, p2pnet.StaticRelays(a))
		}
	}
	h, err := p2pnet.New(opts...)
	if err != nil {
		return err
	}
	defer h.Close()
	hp := holepunch.New(h,
		holepunch.ObservedAddrs(h.Identify().ObservedAddrs),
		holepunch.PublicPrefixes(prefixes...),
		holepunch.IdentifyWait(h.Identify().IdentifyWait),
		holepunch.OnResult(func(r holepunch.Result) {
			m := map[string]any{"type": "holepunch", "peer": r.Peer.String(), "initiator": r.Initiator, "reversed": r.Reversed,
				"attempts": r.Attempts, "elapsed_ms": r.Elapsed.Milliseconds()}
			if r.Err != nil {
				m["error"] = r.Err.Error()
			} else {
				m["addr"] = r.Conn.RemoteMultiaddr().String()
			}
			labcmd.Emit(m)
		}))
	defer hp.Close()

	ctx, stop := labcmd.SignalContext()
	defer stop()
	switch mode {
	case "relay":
		labcmd.Emit(map[string]any{"type": "listen", "addrs": labcmd.Strs(h.P2PAddrs())})
	case "listen":
		for len(h.RelayAddrs()) == 0 {
			select {
			case <-h.RelayAddrsChanged():
			case <-ctx.Done():
				return nil
			}
		}
		identified(ctx, h)
		for _, a := range h.RelayAddrs() {
			labcmd.Emit(map[string]any{"type": "circuit", "addr": a.String() + "/p2p/" + h.ID().String(),
				"observed": labcmd.Strs(h.Identify().ObservedAddrs())})
		}
	case "ping":
		if len(args) != 1 {
			return fmt.Errorf("ping needs one address")
		}
		return pingVia(ctx, h, args[0], wait)
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	<-ctx.Done()
	return nil
}

// identified waits for identify on every connection, so that our
// observed addresses are known.
func identified(ctx context.Context, h *p2pnet.Host) {
	for _, c := range h.Network().Conns() {
		select {
		case <-h.Identify().IdentifyWait(c):
		case <-ctx.Done():
		}
	}
}

// pingVia connects to the relay of the circuit address target, then
// through it to the target, pings over the relayed connection, waits for
// hole punching to give a direct connection, and pings again.
func pingVia(ctx context.Context, h *p2pnet.Host, target string, wait time.Duration) error {
	addr, err := ma.NewMultiaddr(target)
	if err != nil {
		return err
	}
	parts := strings.SplitN(target, "/p2p-circuit", 2)
	rai, err := peer.AddrInfoFromString(parts[0])
	if err != nil {
		return fmt.Errorf("relay address: %w", err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := h.Connect(cctx, *rai); err != nil {
		return fmt.Errorf("connecting to the relay: %w", err)
	}
	identified(cctx, h)

	direct := make(chan network.Conn, 1)
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == ai.ID && !c.Stat().Limited {
			select {
			case direct <- c:
			default:
			}
		}
	}})
	if err := h.Connect(cctx, *ai); err != nil {
		return fmt.Errorf("connecting through the relay: %w", err)
	}
	start := time.Now()
	rtt, err := ping.PingOnce(network.WithAllowLimitedConn(cctx, "ping"), h, ai.ID)
	if err != nil {
		return fmt.Errorf("relayed ping: %w", err)
	}
	labcmd.Emit(map[string]any{"type": "relayed", "rtt_ms": float64(rtt.Microseconds()) / 1000})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case c := <-direct:
		elapsed := time.Since(start)
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		defer pcancel()
		rtt, err := ping.PingOnce(pctx, h, ai.ID)
		if err != nil {
			return fmt.Errorf("direct ping: %w", err)
		}
		labcmd.Emit(map[string]any{"type": "direct", "addr": c.RemoteMultiaddr().String(), "transport": c.ConnState().Transport,
			"elapsed_ms": elapsed.Milliseconds(), "rtt_ms": float64(rtt.Microseconds()) / 1000})
	case <-t.C:
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		defer pcancel()
		rtt, err := ping.PingOnce(network.WithAllowLimitedConn(pctx, "ping"), h, ai.ID)
		if err != nil {
			return fmt.Errorf("relayed ping after the failed punch: %w", err)
		}
		labcmd.Emit(map[string]any{"type": "nodirect", "rtt_ms": float64(rtt.Microseconds()) / 1000})
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
