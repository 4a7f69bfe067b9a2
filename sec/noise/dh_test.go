package noise

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/flynn/noise"

	ic "github.com/p2pnet/p2pnet/crypto"
)

func TestDH25519MatchesReference(t *testing.T) {
	d, err := newDH25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	static := d.staticKey()
	// The static public key is the reference's public key of the
	// private key.
	ref, err := noise.DH25519.GenerateKeypair(bytes.NewReader(static.Private))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ref.Public, static.Public) {
		t.Fatal("static public key differs from the reference's")
	}
	for range 20 {
		eph, err := d.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		remote, err := noise.DH25519.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		for _, priv := range []noise.DHKey{static, eph} {
			got, err := d.DH(priv.Private, remote.Public)
			if err != nil {
				t.Fatal(err)
			}
			want, err := noise.DH25519.DH(remote.Private, priv.Public)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("shared secrets differ: %x, reference %x", got, want)
			}
		}
		d.forget(eph.Private)
	}
	if n := len(d.eph); n != 0 {
		t.Errorf("%d ephemeral keys kept after forget", n)
	}
	// A key dh25519 never made (or forgot) still works, from its bytes.
	other, _ := noise.DH25519.GenerateKeypair(rand.Reader)
	got, err := d.DH(other.Private, static.Public)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := noise.DH25519.DH(other.Private, static.Public); !bytes.Equal(got, want) {
		t.Fatal("DH with an unknown private key differs from the reference")
	}
}

func TestDH25519RefusesLowOrderPoints(t *testing.T) {
	d, err := newDH25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The all-zero point and the point of order 8 from RFC 7748's list
	// give an all-zero shared secret.
	for _, pub := range [][]byte{
		make([]byte, 32),
		{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
			0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	} {
		if _, err := d.DH(d.staticBytes, pub); !errors.Is(err, errLowOrder) {
			t.Errorf("DH with low-order point %x: %v", pub, err)
		}
	}
	if _, err := d.DH(d.staticBytes, []byte{1, 2, 3}); err == nil {
		t.Error("DH with a 3-byte public key succeeded")
	}
}

func TestDH25519KeepsBoundedEphemerals(t *testing.T) {
	d, err := newDH25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for range maxKeptEphemerals + 10 {
		if _, err := d.GenerateKeypair(rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(d.eph); n != maxKeptEphemerals {
		t.Errorf("%d ephemeral keys kept, want at most %d", n, maxKeptEphemerals)
	}
}

func TestHandshakeForgetsEphemerals(t *testing.T) {
	// After handshakes, successful or not, no ephemeral key is kept.
	a, b := newTransport(t, ic.Ed25519), newTransport(t, ic.Ed25519)
	for range 3 {
		securePair(t, connPairs[0], a, b)
	}
	// A handshake that fails (the responder is not who the initiator
	// expects) forgets its keys too.
	client, server := connPairs[0].make(t)
	r := runHandshake(context.Background(), client, server, a, b, a.localID, "")
	if r.outErr == nil {
		t.Fatal("handshake with the wrong expected peer succeeded")
	}
	client.Close()
	server.Close()
	if na, nb := len(a.dh.eph), len(b.dh.eph); na != 0 || nb != 0 {
		t.Errorf("ephemeral keys kept after the handshakes: %d, %d", na, nb)
	}
}
