package multistream

import (
	"errors"
	"io"
	"net"
	"slices"
	"testing"

	"github.com/p2pnet/p2pnet/protocol"
)

// fakeListener reads n bytes from l, answers with answer in one write, and
// half-closes l if closeAfter. The test waits for it when it ends.
func fakeListener(t *testing.T, l net.Conn, n int, answer []byte, closeAfter bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := io.ReadFull(l, make([]byte, n)); err != nil {
			return
		}
		if _, err := l.Write(answer); err != nil {
			return
		}
		if closeAfter {
			_ = closeWrite(l)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
}

func TestSelectOneOf(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rd := record(d)
		res := negotiateAsync(testRouter(), l)
		got, err := SelectOneOf([]protocol.ID{"/nope/1", "/nope/2", "/ipfs/ping/1.0.0", "/echo/1.0.0"}, rd)
		if err != nil || got != "/ipfs/ping/1.0.0" {
			t.Fatalf("SelectOneOf = %q, %v; want /ipfs/ping/1.0.0", got, err)
		}
		if r := <-res; r.err != nil || r.h != "ping" {
			t.Fatalf("Negotiate = %q, %q, %v", r.id, r.h, r.err)
		}
		// The first proposal goes with the header, the others alone.
		want := [][]byte{wire(ProtocolID, "/nope/1"), wire("/nope/2"), wire("/ipfs/ping/1.0.0")}
		if got := rd.Writes(); !equalWrites(got, want) {
			t.Errorf("dialer wrote %q, want %q", got, want)
		}
	})
}

func TestSelectOneOfFirst(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		res := negotiateAsync(testRouter(), l)
		got, err := SelectOneOf([]protocol.ID{"/echo/1.0.0", "/ipfs/ping/1.0.0"}, d)
		if err != nil || got != "/echo/1.0.0" {
			t.Fatalf("SelectOneOf = %q, %v; want /echo/1.0.0", got, err)
		}
		if r := <-res; r.err != nil || r.h != "echo-exact" {
			t.Fatalf("Negotiate = %q, %q, %v", r.id, r.h, r.err)
		}
	})
}

func TestSelectOneOfNoneSupported(t *testing.T) {
	protos := []protocol.ID{"/nope/1", "/nope/2", "/nope/3"}
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		res := negotiateAsync(testRouter(), l)
		_, err := SelectOneOf(protos, d)
		var nse *NotSupportedError
		if !errors.Is(err, ErrNotSupported) || !errors.As(err, &nse) || !slices.Equal(nse.Protocols, protos) {
			t.Fatalf("SelectOneOf error = %v, want not supported %q", err, protos)
		}
		d.Close()
		if r := <-res; r.err == nil {
			t.Errorf("Negotiate accepted %q", r.id)
		}
	})
}

func TestSelectInvalidArguments(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, _ := ct.pair(t)
		rd := record(d)
		if _, err := SelectOneOf(nil, rd); !errors.Is(err, ErrNoProtocols) {
			t.Errorf("SelectOneOf(nil) error = %v, want ErrNoProtocols", err)
		}
		if _, err := SelectOneOf([]protocol.ID{"/ok", "bad\n"}, rd); !errors.Is(err, ErrInvalidProtocol) {
			t.Errorf("SelectOneOf with an invalid ID: error = %v, want ErrInvalidProtocol", err)
		}
		if err := SelectProtoOrFail("ls", rd); !errors.Is(err, ErrInvalidProtocol) {
			t.Errorf("SelectProtoOrFail(ls) error = %v, want ErrInvalidProtocol", err)
		}
		if w := rd.Writes(); len(w) != 0 {
			t.Errorf("invalid arguments wrote %q", w)
		}
	})
}

func TestSelectBadAnswers(t *testing.T) {
	const proto = "/ipfs/ping/1.0.0"
	sent := len(wire(ProtocolID, proto))
	tests := []struct {
		name    string
		answer  []byte
		wantErr error
	}{
		{"wrong header", wire("/multistream/2.0.0", proto), ErrHeaderMismatch},
		{"other protocol", wire(ProtocolID, "/ipfs/ping/2.0.0"), ErrUnexpectedResponse},
		{"list", wire(ProtocolID, string(wire(proto))), ErrUnexpectedResponse},
		{"huge length", append(wire(ProtocolID), 0xff, 0xff, 0xff, 0xff, 0x0f), ErrTooLarge},
		{"no newline", append(wire(ProtocolID), "\x03abc"...), ErrMalformed},
		{"truncated header", wire(ProtocolID)[:5], io.ErrUnexpectedEOF},
		{"truncated answer", wire(ProtocolID, proto)[:25], io.ErrUnexpectedEOF},
		{"no answer", wire(ProtocolID), io.ErrUnexpectedEOF},
	}
	forEachConn(t, func(t *testing.T, ct connType) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, l := ct.pair(t)
				fakeListener(t, l, sent, tt.answer, true)
				if err := SelectProtoOrFail(proto, d); !errors.Is(err, tt.wantErr) {
					t.Errorf("SelectProtoOrFail error = %v, want %v", err, tt.wantErr)
				}
			})
		}
	})
}

func TestSelectWriteError(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, _ := ct.pair(t)
		d.Close()
		if err := SelectProtoOrFail("/a", d); !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("SelectProtoOrFail on a closed conn: error = %v", err)
		}
	})
}
