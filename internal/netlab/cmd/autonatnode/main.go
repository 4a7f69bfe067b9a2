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
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/autonat"

	ma "github.com/multiformats/go-multiaddr"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

var (
	outMu sync.Mutex
	out   = json.NewEncoder(os.Stdout)
)

func emit(v map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	out.Encode(v)
}

func main() {
	var listen, connect, cidrs multi
	flag.Var(&listen, "listen", "listen address (repeatable)")
	flag.Var(&connect, "connect", "peer to connect to (repeatable)")
	flag.Var(&cidrs, "public-cidr", "range to count as public (repeatable)")
	flag.Parse()
	if err := run(listen, connect, cidrs); err != nil {
		fmt.Fprintln(os.Stderr, "autonatnode:", err)
		os.Exit(1)
	}
}

func run(listen, connect, cidrs []string) error {
	var public autonat.Public
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return err
		}
		public = append(public, p.Masked())
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
			emit(map[string]any{"type": "check", "addr": a.String(), "reachable": r.Reachable, "error": fmt.Sprint(err)})
		}),
		autonat.OnReachability(func(r network.Reachability) {
			emit(map[string]any{"type": "reachability", "reachability": r.String(), "observed": fmt.Sprint(h.Identify().ObservedAddrs())})
		}))
	defer cli.Close()
	var addrs []string
	for _, a := range h.P2PAddrs() {
		addrs = append(addrs, a.String())
	}
	emit(map[string]any{"type": "listen", "addrs": addrs})
	for _, c := range connect {
		ai, err := peer.AddrInfoFromString(c)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = h.Connect(ctx, *ai)
		cancel()
		if err != nil {
			return err
		}
		emit(map[string]any{"type": "connected", "peer": ai.ID.String()})
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}
