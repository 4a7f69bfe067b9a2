package resolver

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseTXT(f *testing.F) {
	for _, s := range []string{
		"dnsaddr=/ip4/192.0.2.1/tcp/4001/p2p/" + idA,
		"dnsaddr=/ip6/2001:db8::1/udp/4001/quic-v1/p2p/" + idA,
		"dnsaddr=/dnsaddr/sjc-1.bootstrap.libp2p.io/p2p/" + idB,
		"dnsaddr=/dns4/example.test/tcp/443/tls/ws",
		"dnsaddr=/ip4/192.0.2.1/tcp/1/p2p/" + idB + "/p2p-circuit/p2p/" + idA,
		"dnsaddr=",
		"dnsaddr=/",
		"dnsaddr=/ip4/999.0.0.1/tcp/1",
		"dnsaddr=/tcp",
		"dnsaddr=/p2p/notapeer",
		"DNSADDR=/ip4/192.0.2.1/tcp/1",
		"dnsaddr /ip4/192.0.2.1/tcp/1",
		"v=spf1 -all",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		m, err := parseTXT(txt)
		if err != nil {
			if m != nil {
				t.Fatalf("%q: error %v with a multiaddr %v", txt, err, m)
			}
			if strings.HasPrefix(txt, dnsaddrTXTPrefix) != errors.Is(err, ErrInvalidRecord) ||
				strings.HasPrefix(txt, dnsaddrTXTPrefix) == errors.Is(err, errNotDNSAddr) {
				t.Fatalf("%q: wrong error %v", txt, err)
			}
			return
		}
		if len(m) == 0 {
			t.Fatalf("%q: empty multiaddr without error", txt)
		}
		// What parsed prints to a record that parses to the same multiaddr.
		again, err := parseTXT(dnsaddrTXTPrefix + m.String())
		if err != nil {
			t.Fatalf("%q: the record of %v does not parse: %v", txt, m, err)
		}
		if !again.Equal(m) {
			t.Fatalf("%q: round trip gave %v, want %v", txt, again, m)
		}
	})
}
