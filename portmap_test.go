package p2pnet

import (
	"testing"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// TestMappable: IPv4 TCP and UDP listen addresses are mapped by their
// port; loopback, IPv6, circuits and unset ports are not.
func TestMappable(t *testing.T) {
	for s, want := range map[string]portKey{
		"/ip4/0.0.0.0/tcp/4001":                      {network.NATTransportTCP, 4001},
		"/ip4/10.1.0.2/udp/4002/quic-v1":             {network.NATTransportUDP, 4002},
		"/ip4/0.0.0.0/udp/4003/quic-v1/webtransport": {network.NATTransportUDP, 4003},
		"/ip4/0.0.0.0/tcp/4004/ws":                   {network.NATTransportTCP, 4004},
	} {
		if got, ok := mappable(ma.StringCast(s)); !ok || got != want {
			t.Errorf("mappable(%s) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"/ip4/127.0.0.1/tcp/4001", "/ip6/::/tcp/4001", "/ip4/0.0.0.0/tcp/0",
		"/ip4/198.51.100.1/tcp/4001/p2p/12D3KooWLRPJAA5o6Ei7hRPiEfnAC7fUsZh8H5ArpLvqN9uPgvWF/p2p-circuit", "/dns4/example.com/tcp/4001"} {
		if got, ok := mappable(ma.StringCast(s)); ok {
			t.Errorf("mappable(%s) = %v", s, got)
		}
	}
}
