package holepunch

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestMessageRoundTrip(t *testing.T) {
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.1/tcp/4001"), ma.StringCast("/ip4/198.51.100.1/udp/4001/quic-v1")}
	for _, m := range []*Message{NewMessage(TypeConnect, addrs), {Type: TypeSync}} {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		var got Message
		if err := ReadMessage(&buf, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
		if buf.Len() != 0 {
			t.Fatalf("%d bytes left unread", buf.Len())
		}
	}
	if got := NewMessage(TypeConnect, addrs).Addrs(); len(got) != 2 || !got[1].Equal(addrs[1]) {
		t.Fatalf("Addrs() = %v", got)
	}
}

func TestMessageErrors(t *testing.T) {
	var m Message
	if err := m.Unmarshal([]byte{0x12, 0x00}); !errors.Is(err, ErrMalformed) {
		t.Errorf("message without a type: %v, want ErrMalformed", err)
	}
	if err := m.Unmarshal([]byte{0x08}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated varint: %v, want ErrMalformed", err)
	}
	big := []byte{0x81, 0x20} // 4097
	if err := ReadMessage(bytes.NewReader(big), &m); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized message: %v, want ErrMalformed", err)
	}
	if err := ReadMessage(bytes.NewReader([]byte{5, 0x08}), &m); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated message: %v, want io.ErrUnexpectedEOF", err)
	}
	huge := &Message{Type: TypeConnect, ObsAddrs: [][]byte{make([]byte, MaxMessageSize)}}
	if err := WriteMessage(io.Discard, huge); !errors.Is(err, ErrMalformed) {
		t.Errorf("writing an oversized message: %v, want ErrMalformed", err)
	}
	// Unparsable addresses survive decoding and are skipped by Addrs.
	m = Message{Type: TypeConnect, ObsAddrs: [][]byte{{0xff}}}
	var again Message
	if err := again.Unmarshal(m.AppendMarshal(nil)); err != nil || len(again.Addrs()) != 0 || len(again.ObsAddrs) != 1 {
		t.Errorf("unparsable address: %v, %+v", err, again)
	}
}

func FuzzMessage(f *testing.F) {
	f.Add(NewMessage(TypeConnect, []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.1/tcp/1")}).AppendMarshal(nil))
	f.Add((&Message{Type: TypeSync}).AppendMarshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Unmarshal(b) != nil {
			return
		}
		m.Addrs()
		var again Message
		if err := again.Unmarshal(m.AppendMarshal(nil)); err != nil {
			t.Fatalf("re-decoding what we encoded: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip differs: %+v vs %+v", m, again)
		}
	})
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{2, 0x08, 0x64})
	f.Add([]byte{0x81, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		ReadMessage(bytes.NewReader(b), &m)
	})
}
