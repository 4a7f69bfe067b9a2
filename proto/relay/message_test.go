package relay_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"

	ma "github.com/multiformats/go-multiaddr"
)

func testPeer(t testing.TB) (peer.ID, ic.PrivKey) {
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

func TestHopRoundTrip(t *testing.T) {
	id, _ := testPeer(t)
	msgs := []*relay.HopMessage{
		{Type: relay.HopReserve},
		{Type: relay.HopConnect, Peer: &relay.Peer{ID: id, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}},
		{Type: relay.HopStatus, Status: relay.StatusOK, Limit: &relay.Limit{Duration: 120, Data: 1 << 17},
			Reservation: &relay.Reservation{Expire: 12345, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/1/quic-v1")}, Voucher: []byte{1, 2, 3}}},
		{Type: relay.HopStatus, Status: relay.StatusNoReservation},
	}
	for _, m := range msgs {
		var buf bytes.Buffer
		if err := relay.WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		var got relay.HopMessage
		if err := relay.ReadMessage(&buf, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, m) {
			t.Errorf("round trip: got %+v, want %+v", got, *m)
		}
	}
}

func TestStopRoundTrip(t *testing.T) {
	id, _ := testPeer(t)
	for _, m := range []*relay.StopMessage{
		{Type: relay.StopConnect, Peer: &relay.Peer{ID: id}, Limit: &relay.Limit{Data: 5}},
		{Type: relay.StopStatus, Status: relay.StatusOK},
	} {
		var got relay.StopMessage
		if err := got.Unmarshal(m.AppendMarshal(nil)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, m) {
			t.Errorf("round trip: got %+v, want %+v", got, *m)
		}
	}
}

// TestWireBytes pins the encoding against bytes written by hand from the
// spec's protobuf.
func TestWireBytes(t *testing.T) {
	m := &relay.HopMessage{Type: relay.HopStatus, Status: relay.StatusOK, Limit: &relay.Limit{Duration: 120, Data: 131072}}
	want := []byte{0x08, 0x02, 0x22, 0x06, 0x08, 0x78, 0x10, 0x80, 0x80, 0x08, 0x28, 0x64}
	if got := m.AppendMarshal(nil); !bytes.Equal(got, want) {
		t.Fatalf("encoded % x, want % x", got, want)
	}
}

func TestReadMessageErrors(t *testing.T) {
	for name, in := range map[string][]byte{
		"empty":        {},
		"truncated":    {5, 0x08},
		"too long":     {0x80, 0x80, 0x01},
		"no type":      {2, 0x28, 0x64},
		"bad peer":     {4, 0x08, 0x01, 0x12, 0x00},
		"bad tag":      {2, 0xff, 0xff},
		"varint flood": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		var m relay.HopMessage
		err := relay.ReadMessage(bytes.NewReader(in), &m)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if name != "empty" && !errors.Is(err, relay.ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v, want ErrMalformed or ErrUnexpectedEOF", name, err)
		}
	}
}

func TestVoucher(t *testing.T) {
	relayID, priv := testPeer(t)
	p, other := testPeer(t)
	exp := time.Unix(1700000000, 0)
	b, err := relay.SealVoucher(&relay.Voucher{Relay: relayID, Peer: p, Expiration: exp}, priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := relay.ConsumeVoucher(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Relay != relayID || v.Peer != p || !v.Expiration.Equal(exp) {
		t.Fatalf("voucher %+v", v)
	}
	// Signed by someone else than the relay it names.
	b, err = relay.SealVoucher(&relay.Voucher{Relay: relayID, Peer: p, Expiration: exp}, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.ConsumeVoucher(b); err == nil {
		t.Fatal("a voucher signed by another key was accepted")
	}
}

func FuzzHopMessage(f *testing.F) {
	id, _ := testPeer(f)
	f.Add((&relay.HopMessage{Type: relay.HopConnect, Peer: &relay.Peer{ID: id}}).AppendMarshal(nil))
	f.Add((&relay.HopMessage{Type: relay.HopStatus, Status: relay.StatusOK, Limit: &relay.Limit{Duration: 1, Data: 2},
		Reservation: &relay.Reservation{Expire: 3, Voucher: []byte{4}}}).AppendMarshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m relay.HopMessage
		if m.Unmarshal(b) != nil {
			return
		}
		var again relay.HopMessage
		if err := again.Unmarshal(m.AppendMarshal(nil)); err != nil {
			t.Fatalf("re-decoding what we encoded: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip differs: %+v vs %+v", m, again)
		}
	})
}

func FuzzStopMessage(f *testing.F) {
	id, _ := testPeer(f)
	f.Add((&relay.StopMessage{Type: relay.StopConnect, Peer: &relay.Peer{ID: id}, Limit: &relay.Limit{Data: 9}}).AppendMarshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m relay.StopMessage
		if m.Unmarshal(b) != nil {
			return
		}
		var again relay.StopMessage
		if err := again.Unmarshal(m.AppendMarshal(nil)); err != nil {
			t.Fatalf("re-decoding what we encoded: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip differs: %+v vs %+v", m, again)
		}
	})
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{2, 0x08, 0x00})
	f.Add([]byte{0x80, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m relay.HopMessage
		relay.ReadMessage(bytes.NewReader(b), &m)
	})
}

func FuzzVoucher(f *testing.F) {
	relayID, priv := testPeer(f)
	b, err := relay.SealVoucher(&relay.Voucher{Relay: relayID, Peer: relayID, Expiration: time.Unix(5, 0)}, priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		relay.ConsumeVoucher(b)
	})
}
