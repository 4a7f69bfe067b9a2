package noise

import (
	"context"
	"errors"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
)

// TestWebTransportCertHashes: the responder lists its certificate hashes;
// the initiator succeeds when it finds every hash it wants among them and
// fails, before its last message, when one is missing or the responder
// lists none. Neither side negotiates a multiplexer.
func TestWebTransportCertHashes(t *testing.T) {
	a := []byte{0x12, 0x20, 1, 2, 3}
	b := []byte{0x12, 0x20, 4, 5, 6}
	c := []byte{0x12, 0x20, 7, 8, 9}
	cases := []struct {
		name       string
		sent, want [][]byte
		ok         bool
	}{
		{"equal", [][]byte{a, b}, [][]byte{a, b}, true},
		{"subset", [][]byte{a, b}, [][]byte{b}, true},
		{"missing one", [][]byte{a, b}, [][]byte{a, c}, false},
		{"none sent", nil, [][]byte{a}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := newTransport(t, ic.Ed25519, yamux)
			responder, err := newTransport(t, ic.Ed25519, yamux).WithCertHashes(tc.sent)
			if err != nil {
				t.Fatal(err)
			}
			initiator, err := base.WithWantedCertHashes(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			client, server := connPairs[0].make(t)
			r := runHandshake(context.Background(), client, server, initiator, responder, responder.localID, "")
			if !tc.ok {
				if !errors.Is(r.outErr, ErrCertHashMismatch) {
					t.Fatalf("initiator: %v, want ErrCertHashMismatch", r.outErr)
				}
				if r.inErr == nil { // the initiator never sent its last message
					r.in.Close()
					t.Fatal("responder completed the handshake")
				}
				return
			}
			if r.outErr != nil || r.inErr != nil {
				t.Fatalf("handshake: outbound %v, inbound %v", r.outErr, r.inErr)
			}
			defer r.out.Close()
			defer r.in.Close()
			if st := r.out.ConnState(); st.StreamMultiplexer != "" || st.Security != ID {
				t.Errorf("initiator ConnState %+v", st)
			}
			if st := r.in.ConnState(); st.StreamMultiplexer != "" {
				t.Errorf("responder ConnState %+v", st)
			}
			exchange(t, r.out, r.in)
			// The original transport still negotiates its multiplexer.
			out, _ := securePair(t, connPairs[0], base, newTransport(t, ic.Ed25519, yamux))
			if out.ConnState().StreamMultiplexer != yamux {
				t.Errorf("base transport changed: %+v", out.ConnState())
			}
		})
	}
}

// TestWebTransportWantsSomething: an initiator that wants no hash would
// bind the session to nothing, so it cannot be made.
func TestWebTransportWantsSomething(t *testing.T) {
	if _, err := newTransport(t, ic.Ed25519).WithWantedCertHashes(nil); !errors.Is(err, ErrCertHashMismatch) {
		t.Fatalf("WithWantedCertHashes(nil) = %v", err)
	}
}
