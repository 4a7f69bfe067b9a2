package metrics

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/holepunch"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/swarm"

	ma "github.com/multiformats/go-multiaddr"
)

// OtherProtocol is the protocol label of every protocol that is neither
// well known nor served by the host.
const OtherProtocol = "other"

// NoProtocol is the protocol label of streams that never named one.
const NoProtocol = "none"

// wellKnown are the protocols labelled by name whatever the host serves.
var wellKnown = []protocol.ID{
	ping.ID, identify.ID, identify.IDPush, perf.ID,
	relay.ProtoHop, relay.ProtoStop, holepunch.ID,
	"/libp2p/autonat/2/dial-request", "/libp2p/autonat/2/dial-back", "/libp2p/autonat/1.0.0",
	"/ipfs/kad/1.0.0", "/meshsub/1.0.0", "/meshsub/1.1.0", "/meshsub/1.2.0", "/floodsub/1.0.0",
}

// protocolLabels maps protocol IDs to label values. A protocol once
// labelled by name keeps its label, so a gauge raised under a label is
// lowered under the same one; the set grows only with the protocols the
// host serves, which the host chooses.
type protocolLabels struct {
	known sync.Map // protocol.ID → struct{}: labelled by name

	mu     sync.Mutex // guards served
	served func(protocol.ID) bool
}

func newProtocolLabels() *protocolLabels {
	l := &protocolLabels{}
	for _, p := range wellKnown {
		l.known.Store(p, struct{}{})
	}
	return l
}

// setServed sets the function that reports whether the host serves a
// protocol.
func (l *protocolLabels) setServed(f func(protocol.ID) bool) {
	l.mu.Lock()
	l.served = f
	l.mu.Unlock()
}

// label returns the label of p.
func (l *protocolLabels) label(p protocol.ID) string {
	if p == "" {
		return NoProtocol
	}
	if _, ok := l.known.Load(p); ok {
		return string(p)
	}
	l.mu.Lock()
	f := l.served
	l.mu.Unlock()
	if f != nil && f(p) {
		l.known.Store(p, struct{}{})
		return string(p)
	}
	return OtherProtocol
}

// direction labels a direction.
func direction(d network.Direction) string {
	switch d {
	case network.DirInbound:
		return "inbound"
	case network.DirOutbound:
		return "outbound"
	}
	return "unknown"
}

// ipVersion labels the IP version of an address: "ip4", "ip6", "dns"
// or "other".
func ipVersion(a ma.Multiaddr) string {
	if len(a) == 0 {
		return "other"
	}
	switch a[0].Code() {
	case ma.P_IP4:
		return "ip4"
	case ma.P_IP6, ma.P_IP6ZONE:
		return "ip6"
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
		return "dns"
	}
	return "other"
}

// addrTransport labels the transport of an address as the transports
// name themselves: "p2p-circuit", "webtransport", "wss", "ws",
// "quic-v1", "tcp", "udp" or "other".
func addrTransport(a ma.Multiaddr) string {
	var quic, tcp, tls, ws, wss, wt, udp bool
	for _, c := range a {
		switch c.Code() {
		case ma.P_CIRCUIT:
			return "p2p-circuit"
		case ma.P_WEBTRANSPORT:
			wt = true
		case ma.P_WSS:
			wss = true
		case ma.P_WS:
			ws = true
			wss = wss || tls
		case ma.P_TLS:
			tls = true
		case ma.P_QUIC_V1:
			quic = true
		case ma.P_TCP:
			tcp = true
		case ma.P_UDP:
			udp = true
		}
	}
	switch {
	case wt:
		return "webtransport"
	case wss:
		return "wss"
	case ws:
		return "ws"
	case quic:
		return "quic-v1"
	case tcp:
		return "tcp"
	case udp:
		return "udp"
	}
	return "other"
}

// knownTransports bounds the transport label of connections, whose
// transports name themselves.
var knownTransports = map[string]bool{
	"tcp": true, "quic-v1": true, "p2p-circuit": true, "ws": true, "wss": true,
	"websocket": true, "webtransport": true, "webrtc": true, "webrtc-direct": true, "memory": true,
}

// connTransport labels the transport of a connection.
func connTransport(cs network.ConnectionState, raddr ma.Multiaddr) string {
	if knownTransports[cs.Transport] {
		return cs.Transport
	}
	return addrTransport(raddr)
}

// orNone returns s, or "none" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Dial outcomes, the values of the outcome label of
// p2pnet_swarm_dials_total.
const (
	OutcomeSuccess       = "success"
	OutcomeTimeout       = "timeout"
	OutcomeRefused       = "refused"
	OutcomeWrongPeer     = "wrong_peer"
	OutcomeGated         = "gated"
	OutcomeResourceLimit = "resource_limit"
	OutcomeBlackHoled    = "black_holed"
	OutcomeBackoff       = "backoff"
	OutcomeCanceled      = "canceled"
	OutcomeSelf          = "self"
	OutcomeNoTransport   = "no_transport"
	OutcomeOther         = "other"
)

// dialOutcome classifies the error of a dial.
func dialOutcome(err error) string {
	var gated *connmgr.GatedError
	var ne net.Error
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.Is(err, swarm.ErrWrongPeer), errors.Is(err, sec.ErrPeerIDMismatch):
		return OutcomeWrongPeer
	case errors.As(err, &gated):
		return OutcomeGated
	case errors.Is(err, network.ErrResourceLimitExceeded):
		return OutcomeResourceLimit
	case errors.Is(err, swarm.ErrDialRefusedBlackHole):
		return OutcomeBlackHoled
	case errors.Is(err, swarm.ErrDialBackoff):
		return OutcomeBackoff
	case errors.Is(err, swarm.ErrDialToSelf):
		return OutcomeSelf
	case errors.Is(err, swarm.ErrNoTransport):
		return OutcomeNoTransport
	case errors.Is(err, syscall.ECONNREFUSED):
		return OutcomeRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	}
	return OutcomeOther
}

// outcome labels an error as "ok" or "error".
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return "error"
}
