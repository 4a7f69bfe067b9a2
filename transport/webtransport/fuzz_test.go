package webtransport

import (
	"bytes"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// FuzzDecodeCertHash: decoding never panics; what decodes is a SHA-256
// multihash that encodes back to a component decoding to the same hash.
func FuzzDecodeCertHash(f *testing.F) {
	f.Add("uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g")
	f.Add("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	f.Add("zQmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	f.Add("")
	f.Add("u")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := decodeCertHash(s)
		if err != nil {
			return
		}
		comp, mh, err := encodeCertHash(h.digest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mh, h.multihash) {
			t.Fatalf("multihash %x re-encodes to %x", h.multihash, mh)
		}
		h2, err := decodeCertHash(comp[0].Value())
		if err != nil || h2.digest != h.digest {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzSplitAddr: any multiaddr is either refused or split into a QUIC
// address and hashes that rebuild it.
func FuzzSplitAddr(f *testing.F) {
	for _, s := range []string{
		"/ip4/127.0.0.1/udp/1234/quic-v1/webtransport",
		"/ip6/::1/udp/1/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
		"/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
		"/ip4/1.2.3.4/udp/1/quic-v1",
		"/dns4/a.b/udp/1/quic-v1/webtransport",
	} {
		f.Add(ma.StringCast(s).Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		q, ua, hashes, err := splitAddr(a)
		if err != nil {
			return
		}
		if len(q) != 3 || ua == nil || len(hashes) != len(a)-4 {
			t.Fatalf("split %s into %s, %v, %d hashes", a, q, ua, len(hashes))
		}
	})
}
