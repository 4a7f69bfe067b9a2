package peer_test

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/p2pnet/p2pnet/peer"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{specSHA256Base58, specSHA256CID, specEd25519Base58, specEd25519ID, "", "Qm", "1", "b", "z", "bafz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := peer.Decode(s)
		if err != nil {
			if id != "" {
				t.Fatal("ID returned with an error")
			}
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("decoded ID does not validate: %v", err)
		}
		if back, err := peer.Decode(id.String()); err != nil || back != id {
			t.Fatalf("base58 form does not round-trip: %v", err)
		}
		if back, err := peer.Decode(id.CIDString()); err != nil || back != id {
			t.Fatalf("CID form does not round-trip: %v", err)
		}
	})
}

func FuzzIDFromBytes(f *testing.F) {
	sha, _ := mh.Encode(make([]byte, 32), mh.SHA2_256)
	f.Add(sha)
	f.Add([]byte(mustDecode(f, specEd25519Base58)))
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := peer.IDFromBytes(b)
		if err != nil {
			if id != "" {
				t.Fatal("ID returned with an error")
			}
			return
		}
		if string(id) != string(b) {
			t.Fatal("ID is not the given bytes")
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("accepted ID does not validate: %v", err)
		}
		if back, err := peer.Decode(id.String()); err != nil || back != id {
			t.Fatalf("base58 form does not round-trip: %v", err)
		}
		pk, err := id.ExtractPublicKey()
		if err == nil && !id.MatchesPublicKey(pk) {
			t.Fatal("extracted key does not match the ID")
		}
	})
}

func FuzzAddrInfoFromP2pAddr(f *testing.F) {
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/4001/p2p/" + specEd25519Base58,
		"/ip6/::1/udp/4001/quic-v1/p2p/" + specSHA256Base58,
		"/p2p/" + specEd25519Base58,
		"/ip4/127.0.0.1/tcp/1/p2p/" + specSHA256Base58 + "/p2p-circuit/p2p/" + specEd25519Base58,
		"/ip4/127.0.0.1/tcp/4001",
	} {
		f.Add(mustAddr(f, s).Bytes())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return // not a multiaddr: nothing of ours to test
		}
		info, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			if info != nil {
				t.Fatal("AddrInfo returned with an error")
			}
			return
		}
		if err := info.ID.Validate(); err != nil {
			t.Fatalf("accepted ID does not validate: %v", err)
		}
		addrs, err := peer.AddrInfoToP2pAddrs(info)
		if err != nil {
			t.Fatalf("AddrInfoToP2pAddrs: %v", err)
		}
		if len(addrs) != 1 || !addrs[0].Equal(m) {
			t.Fatalf("round trip gave %v, want %v", addrs, m)
		}
	})
}

func FuzzExtractPublicKey(f *testing.F) {
	f.Add([]byte(mustDecode(f, specEd25519Base58)))
	f.Add([]byte(mustDecode(f, specEd25519ID)))
	f.Add([]byte(mustDecode(f, specSHA256Base58)))
	f.Add([]byte{0x00, 0x04, 0x08, 0x01, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		id := peer.ID(b)
		pk, err := id.ExtractPublicKey()
		if err != nil {
			if pk != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		got, err := peer.IDFromPublicKey(pk)
		if err != nil || got != id {
			t.Fatalf("extracted key's ID = %v, %v; want %v", got, err, id)
		}
	})
}
