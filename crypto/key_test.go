package crypto_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	ic "github.com/p2pnet/p2pnet/crypto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// specVectors reads testdata/spec-vectors.txt: name → protobuf bytes.
func specVectors(tb testing.TB) map[string][]byte {
	tb.Helper()
	f, err := os.Open("testdata/spec-vectors.txt")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	out := make(map[string][]byte)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, " ")
		if !ok {
			tb.Fatalf("bad vector line %q", line)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			tb.Fatalf("vector %s: %v", name, err)
		}
		out[name] = b
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(out) != 8 {
		tb.Fatalf("read %d vectors, want 8", len(out))
	}
	return out
}

func TestSpecVectors(t *testing.T) {
	vectors := specVectors(t)
	for _, tc := range []struct {
		name string
		typ  ic.KeyType
	}{
		{"ed25519", ic.Ed25519},
		{"secp256k1", ic.Secp256k1},
		{"ecdsa", ic.ECDSA},
		{"rsa", ic.RSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privBytes, pubBytes := vectors[tc.name+"-private"], vectors[tc.name+"-public"]
			sk, err := ic.UnmarshalPrivateKey(privBytes)
			if err != nil {
				t.Fatalf("UnmarshalPrivateKey: %v", err)
			}
			if sk.Type() != tc.typ {
				t.Fatalf("type %v, want %v", sk.Type(), tc.typ)
			}
			re, err := ic.MarshalPrivateKey(sk)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(re, privBytes) {
				t.Errorf("private key re-encoding differs:\n got %x\nwant %x", re, privBytes)
			}
			pb, err := ic.MarshalPublicKey(sk.GetPublic())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pb, pubBytes) {
				t.Errorf("derived public key encoding differs:\n got %x\nwant %x", pb, pubBytes)
			}
			pk, err := ic.UnmarshalPublicKey(pubBytes)
			if err != nil {
				t.Fatalf("UnmarshalPublicKey: %v", err)
			}
			if !pk.Equals(sk.GetPublic()) {
				t.Error("decoded public key differs from the private key's")
			}
			msg := []byte("peer-ids spec vector")
			sig, err := sk.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := pk.Verify(msg, sig); !ok || err != nil {
				t.Errorf("Verify = %v, %v; want true, nil", ok, err)
			}
		})
	}
}

// keyPair is a generated key pair of one type, shared by the tests: RSA
// generation is slow.
type keyPair struct {
	name string
	sk   ic.PrivKey
	pk   ic.PubKey
}

var (
	pairsOnce sync.Once
	pairs     []keyPair
	pairsErr  error
)

func testKeyPairs(t *testing.T) []keyPair {
	t.Helper()
	pairsOnce.Do(func() {
		for _, c := range []struct {
			name string
			typ  ic.KeyType
			bits int
		}{
			{"Ed25519", ic.Ed25519, 0},
			{"Secp256k1", ic.Secp256k1, 0},
			{"ECDSA-P256", ic.ECDSA, 0},
			{"ECDSA-P384", ic.ECDSA, 384},
			{"ECDSA-P521", ic.ECDSA, 521},
			{"RSA-2048", ic.RSA, 2048},
		} {
			sk, pk, err := ic.GenerateKeyPair(c.typ, c.bits)
			if err != nil {
				pairsErr = err
				return
			}
			pairs = append(pairs, keyPair{c.name, sk, pk})
		}
	})
	if pairsErr != nil {
		t.Fatal(pairsErr)
	}
	return pairs
}

func TestRoundTrip(t *testing.T) {
	for _, kp := range testKeyPairs(t) {
		t.Run(kp.name, func(t *testing.T) {
			if !kp.sk.GetPublic().Equals(kp.pk) {
				t.Fatal("GetPublic differs from the generated public key")
			}
			pb, err := ic.MarshalPublicKey(kp.pk)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := ic.UnmarshalPublicKey(pb)
			if err != nil {
				t.Fatal(err)
			}
			if !pk.Equals(kp.pk) || !kp.pk.Equals(pk) || !ic.KeyEqual(pk, kp.pk) {
				t.Error("public key changed in a round trip")
			}
			pb2, _ := ic.MarshalPublicKey(pk)
			if !bytes.Equal(pb, pb2) {
				t.Error("public key encoding is not stable")
			}

			sb, err := ic.MarshalPrivateKey(kp.sk)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := ic.UnmarshalPrivateKey(sb)
			if err != nil {
				t.Fatal(err)
			}
			if !sk.Equals(kp.sk) || !ic.KeyEqual(sk, kp.sk) {
				t.Error("private key changed in a round trip")
			}
			sb2, _ := ic.MarshalPrivateKey(sk)
			if !bytes.Equal(sb, sb2) {
				t.Error("private key encoding is not stable")
			}

			// The per-type unmarshaler accepts the Data field alone.
			raw, err := kp.pk.Raw()
			if err != nil {
				t.Fatal(err)
			}
			var pkRaw ic.PubKey
			switch kp.pk.Type() {
			case ic.Ed25519:
				pkRaw, err = ic.UnmarshalEd25519PublicKey(raw)
			case ic.Secp256k1:
				pkRaw, err = ic.UnmarshalSecp256k1PublicKey(raw)
			case ic.ECDSA:
				pkRaw, err = ic.UnmarshalECDSAPublicKey(raw)
			case ic.RSA:
				pkRaw, err = ic.UnmarshalRsaPublicKey(raw)
			}
			if err != nil || !pkRaw.Equals(kp.pk) {
				t.Errorf("per-type unmarshal: %v", err)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	msg := []byte("hello, libp2p")
	for _, kp := range testKeyPairs(t) {
		t.Run(kp.name, func(t *testing.T) {
			sig, err := kp.sk.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := kp.pk.Verify(msg, sig); !ok || err != nil {
				t.Fatalf("Verify = %v, %v; want true, nil", ok, err)
			}

			tampered := bytes.Clone(msg)
			tampered[0] ^= 1
			if ok, err := kp.pk.Verify(tampered, sig); ok || err != nil {
				t.Errorf("Verify(tampered data) = %v, %v; want false, nil", ok, err)
			}

			// A flipped bit in the signature never verifies; in DER forms it
			// may also make the signature unparseable.
			for _, i := range []int{0, len(sig) / 2, len(sig) - 1} {
				bad := bytes.Clone(sig)
				bad[i] ^= 0x01
				if ok, err := kp.pk.Verify(msg, bad); ok {
					t.Errorf("Verify(sig with byte %d flipped) = true, %v", i, err)
				} else if err != nil && !errors.Is(err, ic.ErrMalformedSignature) {
					t.Errorf("Verify(sig with byte %d flipped): error %v does not wrap ErrMalformedSignature", i, err)
				}
			}

			// Someone else's key does not verify.
			other, _, err := ic.GenerateKeyPair(ic.Ed25519, 0)
			if err != nil {
				t.Fatal(err)
			}
			otherSig, _ := other.Sign(msg)
			if ok, _ := kp.pk.Verify(msg, otherSig); ok {
				t.Error("a signature by another key verified")
			}
			if ok, _ := kp.pk.Verify(msg, nil); ok {
				t.Error("an empty signature verified")
			}
		})
	}
}

func TestMalformedSignature(t *testing.T) {
	for _, kp := range testKeyPairs(t) {
		if kp.pk.Type() == ic.RSA {
			continue // RSA signatures are plain integers: nothing to mis-parse
		}
		t.Run(kp.name, func(t *testing.T) {
			sig, _ := kp.sk.Sign([]byte("m"))
			for name, bad := range map[string][]byte{
				"empty":     nil,
				"truncated": sig[:len(sig)-1],
				"trailing":  append(bytes.Clone(sig), 0),
			} {
				ok, err := kp.pk.Verify([]byte("m"), bad)
				if ok || !errors.Is(err, ic.ErrMalformedSignature) {
					t.Errorf("%s: Verify = %v, %v; want false, ErrMalformedSignature", name, ok, err)
				}
			}
		})
	}
}

func TestEqualsAcrossTypes(t *testing.T) {
	kps := testKeyPairs(t)
	for i, a := range kps {
		for j, b := range kps {
			if got, want := a.pk.Equals(b.pk), i == j; got != want {
				t.Errorf("%s.Equals(%s) = %v", a.name, b.name, got)
			}
			if got, want := a.sk.Equals(b.sk), i == j; got != want {
				t.Errorf("private %s.Equals(%s) = %v", a.name, b.name, got)
			}
			if a.sk.Equals(b.pk) || a.pk.Equals(b.sk) {
				t.Errorf("a private key equals a public key (%s, %s)", a.name, b.name)
			}
		}
	}
	// Two keys of the same type are different keys.
	sk1, pk1, _ := ic.GenerateEd25519Key(nil)
	sk2, pk2, _ := ic.GenerateEd25519Key(nil)
	if pk1.Equals(pk2) || sk1.Equals(sk2) || ic.KeyEqual(pk1, pk2) {
		t.Error("two generated Ed25519 keys are equal")
	}
	if ic.KeyEqual(nil, pk1) || !ic.KeyEqual(nil, nil) {
		t.Error("KeyEqual mishandles nil")
	}
}

func TestGenerateWithReaderIsDeterministic(t *testing.T) {
	for _, typ := range []ic.KeyType{ic.Ed25519, ic.Secp256k1} {
		seed := bytes.Repeat([]byte{7}, 64)
		sk1, _, err := ic.GenerateKeyPairWithReader(typ, 0, bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		sk2, _, err := ic.GenerateKeyPairWithReader(typ, 0, bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !sk1.Equals(sk2) {
			t.Errorf("%v: same reader gave different keys", typ)
		}
	}
	if _, _, err := ic.GenerateEd25519Key(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("Ed25519 generation from a short reader succeeded")
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, tc := range []struct {
		typ  ic.KeyType
		bits int
		want error
	}{
		{ic.RSA, 1024, ic.ErrRSAKeyTooSmall},
		{ic.RSA, 2047, ic.ErrRSAKeyTooSmall},
		{ic.RSA, 0, ic.ErrRSAKeyTooSmall},
		{ic.RSA, 8193, ic.ErrRSAKeyTooBig},
		{ic.RSA, 16384, ic.ErrRSAKeyTooBig},
		{ic.ECDSA, 224, ic.ErrUnsupportedCurve},
		{ic.KeyType(4), 0, ic.ErrBadKeyType},
		{ic.KeyType(-1), 0, ic.ErrBadKeyType},
	} {
		_, _, err := ic.GenerateKeyPair(tc.typ, tc.bits)
		if !errors.Is(err, tc.want) {
			t.Errorf("GenerateKeyPair(%v, %d) = %v, want %v", tc.typ, tc.bits, err, tc.want)
		}
	}
}

// keyMessage builds a key protobuf by hand.
func keyMessage(typ ic.KeyType, data []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(typ))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, data)
}

func TestRSASizeLimitsAtUnmarshal(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// Failures return a nil interface, not a typed nil pointer in one.
	if pk, err := ic.UnmarshalPublicKey(keyMessage(ic.RSA, pub)); !errors.Is(err, ic.ErrRSAKeyTooSmall) || pk != nil {
		t.Errorf("1024-bit public key: %v, %v; want nil, ErrRSAKeyTooSmall", pk, err)
	}
	if sk, err := ic.UnmarshalPrivateKey(keyMessage(ic.RSA, x509.MarshalPKCS1PrivateKey(small))); !errors.Is(err, ic.ErrRSAKeyTooSmall) || sk != nil {
		t.Errorf("1024-bit private key: %v, %v; want nil, ErrRSAKeyTooSmall", sk, err)
	}
	if sk, err := ic.PrivKeyFromStdKey(small); !errors.Is(err, ic.ErrRSAKeyTooSmall) || sk != nil {
		t.Errorf("PrivKeyFromStdKey(1024-bit): %v, %v; want nil, ErrRSAKeyTooSmall", sk, err)
	}
	if pk, err := ic.PubKeyFromStdKey(&small.PublicKey); !errors.Is(err, ic.ErrRSAKeyTooSmall) || pk != nil {
		t.Errorf("PubKeyFromStdKey(1024-bit): %v, %v; want nil, ErrRSAKeyTooSmall", pk, err)
	}

	// An 8200-bit modulus: too big. Generating one would take minutes, and
	// the size check must come before any validation anyway.
	n := new(big.Int).Lsh(big.NewInt(1), 8199)
	n.Add(n, big.NewInt(1))
	bigPub, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.UnmarshalPublicKey(keyMessage(ic.RSA, bigPub)); !errors.Is(err, ic.ErrRSAKeyTooBig) {
		t.Errorf("8200-bit public key: %v, want ErrRSAKeyTooBig", err)
	}
	// A PKCS #1 private key whose modulus is 8200 bits (the other fields
	// are nonsense and never looked at).
	one := big.NewInt(1)
	bigPriv, err := asn1Marshal(t, 0, n, big.NewInt(65537), one, one, one, one, one, one)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.UnmarshalRsaPrivateKey(bigPriv); !errors.Is(err, ic.ErrRSAKeyTooBig) {
		t.Errorf("8200-bit private key: %v, want ErrRSAKeyTooBig", err)
	}
}

func TestMalformedKeyProtobuf(t *testing.T) {
	vectors := specVectors(t)
	edPub := vectors["ed25519-public"]
	edData := edPub[4:]
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ic.ErrMalformedKey},
		{"type only", []byte{0x08, 0x01}, ic.ErrMalformedKey},
		{"data only", protowire.AppendBytes([]byte{0x12}, edData), ic.ErrMalformedKey},
		{"unknown type", keyMessage(4, edData), ic.ErrBadKeyType},
		{"negative type", keyMessage(-1, edData), ic.ErrBadKeyType},
		{"huge type", append([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x10, 0x12, 0x20}, edData...), ic.ErrBadKeyType},
		{"repeated type", append([]byte{0x08, 0x01}, edPub...), ic.ErrMalformedKey},
		{"repeated data", protowire.AppendBytes(append(bytes.Clone(edPub), 0x12), edData), ic.ErrMalformedKey},
		{"type as bytes", append([]byte{0x0a, 0x01, 0x01, 0x12, 0x20}, edData...), ic.ErrMalformedKey},
		{"data as varint", []byte{0x08, 0x01, 0x10, 0x01}, ic.ErrMalformedKey},
		{"unknown field", append(bytes.Clone(edPub), 0x18, 0x01), ic.ErrMalformedKey},
		{"trailing zero", append(bytes.Clone(edPub), 0x00), ic.ErrMalformedKey},
		{"trailing 0xff", append(bytes.Clone(edPub), 0xff), ic.ErrMalformedKey},
		{"non-minimal type varint", append([]byte{0x08, 0x81, 0x00, 0x12, 0x20}, edData...), ic.ErrMalformedKey},
		{"non-minimal length varint", append([]byte{0x08, 0x01, 0x12, 0xa0, 0x00}, edData...), ic.ErrMalformedKey},
		{"non-minimal tag", append([]byte{0x88, 0x00, 0x01, 0x12, 0x20}, edData...), ic.ErrMalformedKey},
		{"truncated data", edPub[:len(edPub)-1], ic.ErrMalformedKey},
		{"truncated varint", []byte{0x08, 0x81}, ic.ErrMalformedKey},
		{"short ed25519", keyMessage(ic.Ed25519, edData[:31]), ic.ErrInvalidKey},
		{"long ed25519", keyMessage(ic.Ed25519, append(bytes.Clone(edData), 0)), ic.ErrInvalidKey},
		{"secp256k1 bad prefix", keyMessage(ic.Secp256k1, append([]byte{0x05}, make([]byte, 32)...)), ic.ErrInvalidKey},
		{"secp256k1 hybrid", keyMessage(ic.Secp256k1, append([]byte{0x06}, make([]byte, 64)...)), ic.ErrInvalidKey},
		{"ecdsa garbage", keyMessage(ic.ECDSA, []byte{0x30, 0x00}), ic.ErrInvalidKey},
		{"rsa garbage", keyMessage(ic.RSA, []byte{0x30, 0x03, 0x02, 0x01, 0x00}), ic.ErrInvalidKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ic.UnmarshalPublicKey(tc.in); !errors.Is(err, tc.want) {
				t.Errorf("UnmarshalPublicKey = %v, want %v", err, tc.want)
			}
		})
	}

	// Fields in the other order are still the same message.
	swapped := protowire.AppendBytes([]byte{0x12}, edData)
	swapped = append(swapped, 0x08, 0x01)
	pk, err := ic.UnmarshalPublicKey(swapped)
	if err != nil {
		t.Fatalf("Data before Type: %v", err)
	}
	if b, _ := ic.MarshalPublicKey(pk); !bytes.Equal(b, edPub) {
		t.Errorf("re-encoding of swapped fields = %x, want %x", b, edPub)
	}
}

func TestMalformedPrivateKeys(t *testing.T) {
	vectors := specVectors(t)
	for name, b := range vectors {
		if !strings.HasSuffix(name, "-private") {
			continue
		}
		// Every proper prefix of a private key protobuf is refused.
		for i := 0; i < len(b); i += 1 + len(b)/64 {
			if _, err := ic.UnmarshalPrivateKey(b[:i]); err == nil {
				t.Errorf("%s truncated to %d bytes was accepted", name, i)
			}
		}
	}
	zero := make([]byte, 32)
	if _, err := ic.UnmarshalPrivateKey(keyMessage(ic.Secp256k1, zero)); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("zero Secp256k1 key: %v", err)
	}
	order, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	if _, err := ic.UnmarshalPrivateKey(keyMessage(ic.Secp256k1, order)); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("Secp256k1 key equal to the group order: %v", err)
	}
	// An Ed25519 key whose public half is not the seed's.
	ed := bytes.Clone(vectors["ed25519-private"][4:])
	ed[63] ^= 1
	if _, err := ic.UnmarshalEd25519PrivateKey(ed); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("inconsistent Ed25519 key: %v", err)
	}
	// A P-224 key: x509 parses it, libp2p does not use it.
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(p224)
	if sk, err := ic.UnmarshalECDSAPrivateKey(der); !errors.Is(err, ic.ErrUnsupportedCurve) || sk != nil {
		t.Errorf("P-224 private key: %v, %v", sk, err)
	}
	if sk, err := ic.PrivKeyFromStdKey(p224); !errors.Is(err, ic.ErrUnsupportedCurve) || sk != nil {
		t.Errorf("PrivKeyFromStdKey(P-224): %v, %v", sk, err)
	}
	pder, _ := x509.MarshalPKIXPublicKey(&p224.PublicKey)
	if pk, err := ic.UnmarshalECDSAPublicKey(pder); !errors.Is(err, ic.ErrUnsupportedCurve) || pk != nil {
		t.Errorf("P-224 public key: %v, %v", pk, err)
	}
	if pk, err := ic.PubKeyFromStdKey(&p224.PublicKey); !errors.Is(err, ic.ErrUnsupportedCurve) || pk != nil {
		t.Errorf("PubKeyFromStdKey(P-224): %v, %v", pk, err)
	}
	// A key of one type presented as another.
	if _, err := ic.UnmarshalPrivateKey(keyMessage(ic.ECDSA, vectors["rsa-private"][5:])); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("RSA bytes as ECDSA: %v", err)
	}
	if _, err := ic.UnmarshalPublicKey(keyMessage(ic.RSA, vectors["ecdsa-public"][4:])); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("ECDSA bytes as RSA: %v", err)
	}
}

func TestEd25519LegacyPrivateKey(t *testing.T) {
	vectors := specVectors(t)
	data := vectors["ed25519-private"][4:]
	legacy := append(bytes.Clone(data), data[32:]...)
	sk, err := ic.UnmarshalEd25519PrivateKey(legacy)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ic.UnmarshalPrivateKey(vectors["ed25519-private"])
	if !sk.Equals(want) {
		t.Error("legacy form decodes to another key")
	}
	if raw, _ := sk.Raw(); !bytes.Equal(raw, data) {
		t.Error("legacy key is not re-encoded in the 64-byte form")
	}
	legacy[95] ^= 1
	if _, err := ic.UnmarshalEd25519PrivateKey(legacy); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("legacy form with mismatched copies: %v", err)
	}
}

func TestSecp256k1UncompressedPublicKey(t *testing.T) {
	vectors := specVectors(t)
	pk, err := ic.UnmarshalPublicKey(vectors["secp256k1-public"])
	if err != nil {
		t.Fatal(err)
	}
	std, err := ic.PubKeyToStdKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	unc := std.(*secp256k1.PublicKey).SerializeUncompressed()
	pk2, err := ic.UnmarshalSecp256k1PublicKey(unc)
	if err != nil {
		t.Fatal(err)
	}
	if !pk2.Equals(pk) {
		t.Error("uncompressed form decodes to another key")
	}
	if raw, _ := pk2.Raw(); len(raw) != 33 {
		t.Errorf("re-encoded as %d bytes, want 33 (compressed)", len(raw))
	}
}

func TestStdKeyConversions(t *testing.T) {
	for _, kp := range testKeyPairs(t) {
		t.Run(kp.name, func(t *testing.T) {
			stdPub, err := ic.PubKeyToStdKey(kp.pk)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := ic.PubKeyFromStdKey(stdPub)
			if err != nil {
				t.Fatal(err)
			}
			if !pk.Equals(kp.pk) {
				t.Error("public key changed through the standard library form")
			}
			stdPriv, err := ic.PrivKeyToStdKey(kp.sk)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := ic.PrivKeyFromStdKey(stdPriv)
			if err != nil {
				t.Fatal(err)
			}
			if !sk.Equals(kp.sk) {
				t.Error("private key changed through the standard library form")
			}
		})
	}
	_, edPriv, _ := ed25519.GenerateKey(nil)
	if _, err := ic.PrivKeyFromStdKey(&edPriv); err != nil {
		t.Errorf("*ed25519.PrivateKey: %v", err)
	}
	for _, bad := range []any{nil, "not a key", (*rsa.PublicKey)(nil), (*ecdsa.PublicKey)(nil)} {
		if _, err := ic.PubKeyFromStdKey(bad); err == nil {
			t.Errorf("PubKeyFromStdKey(%T) succeeded", bad)
		}
	}
	if _, err := ic.PubKeyFromStdKey(3); !errors.Is(err, ic.ErrBadKeyType) {
		t.Errorf("PubKeyFromStdKey(int) = %v, want ErrBadKeyType", err)
	}
	// An ECDSA point that is not on the curve.
	offCurve := bytes.Clone(specVectors(t)["ecdsa-public"][4:])
	offCurve[len(offCurve)-1] ^= 1
	if _, err := ic.UnmarshalECDSAPublicKey(offCurve); !errors.Is(err, ic.ErrInvalidKey) {
		t.Errorf("off-curve ECDSA point: %v, want ErrInvalidKey", err)
	}
	if _, err := ic.MarshalPublicKey(nil); !errors.Is(err, ic.ErrNilKey) {
		t.Errorf("MarshalPublicKey(nil) = %v", err)
	}
	if _, err := ic.MarshalPrivateKey(nil); !errors.Is(err, ic.ErrNilKey) {
		t.Errorf("MarshalPrivateKey(nil) = %v", err)
	}
}

func TestKeyTypeString(t *testing.T) {
	for typ, want := range map[ic.KeyType]string{
		ic.RSA: "RSA", ic.Ed25519: "Ed25519", ic.Secp256k1: "Secp256k1", ic.ECDSA: "ECDSA", 9: "KeyType(9)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("KeyType(%d).String() = %q, want %q", int32(typ), got, want)
		}
	}
}

func BenchmarkEd25519Sign(b *testing.B) {
	sk, _, _ := ic.GenerateEd25519Key(nil)
	msg := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sk.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	sk, pk, _ := ic.GenerateEd25519Key(nil)
	msg := make([]byte, 256)
	sig, _ := sk.Sign(msg)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := pk.Verify(msg, sig); !ok || err != nil {
			b.Fatal("verify failed")
		}
	}
}

// asn1Marshal encodes a PKCS #1 RSAPrivateKey-shaped SEQUENCE of a version
// and eight integers.
func asn1Marshal(t *testing.T, version int, ints ...*big.Int) ([]byte, error) {
	t.Helper()
	v := struct {
		Version                     int
		N, E, D, P, Q, Dp, Dq, Qinv *big.Int
	}{version, ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6], ints[7]}
	return asn1.Marshal(v)
}
