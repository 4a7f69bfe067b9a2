package multistream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/p2pnet/p2pnet/protocol"
)

// fuzzSeeds are byte strings a listener or dialer might receive.
func fuzzSeeds() [][]byte {
	return [][]byte{
		nil,
		wire(ProtocolID),
		wire(ProtocolID, "/ipfs/ping/1.0.0"),
		append(wire(ProtocolID, "/ipfs/ping/1.0.0"), "data"...),
		wire(ProtocolID, "na"),
		wire(ProtocolID, "/nope", "ls", "/echo/1.7.0"),
		wire(ProtocolID, "/echo/1.0.0", "/echo/9"),
		wire("/multistream/2.0.0", "/ipfs/ping/1.0.0"),
		append(wire(ProtocolID), 0xff, 0xff, 0xff, 0xff, 0x0f),
		append(wire(ProtocolID), 0x80, 0x08),
		append(wire(ProtocolID), 0x83, 0x00),
		append(wire(ProtocolID), "\x03abc"...),
		wire(ProtocolID)[:7],
		{0x00},
	}
}

func FuzzReadMessage(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	buf := make([]byte, MaxMessageSize)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		msg, err := readMessage(r, buf)
		consumed := len(data) - r.Len()
		pmsg, n, perr := parseMessage(data)
		if err != nil {
			switch {
			case errors.Is(err, io.ErrUnexpectedEOF):
				if perr != errShort {
					t.Fatalf("readMessage: %v, but parseMessage: %v", err, perr)
				}
			case errors.Is(err, ErrTooLarge), errors.Is(err, ErrMalformed):
				if perr == nil || errors.Is(err, ErrTooLarge) != errors.Is(perr, ErrTooLarge) {
					t.Fatalf("readMessage: %v, but parseMessage: %v", err, perr)
				}
			default:
				t.Fatalf("readMessage: unexpected error %v", err)
			}
			return
		}
		if perr != nil || !bytes.Equal(pmsg, msg) || n != consumed {
			t.Fatalf("readMessage = %q after %d bytes, parseMessage = %q after %d, %v", msg, consumed, pmsg, n, perr)
		}
		if len(msg) >= MaxMessageSize {
			t.Fatalf("accepted a %d-byte message", len(msg))
		}
		// Only minimal encodings are accepted, so encoding the message
		// again gives back exactly the bytes read.
		if enc := appendMessage(nil, string(msg)); !bytes.Equal(enc, data[:consumed]) {
			t.Fatalf("re-encoded %x, read %x", enc, data[:consumed])
		}
	})
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	r := testRouter()
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		rw := struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(data), &out}
		id, h, err := r.Negotiate(rw)
		if err != nil {
			if id != "" || h != "" {
				t.Fatalf("Negotiate failed with %v but returned %q, %q", err, id, h)
			}
			return
		}
		if validateID(id) != nil || h == "" {
			t.Fatalf("Negotiate accepted %q with handler %q", id, h)
		}
		if !bytes.HasPrefix(out.Bytes(), headerMsg) || !bytes.HasSuffix(out.Bytes(), wire(string(id))) {
			t.Fatalf("Negotiate accepted %q but wrote %q", id, out.Bytes())
		}
	})
}

func FuzzLazyClient(f *testing.F) {
	const proto protocol.ID = "/ipfs/ping/1.0.0"
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	hs := wire(ProtocolID, string(proto))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &scriptedConn{Reader: bytes.NewReader(data)}
		lc := NewLazyClient(c, proto)
		b := make([]byte, 64)
		n, err := lc.Read(b)
		closeWant := err // Close reports a failed negotiation
		switch {
		case err == nil:
			if !bytes.HasPrefix(data, hs) || !bytes.Equal(b[:n], data[len(hs):len(hs)+n]) {
				t.Fatalf("Read = %q from %q", b[:n], data)
			}
		case err == io.EOF:
			if !bytes.Equal(data, hs) {
				t.Fatalf("Read = EOF from %q", data)
			}
			closeWant = nil
		default:
			if bytes.HasPrefix(data, hs) {
				t.Fatalf("Read failed with %v on a valid answer %q", err, data)
			}
			if _, werr := lc.Write([]byte("x")); werr != err {
				t.Fatalf("Write after failed Read: %v, want %v", werr, err)
			}
		}
		if err := lc.Close(); err != closeWant {
			t.Fatalf("Close: %v, want %v", err, closeWant)
		}
	})
}
