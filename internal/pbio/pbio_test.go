package pbio

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// raw is a message that is its own bytes.
type raw []byte

func (r raw) AppendMarshal(b []byte) []byte { return append(b, r...) }
func (r *raw) Unmarshal(b []byte) error     { *r = append((*r)[:0], b...); return nil }

func TestRoundTripLeavesTheRest(t *testing.T) {
	var buf bytes.Buffer
	for _, m := range []raw{nil, raw("x"), raw(bytes.Repeat([]byte{7}, 300))} {
		buf.Reset()
		if err := Write(&buf, m, 300); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("after")
		var got raw
		if err := Read(&buf, &got, 300); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, m) || buf.String() != "after" {
			t.Errorf("read %q leaving %q, want %q leaving %q", got, buf.String(), m, "after")
		}
	}
}

func TestErrors(t *testing.T) {
	var got raw
	if err := Write(io.Discard, raw("abc"), 2); !errors.Is(err, ErrMalformed) {
		t.Errorf("writing past max: %v", err)
	}
	cases := []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{0x80}, io.ErrUnexpectedEOF},
		{[]byte{3, 'a'}, io.ErrUnexpectedEOF},
		{[]byte{5, 1, 2, 3, 4, 5}, ErrMalformed}, // over max 4
		{bytes.Repeat([]byte{0xff}, 11), ErrMalformed},
	}
	for _, c := range cases {
		if err := Read(bytes.NewReader(c.in), &got, 4); !errors.Is(err, c.want) {
			t.Errorf("Read(%x) = %v, want %v", c.in, err, c.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add([]byte{0x80, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		var got raw
		r := bytes.NewReader(in)
		if err := Read(r, &got, 64); err != nil {
			return
		}
		var out bytes.Buffer
		if err := Write(&out, got, 64); err != nil {
			t.Fatal(err)
		}
		var again raw
		if err := Read(&out, &again, 64); err != nil || !bytes.Equal(again, got) || out.Len() != 0 {
			t.Fatalf("round trip of %x: %x, %v, %d bytes left", []byte(got), []byte(again), err, out.Len())
		}
	})
}

func TestWrapMalformed(t *testing.T) {
	ours := errors.New("proto: malformed")
	var got raw
	err := WrapMalformed(Read(bytes.NewReader([]byte{5, 1, 2, 3, 4, 5}), &got, 4), ours)
	if !errors.Is(err, ours) || !errors.Is(err, ErrMalformed) {
		t.Errorf("framing error %v does not match both sentinels", err)
	}
	if err := WrapMalformed(io.EOF, ours); err != io.EOF {
		t.Errorf("EOF became %v", err)
	}
	if err := WrapMalformed(nil, ours); err != nil {
		t.Errorf("nil became %v", err)
	}
}
