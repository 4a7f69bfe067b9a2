package peer_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	b58 "github.com/mr-tron/base58/base58"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The text-form examples of the peer-ids spec.
const (
	specSHA256Base58  = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
	specSHA256CID     = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
	specEd25519Base58 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
)

// specEd25519Private is the Ed25519 private key vector of the peer-ids
// spec, and specEd25519ID the peer ID of its public key.
const (
	specEd25519Private = "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
	specEd25519ID      = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
)

func mustDecode(t testing.TB, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatalf("Decode(%q): %v", s, err)
	}
	return id
}

func TestSpecTextForms(t *testing.T) {
	legacy := mustDecode(t, specSHA256Base58)
	cid := mustDecode(t, specSHA256CID)
	if legacy != cid {
		t.Fatalf("the spec's base58 and CID forms decode to different IDs: %x, %x", legacy, cid)
	}
	if legacy.String() != specSHA256Base58 {
		t.Errorf("String() = %q, want %q", legacy.String(), specSHA256Base58)
	}
	if legacy.CIDString() != specSHA256CID {
		t.Errorf("CIDString() = %q, want %q", legacy.CIDString(), specSHA256CID)
	}
	if legacy.Size() != 34 {
		t.Errorf("Size() = %d, want 34", legacy.Size())
	}
	if _, err := legacy.ExtractPublicKey(); !errors.Is(err, peer.ErrNoPublicKey) {
		t.Errorf("ExtractPublicKey of a sha256 ID = %v, want ErrNoPublicKey", err)
	}

	ed := mustDecode(t, specEd25519Base58)
	if ed.String() != specEd25519Base58 {
		t.Errorf("String() = %q", ed.String())
	}
	if again := mustDecode(t, ed.CIDString()); again != ed {
		t.Error("the CID form of an Ed25519 ID decodes to another ID")
	}
	pk, err := ed.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if pk.Type() != ic.Ed25519 || !ed.MatchesPublicKey(pk) {
		t.Error("extracted key does not match its ID")
	}
}

func TestDecodeOtherMultibases(t *testing.T) {
	id := mustDecode(t, specEd25519Base58)
	cid := append([]byte{0x01, 0x72}, id...)
	for _, enc := range []multibase.Encoding{multibase.Base32, multibase.Base36, multibase.Base58BTC, multibase.Base64, multibase.Base16} {
		s, err := multibase.Encode(enc, cid)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustDecode(t, s); got != id {
			t.Errorf("%c-base CID decodes to %v", enc, got)
		}
	}
}

func TestIDFromPublicKey(t *testing.T) {
	for _, tc := range []struct {
		typ    ic.KeyType
		bits   int
		code   uint64
		inline bool
	}{
		{ic.Ed25519, 0, mh.IDENTITY, true},
		{ic.Secp256k1, 0, mh.IDENTITY, true},
		{ic.ECDSA, 256, mh.SHA2_256, false},
		{ic.RSA, 2048, mh.SHA2_256, false},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			sk, pk, err := ic.GenerateKeyPair(tc.typ, tc.bits)
			if err != nil {
				t.Fatal(err)
			}
			id, err := peer.IDFromPublicKey(pk)
			if err != nil {
				t.Fatal(err)
			}
			if err := id.Validate(); err != nil {
				t.Fatal(err)
			}
			dm, err := mh.Decode([]byte(id))
			if err != nil {
				t.Fatal(err)
			}
			if dm.Code != tc.code {
				t.Fatalf("multihash code %#x, want %#x", dm.Code, tc.code)
			}
			enc, _ := ic.MarshalPublicKey(pk)
			if tc.inline {
				if !bytes.Equal(dm.Digest, enc) {
					t.Error("identity digest is not the encoded key")
				}
			} else {
				sum := sha256.Sum256(enc)
				if !bytes.Equal(dm.Digest, sum[:]) {
					t.Error("digest is not the sha256 of the encoded key")
				}
			}
			if id2, _ := peer.IDFromPrivateKey(sk); id2 != id {
				t.Error("IDFromPrivateKey differs from IDFromPublicKey")
			}
			if !id.MatchesPublicKey(pk) || !id.MatchesPrivateKey(sk) {
				t.Error("ID does not match its own key")
			}
			_, other, _ := ic.GenerateKeyPair(ic.Ed25519, 0)
			if id.MatchesPublicKey(other) {
				t.Error("ID matches another key")
			}

			got, err := id.ExtractPublicKey()
			if tc.inline {
				if err != nil || !got.Equals(pk) {
					t.Errorf("ExtractPublicKey = %v, %v", got, err)
				}
			} else if !errors.Is(err, peer.ErrNoPublicKey) {
				t.Errorf("ExtractPublicKey = %v, want ErrNoPublicKey", err)
			}
			if back := mustDecode(t, id.String()); back != id {
				t.Error("base58 form does not round-trip")
			}
			if back := mustDecode(t, id.CIDString()); back != id {
				t.Error("CID form does not round-trip")
			}
		})
	}
}

func TestSpecEd25519KeyID(t *testing.T) {
	b, _ := hex.DecodeString(specEd25519Private)
	sk, err := ic.UnmarshalPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != specEd25519ID {
		t.Errorf("ID = %s, want %s", id, specEd25519ID)
	}
	if id.ShortString() != "12*o7R3pq" {
		t.Errorf("ShortString() = %q", id.ShortString())
	}
	if _, err := peer.IDFromPublicKey(nil); !errors.Is(err, ic.ErrNilKey) {
		t.Errorf("IDFromPublicKey(nil) = %v", err)
	}
	if _, err := peer.IDFromPrivateKey(nil); !errors.Is(err, ic.ErrNilKey) {
		t.Errorf("IDFromPrivateKey(nil) = %v", err)
	}
	if peer.ID("").MatchesPrivateKey(nil) {
		t.Error("empty ID matches a nil key")
	}
}

func TestDecodeErrors(t *testing.T) {
	id := mustDecode(t, specEd25519Base58)
	dagPB, _ := multibase.Encode(multibase.Base32, append([]byte{0x01, 0x70}, id...))
	cidV2, _ := multibase.Encode(multibase.Base32, append([]byte{0x02, 0x72}, id...))
	md5, _ := mh.Encode(make([]byte, 16), mh.MD5)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", peer.ErrEmptyPeerID},
		{"not base58", "Qm0OIl", peer.ErrInvalidPeerID},
		{"truncated base58", specSHA256Base58[:20], peer.ErrInvalidPeerID},
		{"extra base58", specSHA256Base58 + "1", peer.ErrInvalidPeerID},
		{"no multibase", "!!!", peer.ErrInvalidPeerID},
		{"bad base32", "b!!!!", peer.ErrInvalidPeerID},
		{"dag-pb CID", dagPB, peer.ErrInvalidPeerID},
		{"CIDv2", cidV2, peer.ErrInvalidPeerID},
		{"truncated CID", specSHA256CID[:len(specSHA256CID)-4], peer.ErrInvalidPeerID},
		{"empty CID", "b", peer.ErrInvalidPeerID},
		{"md5 multihash", b58.Encode(md5), peer.ErrInvalidPeerID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := peer.Decode(tc.in)
			if !errors.Is(err, tc.want) || got != "" {
				t.Errorf("Decode(%q) = %q, %v; want error %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIDFromBytes(t *testing.T) {
	sha, _ := mh.Encode(make([]byte, 32), mh.SHA2_256)
	shortSHA, _ := mh.Encode(make([]byte, 31), mh.SHA2_256)
	inline, _ := mh.Encode(make([]byte, peer.MaxInlineKeyLength), mh.IDENTITY)
	tooLong, _ := mh.Encode(make([]byte, peer.MaxInlineKeyLength+1), mh.IDENTITY)
	blake, _ := mh.Encode(make([]byte, 32), mh.BLAKE2B_MIN+31)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"sha256", sha, nil},
		{"identity of 42", inline, nil},
		{"empty", nil, peer.ErrEmptyPeerID},
		{"sha256 of 31 bytes", shortSHA, peer.ErrInvalidPeerID},
		{"identity of 43", tooLong, peer.ErrInvalidPeerID},
		{"blake2b", blake, peer.ErrInvalidPeerID},
		{"length past end", sha[:len(sha)-1], peer.ErrInvalidPeerID},
		{"trailing byte", append(bytes.Clone(sha), 0), peer.ErrInvalidPeerID},
		{"one byte", []byte{0x12}, peer.ErrInvalidPeerID},
		{"non-minimal varint", append([]byte{0x92, 0x00, 0x20}, make([]byte, 32)...), peer.ErrInvalidPeerID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := peer.IDFromBytes(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("IDFromBytes = %v, want %v", err, tc.want)
			}
			if tc.want == nil && string(id) != string(tc.in) {
				t.Error("ID is not the given bytes")
			}
			if err := peer.ID(tc.in).Validate(); !errors.Is(err, tc.want) {
				t.Errorf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
	if err := peer.ID("").Validate(); !errors.Is(err, peer.ErrEmptyPeerID) {
		t.Errorf("empty ID Validate = %v", err)
	}
	if peer.ID("").CIDString() != "" {
		t.Error("empty ID has a CID form")
	}
}

func TestExtractPublicKeyErrors(t *testing.T) {
	// An identity multihash of bytes that are no key.
	garbage, _ := mh.Encode([]byte("not a key"), mh.IDENTITY)
	if _, err := peer.ID(garbage).ExtractPublicKey(); !errors.Is(err, peer.ErrInvalidPeerID) {
		t.Errorf("garbage identity digest: %v", err)
	}
	if _, err := peer.ID("").ExtractPublicKey(); !errors.Is(err, peer.ErrEmptyPeerID) {
		t.Errorf("empty ID: %v", err)
	}
	// A key in a non-canonical encoding (Data before Type) does not derive
	// the ID it sits in.
	_, pk, _ := ic.GenerateEd25519Key(nil)
	raw, _ := pk.Raw()
	swapped := append(append([]byte{0x12, byte(len(raw))}, raw...), 0x08, 0x01)
	odd, _ := mh.Encode(swapped, mh.IDENTITY)
	if _, err := peer.ID(odd).ExtractPublicKey(); !errors.Is(err, peer.ErrInvalidPeerID) {
		t.Errorf("non-canonical embedded key: %v", err)
	}
}

func TestShortString(t *testing.T) {
	if got := peer.ID("").ShortString(); got != "" {
		t.Errorf("empty ShortString = %q", got)
	}
	id := mustDecode(t, specSHA256Base58)
	if got := id.ShortString(); got != "Qm*Wjhx5N" {
		t.Errorf("ShortString = %q", got)
	}
}

func TestTextAndJSON(t *testing.T) {
	id := mustDecode(t, specEd25519Base58)
	txt, err := id.MarshalText()
	if err != nil || string(txt) != specEd25519Base58 {
		t.Fatalf("MarshalText = %q, %v", txt, err)
	}
	var back peer.ID
	if err := back.UnmarshalText(txt); err != nil || back != id {
		t.Fatalf("UnmarshalText = %v, %v", back, err)
	}
	if err := back.UnmarshalText([]byte(id.CIDString())); err != nil || back != id {
		t.Fatalf("UnmarshalText(CID) = %v, %v", back, err)
	}

	js, err := json.Marshal(map[string]peer.ID{"p": id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"p":"` + specEd25519Base58 + `"}`; string(js) != want {
		t.Errorf("JSON = %s, want %s", js, want)
	}
	var m map[string]peer.ID
	if err := json.Unmarshal(js, &m); err != nil || m["p"] != id {
		t.Fatalf("json.Unmarshal = %v, %v", m, err)
	}
	for _, bad := range []string{`"QmNotAPeer"`, `42`, `"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"`} {
		if err := json.Unmarshal([]byte(bad), &back); !errors.Is(err, peer.ErrInvalidPeerID) {
			t.Errorf("UnmarshalJSON(%s) = %v, want ErrInvalidPeerID", bad, err)
		}
	}
	// The zero ID round-trips as the empty string.
	var zero peer.ID
	js, _ = json.Marshal(zero)
	if err := json.Unmarshal(js, &back); err != nil || back != "" {
		t.Errorf("zero ID JSON round trip: %q, %v", back, err)
	}
}
