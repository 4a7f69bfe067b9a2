package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/nat"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"

	ma "github.com/multiformats/go-multiaddr"
)

// stringsFlag collects a repeated string flag.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(s string) error { *f = append(*f, s); return nil }

// hostKey returns the key in keyFile (created if absent), or a fresh
// Ed25519 key when keyFile is empty.
func hostKey(keyFile string) (ic.PrivKey, error) {
	priv, _, err := loadOrCreateKey(keyFile, ic.Ed25519, 0)
	return priv, err
}

// signalContext is cancelled by SIGINT or SIGTERM; tests replace it.
var signalContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runListen(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("listen", stderr)
	var listen stringsFlag
	fl.Var(&listen, "listen", "listen on `MADDR` (repeatable); default: every interface, IPv4 and IPv6, TCP and QUIC, ports the system picks")
	keyFile := fl.String("key", "", "identity key `FILE` (created if absent); default: a fresh key")
	limitsFile := fl.String("limits", "", "resource limits from this JSON `FILE` (see 'p2pnet limits'); default: limits scaled to this machine")
	noPerf := fl.Bool("no-perf", false, "do not serve the perf protocol (it lets any peer make this node send and receive data)")
	limitLoopback := fl.Bool("limit-loopback", false, "apply the per-address limits to loopback addresses too, each of 127.0.0.0/8 and ::1 counting as a host of its own, so that attacks from many addresses can be tried on one machine")
	relayService := fl.Bool("relay-service", false, "serve as a circuit relay v2 for other peers (reservations 1 h, circuits 2 min and 128 KiB each way)")
	autoNATService := fl.Bool("autonat-service", false, "serve AutoNAT v1 and v2 for other peers: dial them back, from a second identity, to tell them which of their addresses are reachable (60 requests a minute, 12 per peer)")
	var relays stringsFlag
	fl.Var(&relays, "relay", "reserve a slot on the relay at `MADDR`/p2p/ID (repeatable) and print each /p2p-circuit address once it holds")
	var bootstrap stringsFlag
	fl.Var(&bootstrap, "bootstrap", "connect to the peer at `MADDR`/p2p/ID once listening (repeatable): a first contact, whose AutoNAT service tells this node whether it is reachable and whose relay service it reserves on by itself when it is not")
	connLow := fl.Int("conn-low", connmgr.DefaultLowWater, "connection manager: trim down to `N` connections")
	connHigh := fl.Int("conn-high", connmgr.DefaultHighWater, "connection manager: trim once more than `N` connections are open")
	var connGrace durationFlag
	connGrace.d, connGrace.zeroOK = connmgr.DefaultGracePeriod, true
	fl.Var(&connGrace, "conn-grace", "connection manager: new connections are safe from trimming for `D` (seconds or a duration)")
	var publicCIDRs cidrsFlag
	fl.Var(&publicCIDRs, "public-cidr", publicCIDRHelp)
	natPortMap := fl.Bool("nat-portmap", false, "ask the local gateway (UPnP IGD or NAT-PMP) to forward the listen ports, logging each mapping; the mapped addresses are announced once AutoNAT finds them reachable")
	metricsAddr := fl.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (host:port, such as 127.0.0.1:9464; port 0 picks one, logged)")
	withPprof := fl.Bool("pprof", false, "with --metrics, serve Go's profiler at /debug/pprof/ too (it exposes the program's internals: keep ADDR private)")
	tlsCert := fl.String("tls-cert", "", "certificate `FILE` (PEM, with its chain) for /tls/ws listen addresses: browsers check it against the name they dial")
	tlsKey := fl.String("tls-key", "", "private key `FILE` (PEM) of --tls-cert")
	logs := addLogFlags(fl)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if *withPprof && *metricsAddr == "" {
		return usagef("--pprof needs --metrics ADDR")
	}
	if err := noArgs(fl); err != nil {
		return err
	}
	priv, err := hostKey(*keyFile)
	if err != nil {
		return err
	}
	if *connLow < 0 || *connHigh < *connLow {
		return usagef("--conn-low %d and --conn-high %d: want 0 <= low <= high", *connLow, *connHigh)
	}
	opts := []p2pnet.Option{p2pnet.Identity(priv), p2pnet.ConnectionManager(*connLow, *connHigh, connmgr.WithGracePeriod(connGrace.d))}
	serving := "ping and identify"
	if !*noPerf {
		opts = append(opts, p2pnet.EnablePerf())
		serving = "ping, identify and perf"
	}
	log := logs.logger(stderr)
	limits := rcmgr.DefaultLimits()
	if *limitsFile != "" {
		if limits, err = loadLimitsFile(*limitsFile); err != nil {
			return err
		}
	}
	// Refusals are summed up on stderr every 10 s that has any, and at
	// the end.
	rm, err := rcmgr.New(limits, rcmgr.WithLoopbackExempt(!*limitLoopback), rcmgr.WithRefusalLog(log, rcmgr.DefaultRefusalLogInterval))
	if err != nil && *limitsFile != "" {
		return fmt.Errorf("limits file %s: %w", *limitsFile, err)
	} else if err != nil {
		return fmt.Errorf("resource manager: %w", err)
	}
	defer rm.Close()
	opts = append(opts, p2pnet.ResourceManager(rm))
	if len(listen) > 0 {
		opts = append(opts, p2pnet.ListenAddrStrings(listen...))
	}
	if len(publicCIDRs) > 0 {
		opts = append(opts, p2pnet.PublicCIDRs(publicCIDRs...))
	}
	if o, err := wsTLSOption(*tlsCert, *tlsKey); err != nil {
		return err
	} else if o != nil {
		opts = append(opts, o)
	}
	if *natPortMap {
		opts = append(opts, p2pnet.NATPortMap(nat.PortMapLogger(log)))
	}
	if *relayService {
		opts = append(opts, p2pnet.EnableRelayService())
		serving += ", and relays for others"
	}
	if *autoNATService {
		opts = append(opts, p2pnet.EnableAutoNATService())
		serving += ", and AutoNAT for others"
	}
	if len(relays) > 0 {
		var addrs []ma.Multiaddr
		for _, r := range relays {
			a, err := parsePeerAddr(r)
			if err != nil {
				return usagef("--relay: %v", err)
			}
			p2p, err := peer.AddrInfoToP2pAddrs(a)
			if err != nil {
				return usagef("--relay: %v", err)
			}
			addrs = append(addrs, p2p...)
		}
		opts = append(opts, p2pnet.StaticRelays(addrs...))
	}
	if *metricsAddr != "" {
		ms, err := startMetricsServer(*metricsAddr, *withPprof, log)
		if err != nil {
			return err
		}
		defer ms.close()
		opts = append(opts, p2pnet.PrometheusRegisterer(ms.reg))
	}
	var peers []*peer.AddrInfo
	for _, b := range bootstrap {
		ai, err := parsePeerAddr(b)
		if err != nil {
			return usagef("--bootstrap: %v", err)
		}
		peers = append(peers, ai)
	}
	ctx, stop := signalContext()
	defer stop()
	h, err := p2pnet.New(opts...)
	if err != nil {
		return err
	}
	defer h.Close()

	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			log.Info("connected", connAttrs(c)...)
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			log.Info("disconnected", "peer", c.RemotePeer(), "addr", c.RemoteMultiaddr())
		},
	})
	for _, a := range h.P2PAddrs() {
		fmt.Fprintln(stdout, a)
	}
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	log.Info("listening; serving "+serving+"; stop with Ctrl-C", "peer", h.ID())
	stopEvents, err := logHostEvents(ctx, h, log)
	if err != nil {
		return err
	}
	defer stopEvents()
	for _, ai := range peers {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := h.Connect(cctx, *ai); err != nil {
			log.Warn("bootstrap peer unreachable", "peer", ai.ID, "err", err)
		} else {
			log.Info("bootstrap peer connected", "peer", ai.ID)
		}
		cancel()
	}
	printRelayAddrs(ctx, h, stdout)
	log.Info("shutting down")
	return h.Close()
}

// printRelayAddrs prints each /p2p-circuit address of h, with h's ID, once
// its reservation holds, until ctx ends.
func printRelayAddrs(ctx context.Context, h *p2pnet.Host, stdout io.Writer) {
	self := ma.StringCast("/p2p/" + h.ID().String())
	printed := map[string]bool{}
	for {
		changed := h.RelayAddrsChanged() // before reading, not to miss a change
		for _, a := range h.RelayAddrs() {
			full := a.Encapsulate(self)
			if !printed[string(full.Bytes())] {
				printed[string(full.Bytes())] = true
				fmt.Fprintln(stdout, full)
				if f, ok := stdout.(interface{ Sync() error }); ok {
					f.Sync()
				}
			}
		}
		select {
		case <-changed: // nil without relays: waits for ctx alone
		case <-ctx.Done():
			return
		}
	}
}
