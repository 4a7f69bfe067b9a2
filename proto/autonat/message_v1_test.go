package autonat

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var sampleV1Messages = []*V1Message{
	{Type: V1TypeDial, Dial: &V1Dial{Peer: &V1PeerInfo{ID: []byte("peer-id"), Addrs: [][]byte{clientAddr.Bytes(), serverAddr.Bytes()}}}},
	{Type: V1TypeDial, Dial: &V1Dial{Peer: &V1PeerInfo{}}},
	{Type: V1TypeDial, Dial: &V1Dial{}},
	{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1OK, Addr: clientAddr.Bytes()}},
	{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1DialError, StatusText: "dial failed"}},
	{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1InternalError, Addr: []byte{}}},
	{Type: 9},
}

func TestV1MessageRoundTrip(t *testing.T) {
	for _, m := range sampleV1Messages {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		var got V1Message
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
}

// TestV1MessageWire checks the encoding against bytes laid out by hand
// from the spec's proto2 definition: type always present (DIAL is 0),
// the dial's peer info, the response's status, text and address.
func TestV1MessageWire(t *testing.T) {
	dial := (&V1Message{Type: V1TypeDial, Dial: &V1Dial{Peer: &V1PeerInfo{ID: []byte{1, 2}, Addrs: [][]byte{{3}}}}}).AppendMarshal(nil)
	want := []byte{0x08, 0x00, 0x12, 0x09, 0x0a, 0x07, 0x0a, 0x02, 1, 2, 0x12, 0x01, 3}
	if !bytes.Equal(dial, want) {
		t.Errorf("DIAL = % x, want % x", dial, want)
	}
	resp := (&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1DialRefused, StatusText: "no", Addr: []byte{9}}}).AppendMarshal(nil)
	want = []byte{0x08, 0x01, 0x1a, 0x09, 0x08, 0x65, 0x12, 0x02, 'n', 'o', 0x1a, 0x01, 9}
	if !bytes.Equal(resp, want) {
		t.Errorf("DIAL_RESPONSE = % x, want % x", resp, want)
	}
	var m V1Message
	if err := m.Unmarshal([]byte{0x1a, 0x00}); err != nil || m.Type != V1TypeDial || m.DialResponse == nil || m.DialResponse.Status != V1OK {
		t.Errorf("absent type and status: %+v, %v; want the proto2 defaults DIAL and OK", m, err)
	}
}

func TestV1MessageErrors(t *testing.T) {
	var m V1Message
	for _, b := range [][]byte{
		{0x12, 0x05, 0x01},             // truncated dial
		{0x12, 0x02, 0x0a, 0x05},       // truncated peer info
		{0x1a, 0x02, 0x12, 0x09},       // truncated status text
		{0x08},                         // truncated varint
		{0x0f},                         // bad wire type
		{0x12, 0x03, 0x0a, 0x01, 0x0f}, // bad wire type in peer info
	} {
		if err := m.Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Unmarshal(% x) = %v, want ErrMalformed", b, err)
		}
	}
}

// FuzzV1Message checks that decoding never panics and that what decodes
// re-encodes to something that decodes to the same message.
func FuzzV1Message(f *testing.F) {
	for _, m := range sampleV1Messages {
		f.Add(m.AppendMarshal(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m V1Message
		if m.Unmarshal(b) == nil {
			var again V1Message
			if err := again.Unmarshal(m.AppendMarshal(nil)); err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("re-encoding %+v: %+v, %v", m, again, err)
			}
		}
		ReadMessage(bytes.NewReader(b), &m)
	})
}
