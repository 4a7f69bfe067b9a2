package p2pnet

import (
	"slices"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// Addrs returns the addresses others can dial the host at, in a stable
// order:
//   - public addresses that are not listen addresses (what peers observe
//     of us through a NAT, what a port mapping gives) once AutoNAT has
//     confirmed them reachable;
//   - the listen addresses with unspecified ones expanded to the
//     machine's interface addresses, without link-local or other
//     addresses that need a zone, without duplicates: public, then
//     private, then loopback; TCP, then QUIC, then other transports
//     within each; IPv4 before IPv6 (see
//     swarm.Swarm.InterfaceListenAddresses). A public listen address that
//     AutoNAT found unreachable (a firewall drops what comes in) is left
//     out; one not yet checked stays, as do private and loopback ones,
//     which AutoNAT does not check;
//   - the relay addresses of reservations that hold (StaticRelays, and
//     the relays the host reserves on by itself while it is Private, see
//     AutoRelays).
//
// The host tells its peers (identify push) and the event bus
// (EvtLocalAddressesUpdated) when the set changes.
func (h *Host) Addrs() []ma.Multiaddr {
	listen, _ := h.swarm.InterfaceListenAddresses()
	var out []ma.Multiaddr
	if an := h.autoNAT; an != nil && an.getClient() != nil {
		for _, a := range an.candidates() {
			if an.verdict(a) == network.ReachabilityPublic &&
				!ma.Contains(listen, a) && !ma.Contains(out, a) {
				out = append(out, a)
			}
		}
		listen = slices.DeleteFunc(listen, func(a ma.Multiaddr) bool {
			return an.verdict(a) == network.ReachabilityPrivate
		})
	}
	out = append(out, listen...)
	return append(out, h.RelayAddrs()...)
}

// addrsChanged tells the event bus and connected peers when Addrs has
// changed: after AutoNAT's verdicts and reservations come and go.
func (h *Host) addrsChanged() {
	if h.events == nil || !h.events.addrsChanged() {
		return
	}
	if h.ids != nil {
		h.ids.Push()
	}
}
