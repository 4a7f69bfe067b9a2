// Command autonatnode is a p2pnet host for the namespace lab's AutoNAT
// scenarios, built by the tests with go build. It serves AutoNAT v2 and
// v1 (its dial backs from a second host of another identity) and runs
// the client (v2, or v1 with a peer that serves only v1) on its listen
// addresses and the addresses identify observes,
// reporting on standard output in JSON lines with a "type":
//
//	autonatnode --listen MADDR [--connect MADDR] [--public-cidr CIDR]...
//	  {"type":"listen","addrs":[...]}, {"type":"reachability","reachability":"Public"}...
//
// It runs until killed.
package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/netlab/labcmd"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/autonat"

	ma "github.com/multiformats/go-multiaddr"
)

func main() {
	var f labcmd.Flags
	f.Register(flag.CommandLine)
	var connect labcmd.Strings
	flag.Var(&connect, "connect", "peer to connect to (repeatable)")
	flag.Parse()
	labcmd.Exit("autonatnode", run(f.Listen, connect, f.PublicCIDR))
}

func run(listen, connect, cidrs []string) error {
	public, err := labcmd.Prefixes(cidrs)
	if err != nil {
		return err
	}
	// The node runs its own AutoNAT server and client below, to report
	// each result: the host's own client stays off.
	h, err := p2pnet.New(p2pnet.ListenAddrStrings(listen...), p2pnet.PublicCIDRs(cidrs...), p2pnet.DisableHolePunching(), p2pnet.DisableAutoNAT())
	if err != nil {
		return err
	}
	defer h.Close()
	dialer, err := p2pnet.New(p2pnet.ListenAddrs(), p2pnet.DisableHolePunching(), p2pnet.DisableAutoNAT())
	if err != nil {
		return err
	}
	defer dialer.Close()
	srv := autonat.NewServer(h, dialer, autonat.ServerPublic(public))
	defer srv.Close()
	cli := autonat.NewClient(h, autonat.ClientPublic(public),
		autonat.Candidates(func() []ma.Multiaddr { return append(h.Addrs(), h.Identify().ObservedAddrs()...) }),
		autonat.OnResult(func(a ma.Multiaddr, r autonat.Result, err error) {
			labcmd.Emit(map[string]any{"type": "check", "addr": a.String(), "reachable": r.Reachable, "error": fmt.Sprint(err)})
		}),
		autonat.OnReachability(func(r network.Reachability) {
			labcmd.Emit(map[string]any{"type": "reachability", "reachability": r.String(), "observed": fmt.Sprint(h.Identify().ObservedAddrs())})
		}))
	defer cli.Close()
	labcmd.Emit(map[string]any{"type": "listen", "addrs": labcmd.Strs(h.P2PAddrs())})
	ctx, stop := labcmd.SignalContext()
	defer stop()
	err = labcmd.ConnectAll(ctx, connect, func(ctx context.Context, addr string) error {
		ai, err := peer.AddrInfoFromString(addr)
		if err != nil {
			return err
		}
		if err := h.Connect(ctx, *ai); err != nil {
			return err
		}
		labcmd.Emit(map[string]any{"type": "connected", "peer": ai.ID.String()})
		return nil
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
