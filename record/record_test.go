package record_test

import (
	"errors"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/record"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(t testing.TB) (peer.ID, ic.PrivKey) {
	priv, _, err := ic.GenerateKeyPair(ic.Ed25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id, priv
}

func TestEnvelopeRoundTrip(t *testing.T) {
	_, priv := key(t)
	e, err := record.Seal("test-domain", []byte{0x12}, []byte("payload"), priv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := record.ConsumeEnvelope(b, "test-domain")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.RawPayload) != "payload" || string(got.PayloadType) != "\x12" || !got.PublicKey.Equals(priv.GetPublic()) {
		t.Fatalf("envelope %+v", got)
	}
	if _, err := record.ConsumeEnvelope(b, "other-domain"); !errors.Is(err, record.ErrInvalidSignature) {
		t.Fatalf("another domain: %v, want ErrInvalidSignature", err)
	}
	b[len(b)-1] ^= 1
	if _, err := record.ConsumeEnvelope(b, "test-domain"); !errors.Is(err, record.ErrInvalidSignature) {
		t.Fatalf("flipped signature bit: %v, want ErrInvalidSignature", err)
	}
	if _, err := record.Seal("", nil, nil, priv); !errors.Is(err, record.ErrEmptyDomain) {
		t.Fatalf("empty domain: %v", err)
	}
}

func TestPeerRecord(t *testing.T) {
	id, priv := key(t)
	r := &record.PeerRecord{PeerID: id, Seq: 7, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}
	e, err := record.SealPeerRecord(r, priv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := record.ConsumePeerRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.PeerID != id || got.Seq != 7 || len(got.Addrs) != 1 || !got.Addrs[0].Equal(r.Addrs[0]) {
		t.Fatalf("record %+v", got)
	}
	other, _ := key(t)
	if _, err := record.SealPeerRecord(&record.PeerRecord{PeerID: other}, priv); err == nil {
		t.Fatal("sealed a record of another peer")
	}
}

func FuzzEnvelope(f *testing.F) {
	_, priv := key(f)
	e, err := record.Seal("d", []byte{1}, []byte("x"), priv)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := e.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := record.UnmarshalEnvelope(b)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := record.UnmarshalEnvelope(out); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		record.ConsumeEnvelope(b, "d")
	})
}

func FuzzPeerRecord(f *testing.F) {
	id, _ := key(f)
	f.Add((&record.PeerRecord{PeerID: id, Seq: 1, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/5")}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := record.UnmarshalPeerRecord(b)
		if err != nil {
			return
		}
		if _, err := record.UnmarshalPeerRecord(r.Marshal()); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}
