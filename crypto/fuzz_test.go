package crypto_test

import (
	"bytes"
	"strings"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
)

// addVectorSeeds adds the spec vectors with the given suffix, and
// truncated copies of them, to f's corpus.
func addVectorSeeds(f *testing.F, suffix string) {
	for name, b := range specVectors(f) {
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(b[:len(b)/2])
	}
}

func FuzzUnmarshalPublicKey(f *testing.F) {
	addVectorSeeds(f, "-public")
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		pk, err := ic.UnmarshalPublicKey(data)
		if err != nil {
			if pk != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		b, err := ic.MarshalPublicKey(pk)
		if err != nil {
			t.Fatalf("accepted key does not marshal: %v", err)
		}
		pk2, err := ic.UnmarshalPublicKey(b)
		if err != nil {
			t.Fatalf("re-encoded key is refused: %v", err)
		}
		if !pk.Equals(pk2) || !pk2.Equals(pk) {
			t.Fatal("key changed in a round trip")
		}
		if b2, _ := ic.MarshalPublicKey(pk2); !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable: %x then %x", b, b2)
		}
		// Verifying garbage must not panic, nor succeed.
		if ok, _ := pk.Verify(data, data); ok {
			t.Fatal("the input verified as its own signature")
		}
	})
}

func FuzzUnmarshalPrivateKey(f *testing.F) {
	addVectorSeeds(f, "-private")
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x02, 0x12, 0x20})
	f.Fuzz(func(t *testing.T, data []byte) {
		sk, err := ic.UnmarshalPrivateKey(data)
		if err != nil {
			if sk != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		b, err := ic.MarshalPrivateKey(sk)
		if err != nil {
			t.Fatalf("accepted key does not marshal: %v", err)
		}
		sk2, err := ic.UnmarshalPrivateKey(b)
		if err != nil {
			t.Fatalf("re-encoded key is refused: %v", err)
		}
		if !sk.Equals(sk2) {
			t.Fatal("key changed in a round trip")
		}
		if b2, _ := ic.MarshalPrivateKey(sk2); !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable: %x then %x", b, b2)
		}
		if _, err := ic.MarshalPublicKey(sk.GetPublic()); err != nil {
			t.Fatalf("public half does not marshal: %v", err)
		}
		if sk.Type() == ic.RSA {
			return // RSA signing is too slow to do on every input
		}
		sig, err := sk.Sign(data)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if ok, err := sk.GetPublic().Verify(data, sig); !ok || err != nil {
			t.Fatalf("own signature does not verify: %v, %v", ok, err)
		}
	})
}
