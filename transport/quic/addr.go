package quic

import (
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// quicV1 is the /quic-v1 component appended to UDP addresses.
var quicV1 = ma.StringCast("/quic-v1")

// udpAddr checks that a is /ip4|ip6/IP/udp/PORT/quic-v1 and converts it,
// returning the IP family (4 or 6) too.
func udpAddr(a ma.Multiaddr) (*net.UDPAddr, int, error) {
	if len(a) != 3 || a[1].Code() != ma.P_UDP || a[2].Code() != ma.P_QUIC_V1 {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	var family int
	switch a[0].Code() {
	case ma.P_IP4:
		family = 4
	case ma.P_IP6:
		family = 6
	default:
		return nil, 0, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	na, err := manet.ToNetAddr(a[:2])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrUnsupportedAddr, a, err)
	}
	ua, ok := na.(*net.UDPAddr)
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	return ua, family, nil
}

// quicMultiaddr converts a UDP address to its /quic-v1 multiaddr.
func quicMultiaddr(a net.Addr) (ma.Multiaddr, error) {
	m, err := manet.FromNetAddr(a)
	if err != nil {
		return nil, err
	}
	if len(m) != 2 || m[1].Code() != ma.P_UDP {
		return nil, fmt.Errorf("%w: %s is not a UDP address", ErrUnsupportedAddr, a)
	}
	return append(m, quicV1...), nil
}
