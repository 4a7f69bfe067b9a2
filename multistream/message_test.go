package multistream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/protocol"
)

func TestWireEncoding(t *testing.T) {
	// Hand-computed: 0x13 = 19 = len("/multistream/1.0.0\n"),
	// 0x11 = 17 = len("/ipfs/ping/1.0.0\n").
	want := append([]byte{0x13}, "/multistream/1.0.0\n"...)
	want = append(want, 0x11)
	want = append(want, "/ipfs/ping/1.0.0\n"...)
	got := appendMessage(appendMessage(nil, ProtocolID), "/ipfs/ping/1.0.0")
	if !bytes.Equal(got, want) {
		t.Errorf("header + ping = %x, want %x", got, want)
	}
	if !bytes.Equal(headerMsg, want[:20]) {
		t.Errorf("headerMsg = %x, want %x", headerMsg, want[:20])
	}
	// The spec's examples: "na" is 0x036e610a and "ls" is 0x036c730a.
	if got, want := naMsg, []byte{0x03, 0x6e, 0x61, 0x0a}; !bytes.Equal(got, want) {
		t.Errorf("na = %x, want %x", got, want)
	}
	if got, want := appendMessage(nil, "ls"), []byte{0x03, 0x6c, 0x73, 0x0a}; !bytes.Equal(got, want) {
		t.Errorf("ls = %x, want %x", got, want)
	}
	// 200 bytes + '\n' = 201 = 0b1_1001001: varint 0xc9 0x01.
	long := appendMessage(nil, strings.Repeat("a", 200))
	if !bytes.Equal(long[:2], []byte{0xc9, 0x01}) || len(long) != 203 || long[202] != '\n' {
		t.Errorf("200-byte message starts %x, is %d bytes", long[:2], len(long))
	}
	if got := messageLen(200); got != len(long) {
		t.Errorf("messageLen(200) = %d, want %d", got, len(long))
	}
}

func TestReadMessage(t *testing.T) {
	maxBody := strings.Repeat("m", MaxMessageSize-1)
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr error
		// rest is how many bytes readMessage must leave unread.
		rest int
	}{
		{name: "header", in: headerMsg, want: ProtocolID},
		{name: "leaves what follows", in: append(wire("/a"), "data"...), want: "/a", rest: 4},
		{name: "newline only", in: []byte{1, '\n'}, want: ""},
		{name: "two-byte length", in: wire(strings.Repeat("x", 300)), want: strings.Repeat("x", 300)},
		{name: "largest", in: wire(maxBody), want: maxBody},
		{name: "inner newline kept", in: wire("a\nb"), want: "a\nb"},
		{name: "empty input", in: nil, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated length", in: []byte{0x80}, wantErr: io.ErrUnexpectedEOF},
		{name: "length only", in: []byte{0x05}, wantErr: io.ErrUnexpectedEOF},
		{name: "truncated body", in: wire(ProtocolID)[:10], wantErr: io.ErrUnexpectedEOF},
		{name: "no newline", in: []byte("\x03abc"), wantErr: ErrMalformed},
		{name: "zero length", in: []byte{0x00, 'x'}, wantErr: ErrMalformed, rest: 1},
		{name: "non-minimal length", in: []byte{0x83, 0x00, 'a', 'b', '\n'}, wantErr: ErrMalformed, rest: 3},
		{name: "one too large", in: append([]byte{0x81, 0x08}, maxBody+"ab"...), wantErr: ErrTooLarge, rest: MaxMessageSize + 1},
		// The third length byte is never read: two bytes with a
		// continuation bit already mean at least 1<<14.
		{name: "huge length", in: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, wantErr: ErrTooLarge, rest: 7},
		{name: "three-byte length", in: []byte{0x80, 0x80, 0x01}, wantErr: ErrTooLarge, rest: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.in)
			msg, err := readMessage(r, make([]byte, MaxMessageSize))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("readMessage error = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || string(msg) != tt.want {
				t.Fatalf("readMessage = %q, %v; want %q", msg, err, tt.want)
			}
			if r.Len() != tt.rest {
				t.Errorf("readMessage left %d bytes unread, want %d", r.Len(), tt.rest)
			}

			// parseMessage, used on buffered input, agrees.
			pmsg, n, perr := parseMessage(tt.in)
			switch {
			case tt.wantErr == io.ErrUnexpectedEOF:
				if perr != errShort {
					t.Errorf("parseMessage error = %v, want errShort", perr)
				}
			case tt.wantErr != nil:
				if !errors.Is(perr, tt.wantErr) {
					t.Errorf("parseMessage error = %v, want %v", perr, tt.wantErr)
				}
			default:
				if perr != nil || string(pmsg) != tt.want || n != len(tt.in)-tt.rest {
					t.Errorf("parseMessage = %q, %d, %v; want %q, %d", pmsg, n, perr, tt.want, len(tt.in)-tt.rest)
				}
			}
		})
	}
}

// TestReadMessageHugeLengthDoesNotAllocate checks that a claimed length of
// about 2^63 costs nothing: it is refused after two bytes, before any
// buffer is sized by it.
func TestReadMessageHugeLengthDoesNotAllocate(t *testing.T) {
	in := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	r := bytes.NewReader(in)
	buf := make([]byte, MaxMessageSize)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(in)
		if _, err := readMessage(r, buf); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("readMessage error = %v, want ErrTooLarge", err)
		}
	})
	if allocs != 0 {
		t.Errorf("readMessage of a huge length allocated %v times, want 0", allocs)
	}
}

func TestReadMessageDoesNotAllocate(t *testing.T) {
	in := wire(ProtocolID, "/ipfs/ping/1.0.0")
	r := bytes.NewReader(in)
	buf := make([]byte, MaxMessageSize)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(in)
		for range 2 {
			if _, err := readMessage(r, buf); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("reading two messages allocated %v times, want 0", allocs)
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id    protocol.ID
		valid bool
	}{
		{"/ipfs/ping/1.0.0", true},
		{"x", true},
		{"/ünïcode/1", true},
		{protocol.ID(strings.Repeat("a", MaxMessageSize-1)), true},
		{protocol.ID(strings.Repeat("a", MaxMessageSize)), false},
		{"", false},
		{"/a\n/b", false},
		{"/bad/\xff", false},
		{"na", false},
		{"ls", false},
		{ProtocolID, false},
	}
	for _, tt := range tests {
		err := validateID(tt.id)
		if tt.valid && err != nil {
			t.Errorf("validateID(%q) = %v, want nil", tt.id, err)
		}
		if !tt.valid && !errors.Is(err, ErrInvalidProtocol) {
			t.Errorf("validateID(%q) = %v, want ErrInvalidProtocol", tt.id, err)
		}
	}
}
