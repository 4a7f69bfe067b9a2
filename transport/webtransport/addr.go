package webtransport

import (
	"errors"
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/multiformats/go-multibase"
	"github.com/multiformats/go-multihash"
)

// ErrUnsupportedAddr is wrapped by the errors for addresses that are not
// /ip4|ip6/IP/udp/PORT/quic-v1/webtransport followed by certificate
// hashes (none to listen; at least one, SHA-256, to dial).
var ErrUnsupportedAddr = errors.New("webtransport: not a /ip4|ip6/…/udp/N/quic-v1/webtransport address")

// ErrBadCertHash is wrapped by the errors for a /certhash component that
// is not a multibase-encoded multihash, or whose hash function is not
// SHA-256 (the only one browsers accept).
var ErrBadCertHash = errors.New("webtransport: bad certificate hash")

// suffix follows the UDP address in every WebTransport address.
var suffix = ma.StringCast("/quic-v1/webtransport")

// splitAddr checks that a is /ip4|ip6/IP/udp/PORT/quic-v1/webtransport
// with any number of /certhash components, and returns its QUIC part
// (/ip…/udp/PORT/quic-v1), its UDP address and the decoded hashes.
func splitAddr(a ma.Multiaddr) (quicAddr ma.Multiaddr, ua *net.UDPAddr, hashes []certHash, err error) {
	if len(a) < 4 || a[1].Code() != ma.P_UDP || a[2].Code() != ma.P_QUIC_V1 || a[3].Code() != ma.P_WEBTRANSPORT ||
		(a[0].Code() != ma.P_IP4 && a[0].Code() != ma.P_IP6) {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	for _, c := range a[4:] {
		if c.Code() != ma.P_CERTHASH {
			return nil, nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
		}
		h, err := decodeCertHash(c.Value())
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", a, err)
		}
		hashes = append(hashes, h)
	}
	na, err := manet.ToNetAddr(a[:2])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %s: %w", ErrUnsupportedAddr, a, err)
	}
	ua, ok := na.(*net.UDPAddr)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrUnsupportedAddr, a)
	}
	return a[:3], ua, hashes, nil
}

// certHash is a decoded certificate hash: the SHA-256 digest and its
// multihash encoding (as the Noise extension carries it).
type certHash struct {
	digest    [32]byte
	multihash []byte
}

// decodeCertHash decodes the value of a /certhash component: a
// multibase-encoded SHA-256 multihash.
func decodeCertHash(s string) (certHash, error) {
	_, b, err := multibase.Decode(s)
	if err != nil {
		return certHash{}, fmt.Errorf("%w: multibase: %w", ErrBadCertHash, err)
	}
	dh, err := multihash.Decode(b)
	if err != nil {
		return certHash{}, fmt.Errorf("%w: multihash: %w", ErrBadCertHash, err)
	}
	if dh.Code != multihash.SHA2_256 || len(dh.Digest) != 32 {
		return certHash{}, fmt.Errorf("%w: hash function 0x%x of %d bytes, want SHA-256", ErrBadCertHash, dh.Code, len(dh.Digest))
	}
	var h certHash
	copy(h.digest[:], dh.Digest)
	h.multihash = b
	return h, nil
}

// encodeCertHash returns the /certhash component of a SHA-256 digest,
// base58btc-encoded as go-libp2p and js-libp2p write it, and its
// multihash.
func encodeCertHash(digest [32]byte) (ma.Multiaddr, []byte, error) {
	mh, err := multihash.Encode(digest[:], multihash.SHA2_256)
	if err != nil {
		return nil, nil, err
	}
	s, err := multibase.Encode(multibase.Base58BTC, mh)
	if err != nil {
		return nil, nil, err
	}
	c, err := ma.NewComponent("certhash", s)
	if err != nil {
		return nil, nil, err
	}
	return ma.Multiaddr{*c}, mh, nil
}

// wtMultiaddr is the WebTransport multiaddr of a UDP address, without
// certificate hashes.
func wtMultiaddr(a net.Addr) (ma.Multiaddr, error) {
	m, err := manet.FromNetAddr(a)
	if err != nil {
		return nil, err
	}
	if len(m) != 2 || m[1].Code() != ma.P_UDP {
		return nil, fmt.Errorf("%w: %s is not a UDP address", ErrUnsupportedAddr, a)
	}
	return append(m, suffix...), nil
}
