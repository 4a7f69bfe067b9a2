package autonat

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

var sampleMessages = []*Message{
	{DialRequest: &DialRequest{Addrs: [][]byte{clientAddr.Bytes(), serverAddr.Bytes()}, Nonce: 0xdeadbeefcafe}},
	{DialResponse: &DialResponse{Status: ResponseOK, AddrIdx: 1, DialStatus: DialOK}},
	{DialResponse: &DialResponse{Status: ResponseInternalError}},
	{DialDataRequest: &DialDataRequest{AddrIdx: 2, NumBytes: 50_000}},
	{DialDataResponse: &DialDataResponse{Data: bytes.Repeat([]byte{7}, 100)}},
	{DialDataResponse: &DialDataResponse{}},
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages {
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
	var buf bytes.Buffer
	WriteMessage(&buf, &DialBack{Nonce: 42})
	WriteMessage(&buf, &DialBackResponse{})
	var db DialBack
	var dbr DialBackResponse
	if err := ReadMessage(&buf, &db); err != nil || db.Nonce != 42 {
		t.Fatalf("DialBack: %+v, %v", db, err)
	}
	if err := ReadMessage(&buf, &dbr); err != nil || dbr.Status != 0 {
		t.Fatalf("DialBackResponse: %+v, %v", dbr, err)
	}
}

func TestMessageErrors(t *testing.T) {
	var m Message
	if err := m.Unmarshal(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty message: %v, want ErrMalformed", err)
	}
	if err := m.Unmarshal([]byte{0x0a, 0x05, 0x01}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated field: %v, want ErrMalformed", err)
	}
	if err := ReadMessage(bytes.NewReader([]byte{0x81, 0x80, 0x01}), &m); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized message: %v, want ErrMalformed", err)
	}
	if err := ReadMessage(bytes.NewReader([]byte{5, 0x0a}), &m); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated message: %v, want io.ErrUnexpectedEOF", err)
	}
	huge := &Message{DialDataResponse: &DialDataResponse{Data: make([]byte, MaxMessageSize)}}
	if err := WriteMessage(io.Discard, huge); !errors.Is(err, ErrMalformed) {
		t.Errorf("writing an oversized message: %v, want ErrMalformed", err)
	}
}

// FuzzMessage checks that decoding never panics and that what decodes
// re-encodes to something that decodes to the same message.
func FuzzMessage(f *testing.F) {
	for _, m := range sampleMessages {
		f.Add(m.AppendMarshal(nil))
	}
	f.Add((&DialBack{Nonce: 1}).AppendMarshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if m.Unmarshal(b) == nil {
			var again Message
			if err := again.Unmarshal(m.AppendMarshal(nil)); err != nil || !reflect.DeepEqual(again, m) {
				t.Fatalf("re-encoding %+v: %+v, %v", m, again, err)
			}
		}
		var db DialBack
		db.Unmarshal(b)
		var dbr DialBackResponse
		dbr.Unmarshal(b)
		ReadMessage(bytes.NewReader(b), &m)
	})
}
