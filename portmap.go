package p2pnet

import (
	"strconv"
	"sync"

	"github.com/p2pnet/p2pnet/nat"
	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// portMapConfig is what NATPortMap sets.
type portMapConfig struct {
	enabled bool
	opts    []nat.PortMapOption
}

// NATPortMap asks the local network's gateway to forward each port the
// host listens on over IPv4, TCP and UDP, ports listened on later
// included: UPnP IGD and NAT-PMP are tried at once and whichever answers
// is used (see nat.PortMapper: leases of an hour renewed at half time,
// discovery again every 5 minutes while no gateway answers, mappings
// removed on Close). A mapped address (/ip4/EXTERNAL/tcp/PORT,
// /ip4/EXTERNAL/udp/PORT/quic-v1, …) is checked by AutoNAT like an
// observed one and announced in Addrs once found reachable. opts tune
// the mapper (nat.PortMapLogger, nat.PortMapLease, …). Default: off.
func NATPortMap(opts ...nat.PortMapOption) Option {
	return func(c *config) error {
		c.portMap.enabled = true
		c.portMap.opts = append(c.portMap.opts, opts...)
		return nil
	}
}

// portMap maps the host's listen ports.
type portMap struct {
	h     *Host
	notif *network.NotifyBundle

	mu     sync.Mutex // guards the following
	mapper *nat.PortMapper
	mapped map[string]portKey
}

// getMapper returns the mapper, nil while startPortMap makes it.
func (pm *portMap) getMapper() *nat.PortMapper {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	return pm.mapper
}

// portKey is a port asked of the mapper.
type portKey struct {
	proto network.NATTransportProtocol
	port  uint16
}

// startPortMap starts mapping h's listen ports when cfg asks for it;
// New calls it once the host listens.
func (h *Host) startPortMap(cfg portMapConfig) {
	if !cfg.enabled {
		return
	}
	pm := &portMap{h: h, mapped: map[string]portKey{}}
	h.portMap = pm // before the mapper runs: its changes read it
	opts := append([]nat.PortMapOption{nat.OnPortMapChange(pm.changed)}, cfg.opts...)
	m := nat.NewPortMapper(opts...)
	pm.mu.Lock()
	pm.mapper = m
	pm.mu.Unlock()
	pm.notif = &network.NotifyBundle{
		ListenF:      func(_ network.Network, a ma.Multiaddr) { pm.listen(a) },
		ListenCloseF: func(_ network.Network, a ma.Multiaddr) { pm.unlisten(a) },
	}
	h.swarm.Notify(pm.notif) // before reading the addresses, not to miss one
	for _, a := range h.swarm.ListenAddresses() {
		pm.listen(a)
	}
}

// listen maps a's port, once per listen address.
func (pm *portMap) listen(a ma.Multiaddr) {
	k, ok := mappable(a)
	if !ok {
		return
	}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if _, had := pm.mapped[string(a.Bytes())]; had {
		return
	}
	pm.mapped[string(a.Bytes())] = k
	pm.mapper.Map(k.proto, k.port)
}

// unlisten undoes listen.
func (pm *portMap) unlisten(a ma.Multiaddr) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	k, had := pm.mapped[string(a.Bytes())]
	if !had {
		return
	}
	delete(pm.mapped, string(a.Bytes()))
	pm.mapper.Unmap(k.proto, k.port)
}

// changed runs when the mappings change: our candidate addresses did.
func (pm *portMap) changed() {
	if an := pm.h.autoNAT; an != nil {
		if c := an.getClient(); c != nil {
			c.Kick()
		}
	}
	pm.h.addrsChanged()
}

// close removes the mappings and stops the mapper.
func (pm *portMap) close() {
	if pm == nil {
		return
	}
	pm.h.swarm.StopNotify(pm.notif)
	pm.getMapper().Close()
}

// mappable returns the port of an IPv4 TCP or UDP listen address a
// gateway could forward to: not loopback, not a circuit.
func mappable(a ma.Multiaddr) (portKey, bool) {
	if len(a) < 2 || a[0].Code() != ma.P_IP4 {
		return portKey{}, false
	}
	if ip := a[0].RawValue(); len(ip) == 4 && ip[0] == 127 {
		return portKey{}, false
	}
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			return portKey{}, false
		}
	}
	var proto network.NATTransportProtocol
	switch a[1].Code() {
	case ma.P_TCP:
		proto = network.NATTransportTCP
	case ma.P_UDP:
		proto = network.NATTransportUDP
	default:
		return portKey{}, false
	}
	port, err := strconv.ParseUint(a[1].Value(), 10, 16)
	if err != nil || port == 0 {
		return portKey{}, false
	}
	return portKey{proto, uint16(port)}, true
}

// mappedAddrs returns the addresses the gateway's mappings give: each
// mapped listen address with the external IP and port in place of its
// own. Nil without NATPortMap or a gateway.
func (h *Host) mappedAddrs() []ma.Multiaddr {
	pm := h.portMap
	if pm == nil || pm.getMapper() == nil {
		return nil
	}
	ms := pm.getMapper().Mappings()
	if len(ms) == 0 {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range h.swarm.ListenAddresses() {
		k, ok := mappable(a)
		if !ok {
			continue
		}
		for _, m := range ms {
			if m.Protocol != k.proto || m.InternalPort != k.port {
				continue
			}
			s := "/ip4/" + m.External.Addr().String() + "/" + a[1].Protocol().Name + "/" + strconv.Itoa(int(m.External.Port()))
			if len(a) > 2 {
				s += a[2:].String()
			}
			ext, err := ma.NewMultiaddr(s)
			if err == nil && !ma.Contains(out, ext) {
				out = append(out, ext)
			}
		}
	}
	return out
}

// PortMappings returns the ports the gateway forwards to the host now
// (NATPortMap), nil without NATPortMap.
func (h *Host) PortMappings() []nat.Mapping {
	if h.portMap == nil {
		return nil
	}
	return h.portMap.getMapper().Mappings()
}
