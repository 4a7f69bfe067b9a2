// Command portmapnode is a program of the namespace lab's port-mapping
// scenario, built by the tests with go build. It reports on standard
// output in JSON lines with a "type":
//
//	portmapnode stun --listen IP:PORT
//	  a STUN server (RFC 5389 Binding) for miniupnpd's check of its public address: {"type":"stun"}
//	portmapnode listen --listen MADDR... [--connect MADDR] [--public-cidr CIDR]...
//	  a host with NATPortMap: {"type":"listen"}, then {"type":"state"} with its mappings,
//	  reachability and addresses each time one changes, {"type":"conn"} per connection
//	portmapnode dial MADDR
//	  connects, pings, and exits: {"type":"dialed","addr":...,"limited":false}
//
// listen and stun run until SIGTERM; listen then closes the host, which
// removes its mappings.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/internal/netlab/labcmd"
	"github.com/p2pnet/p2pnet/nat"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
)

func main() {
	mode, fs := labcmd.Mode("portmapnode stun|listen|dial [flags]")
	var f labcmd.Flags
	f.Register(fs)
	var connect labcmd.Strings
	fs.Var(&connect, "connect", "peer to connect to (repeatable)")
	fs.Parse(os.Args[2:])
	ctx, stop := labcmd.SignalContext()
	defer stop()
	var err error
	switch mode {
	case "stun":
		err = serveSTUN(ctx, f.Listen)
	case "listen":
		err = runListen(ctx, f.Listen, connect, f.PublicCIDR)
	case "dial":
		err = dial(ctx, fs.Args())
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	labcmd.Exit("portmapnode", err)
}

// serveSTUN answers Binding requests with the sender's address
// (XOR-MAPPED-ADDRESS), from the address they were sent to, whatever
// change they ask for: miniupnpd wants four answers and the mapped
// address equal to its own to trust that nothing filters.
func serveSTUN(ctx context.Context, listen []string) error {
	if len(listen) != 1 {
		return fmt.Errorf("stun needs one --listen IP:PORT")
	}
	c, err := net.ListenPacket("udp4", listen[0])
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); c.Close() }()
	labcmd.Emit(map[string]any{"type": "stun", "addr": c.LocalAddr().String()})
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return nil
		}
		if resp, ok := stunAnswer(buf[:n], from.(*net.UDPAddr)); ok {
			c.WriteTo(resp, from)
		}
	}
}

// stunMagic is RFC 5389's magic cookie.
const stunMagic = 0x2112A442

// stunAnswer returns the Binding success response to req from from, or
// false when req is not a Binding request.
func stunAnswer(req []byte, from *net.UDPAddr) ([]byte, bool) {
	if len(req) < 20 || binary.BigEndian.Uint16(req[0:2]) != 0x0001 || binary.BigEndian.Uint32(req[4:8]) != stunMagic {
		return nil, false
	}
	ip := from.IP.To4()
	if ip == nil {
		return nil, false
	}
	resp := binary.BigEndian.AppendUint16(nil, 0x0101) // Binding success
	resp = binary.BigEndian.AppendUint16(resp, 12)     // one attribute
	resp = append(resp, req[4:20]...)                  // cookie and transaction
	resp = binary.BigEndian.AppendUint16(resp, 0x0020) // XOR-MAPPED-ADDRESS
	resp = binary.BigEndian.AppendUint16(resp, 8)
	resp = append(resp, 0, 1) // IPv4
	resp = binary.BigEndian.AppendUint16(resp, uint16(from.Port)^uint16(stunMagic>>16))
	return binary.BigEndian.AppendUint32(resp, binary.BigEndian.Uint32(ip)^stunMagic), true
}

func runListen(ctx context.Context, listen, connect, cidrs []string) error {
	states := make(chan struct{}, 1)
	kick := func() {
		select {
		case states <- struct{}{}:
		default:
		}
	}
	h, err := p2pnet.New(p2pnet.ListenAddrStrings(listen...), p2pnet.PublicCIDRs(cidrs...),
		p2pnet.NATPortMap(nat.OnPortMapChange(kick)))
	if err != nil {
		return err
	}
	defer h.Close()
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		labcmd.Emit(map[string]any{"type": "conn", "peer": c.RemotePeer().String(), "addr": c.RemoteMultiaddr().String(),
			"dir": c.Stat().Direction.String(), "limited": c.Stat().Limited})
	}})
	sub, err := h.EventBus().Subscribe([]any{new(event.EvtLocalAddressesUpdated), new(event.EvtLocalReachabilityChanged)})
	if err != nil {
		return err
	}
	defer sub.Close()
	labcmd.Emit(map[string]any{"type": "listen", "id": h.ID().String(), "addrs": labcmd.Strs(h.Addrs())})
	err = labcmd.ConnectAll(ctx, connect, func(ctx context.Context, addr string) error {
		ai, err := peer.AddrInfoFromString(addr)
		if err != nil {
			return err
		}
		return h.Connect(ctx, *ai)
	})
	if err != nil {
		return err
	}
	var last string
	for {
		var ms []string
		for _, m := range h.PortMappings() {
			ms = append(ms, fmt.Sprintf("%v %d %s", m.Protocol, m.InternalPort, m.External))
		}
		st := map[string]any{"type": "state", "mappings": ms, "reachability": h.Reachability().String(),
			"addrs": labcmd.Strs(h.Addrs())}
		if b, _ := json.Marshal(st); string(b) != last {
			last = string(b)
			labcmd.Emit(st)
		}
		select {
		case <-states:
		case <-sub.Out():
		case <-ctx.Done():
			return h.Close()
		}
	}
}

func dial(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("dial needs one address")
	}
	ai, err := peer.AddrInfoFromString(args[0])
	if err != nil {
		return err
	}
	h, err := p2pnet.New(p2pnet.ListenAddrs(), p2pnet.DisableAutoNAT(), p2pnet.DisableHolePunching())
	if err != nil {
		return err
	}
	defer h.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.Connect(cctx, *ai); err != nil {
		return err
	}
	rtt, err := ping.PingOnce(cctx, h, ai.ID)
	if err != nil {
		return err
	}
	for _, c := range h.Network().ConnsToPeer(ai.ID) {
		labcmd.Emit(map[string]any{"type": "dialed", "addr": c.RemoteMultiaddr().String(), "limited": c.Stat().Limited,
			"rtt_ms": float64(rtt.Microseconds()) / 1000})
	}
	return nil
}
