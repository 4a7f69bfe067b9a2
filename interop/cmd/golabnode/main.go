// Command golabnode is a go-libp2p host for the namespace lab's DCUtR
// interop tests (internal/netlab), built by them with go build in this
// module. It speaks the JSON lines of the lab's own labnode:
//
//	golabnode listen --listen MADDR --relay MADDR ...    {"type":"circuit"}, {"type":"holepunch"}...
//	golabnode ping   --listen MADDR [--wait D] CIRCUIT   {"type":"relayed"}, then {"type":"direct"} or {"type":"nodirect"}
//	golabnode autonat-v1 --listen MADDR                    {"type":"listen"}: serves AutoNAT v1 (see runAutoNATv1)
//
// --public-cidr CIDR (repeatable) marks a range public for hole punching.
//
// go-libp2p counts the lab's public segment (198.51.100.0/24, a
// documentation range) as unroutable, so its host would never find a
// public address of its own and EnableHolePunching would never serve
// DCUtR. The program therefore starts go-libp2p's hole-punching service
// itself (holepunch.NewService, the one EnableHolePunching starts) with
// an address function that counts --public-cidr ranges as public: the
// addresses peers observed us at, from identify. The protocol code is
// go-libp2p's own.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/p2pnet/p2pnet/internal/netlab/labcmd"

	ma "github.com/multiformats/go-multiaddr"
)

func main() {
	mode, fs := labcmd.Mode("golabnode listen|ping [flags]")
	var f labcmd.Flags
	f.Register(fs)
	var relays labcmd.Strings
	fs.Var(&relays, "relay", "listen: relay to reserve on")
	wait := fs.Duration("wait", 30*time.Second, "ping: how long to wait for a direct connection")
	fs.Parse(os.Args[2:])
	ctx, stop := labcmd.SignalContext()
	defer stop()
	if mode == "autonat-v1" {
		labcmd.Exit("golabnode", runAutoNATv1(ctx, f.Listen))
		return
	}
	labcmd.Exit("golabnode", run(ctx, mode, f.Listen, relays, f.PublicCIDR, *wait, fs.Args()))
}

// node is a go-libp2p host with its hole-punching service.
type node struct {
	h      host.Host
	public []netip.Prefix
	hp     *holepunch.Service

	mu       sync.Mutex // guards observed
	observed []ma.Multiaddr
}

func run(ctx context.Context, mode string, listen, relays, cidrs []string, wait time.Duration, args []string) error {
	public, err := labcmd.Prefixes(cidrs)
	if err != nil {
		return err
	}
	n := &node{public: public}
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen...), libp2p.EnableRelay(), libp2p.ForceReachabilityPrivate())
	if err != nil {
		return err
	}
	n.h = h
	defer h.Close()
	idSub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return err
	}
	defer idSub.Close()
	protoSub, err := h.EventBus().Subscribe(new(event.EvtLocalProtocolsUpdated))
	if err != nil {
		return err
	}
	defer protoSub.Close()
	ids, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		return fmt.Errorf("host %T has no identify service", h)
	}
	n.hp, err = holepunch.NewService(h, ids.IDService(), n.holePunchAddrs, holepunch.WithTracer(n))
	if err != nil {
		return err
	}
	defer n.hp.Close()

	var target string
	switch mode {
	case "listen":
		if len(relays) != 1 {
			return errors.New("listen needs one --relay")
		}
		target = relays[0]
	case "ping":
		if len(args) != 1 {
			return errors.New("ping needs one address")
		}
		target = strings.SplitN(args[0], "/p2p-circuit", 2)[0]
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	relay, err := peer.AddrInfoFromString(target)
	if err != nil {
		return fmt.Errorf("relay address: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := h.Connect(cctx, *relay); err != nil {
		return fmt.Errorf("connecting to the relay: %w", err)
	}
	// The relay's identify tells us our public address; with it the
	// hole-punching service starts serving DCUtR.
	if err := n.awaitIdentify(cctx, idSub, relay.ID); err != nil {
		return err
	}
	if err := awaitProtocol(cctx, protoSub, holepunch.Protocol); err != nil {
		return err
	}
	if mode == "ping" {
		return n.pingVia(ctx, args[0], wait)
	}
	if _, err := client.Reserve(cctx, h, *relay); err != nil {
		return fmt.Errorf("reserving on the relay: %w", err)
	}
	labcmd.Emit(map[string]any{"type": "circuit", "addr": target + "/p2p-circuit/p2p/" + h.ID().String(), "observed": labcmd.Strs(n.holePunchAddrs())})
	for {
		select {
		case e := <-idSub.Out():
			n.record(e.(event.EvtPeerIdentificationCompleted))
		case <-ctx.Done():
			return nil
		}
	}
}

// awaitIdentify records observed addresses until identify with p is done.
func (n *node) awaitIdentify(ctx context.Context, sub event.Subscription, p peer.ID) error {
	for {
		select {
		case e := <-sub.Out():
			ev := e.(event.EvtPeerIdentificationCompleted)
			n.record(ev)
			if ev.Peer == p {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("identify with the relay: %w", ctx.Err())
		}
	}
}

// awaitProtocol waits until we serve pid.
func awaitProtocol(ctx context.Context, sub event.Subscription, pid protocol.ID) error {
	for {
		select {
		case e := <-sub.Out():
			for _, p := range e.(event.EvtLocalProtocolsUpdated).Added {
				if p == pid {
					return nil
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", pid, ctx.Err())
		}
	}
}

// record keeps the address a peer observed us at, when it is public.
func (n *node) record(ev event.EvtPeerIdentificationCompleted) {
	if ev.ObservedAddr == nil || !n.isPublic(ev.ObservedAddr) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.ContainsFunc(n.observed, ev.ObservedAddr.Equal) {
		n.observed = append(n.observed, ev.ObservedAddr)
	}
}

// holePunchAddrs returns our public addresses: observed ones, then
// listen addresses in a public range.
func (n *node) holePunchAddrs() []ma.Multiaddr {
	n.mu.Lock()
	out := slices.Clone(n.observed)
	n.mu.Unlock()
	for _, a := range n.h.Addrs() {
		if n.isPublic(a) && !slices.ContainsFunc(out, a.Equal) {
			out = append(out, a)
		}
	}
	return out
}

func (n *node) isPublic(a ma.Multiaddr) bool {
	if len(a) == 0 {
		return false
	}
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return false
	}
	ip, ok := netip.AddrFromSlice(a[0].RawValue())
	if !ok || (a[0].Code() != ma.P_IP4 && a[0].Code() != ma.P_IP6) {
		return false
	}
	return slices.ContainsFunc(n.public, func(p netip.Prefix) bool { return p.Contains(ip.Unmap()) })
}

// Trace reports go-libp2p's hole-punching events as holepunch lines.
func (n *node) Trace(evt *holepunch.Event) {
	m := map[string]any{"type": "holepunch", "peer": evt.Remote.String(), "event": evt.Type}
	switch e := evt.Evt.(type) {
	case *holepunch.EndHolePunchEvt:
		m["success"] = e.Success
		m["elapsed_ms"] = e.EllapsedTime.Milliseconds()
		if e.Error != "" {
			m["error"] = e.Error
		}
	case *holepunch.DirectDialEvt:
		m["success"] = e.Success
		if e.Error != "" {
			m["error"] = e.Error
		}
	case *holepunch.HolePunchAttemptEvt:
		m["attempt"] = e.Attempt
	case *holepunch.ProtocolErrorEvt:
		m["error"] = e.Error
	default:
		return
	}
	labcmd.Emit(m)
}

// pingVia connects through the relay to the circuit address target,
// pings over the relayed connection, waits for hole punching to give a
// direct connection, and pings again.
func (n *node) pingVia(ctx context.Context, target string, wait time.Duration) error {
	ai, err := peer.AddrInfoFromString(target)
	if err != nil {
		return err
	}
	direct := make(chan network.Conn, 1)
	n.h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == ai.ID && !c.Stat().Limited {
			select {
			case direct <- c:
			default:
			}
		}
	}})
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := n.h.Connect(cctx, *ai); err != nil {
		return fmt.Errorf("connecting through the relay: %w", err)
	}
	start := time.Now()
	rtt, err := pingOnce(network.WithAllowLimitedConn(cctx, "ping"), n.h, ai.ID)
	if err != nil {
		return fmt.Errorf("relayed ping: %w", err)
	}
	labcmd.Emit(map[string]any{"type": "relayed", "rtt_ms": float64(rtt.Microseconds()) / 1000})
	t := time.NewTimer(wait)
	defer t.Stop()
	pctx, pcancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer pcancel()
	select {
	case c := <-direct:
		elapsed := time.Since(start)
		rtt, err := pingOnce(pctx, n.h, ai.ID)
		if err != nil {
			return fmt.Errorf("direct ping: %w", err)
		}
		labcmd.Emit(map[string]any{"type": "direct", "addr": c.RemoteMultiaddr().String(), "transport": c.ConnState().Transport,
			"elapsed_ms": elapsed.Milliseconds(), "rtt_ms": float64(rtt.Microseconds()) / 1000})
	case <-t.C:
		rtt, err := pingOnce(network.WithAllowLimitedConn(pctx, "ping"), n.h, ai.ID)
		if err != nil {
			return fmt.Errorf("relayed ping after the failed punch: %w", err)
		}
		labcmd.Emit(map[string]any{"type": "nodirect", "rtt_ms": float64(rtt.Microseconds()) / 1000})
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// pingOnce runs one ping with p.
func pingOnce(ctx context.Context, h host.Host, p peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := <-ping.Ping(ctx, h, p)
	return r.RTT, r.Error
}
