package quic_test

import (
	"context"
	"errors"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport/quic"

	quicgo "github.com/quic-go/quic-go"
)

// TestResetWithErrorCode: a stream refused for resources is reset with
// libp2p's code 0x1002 in RESET_STREAM, and the other side's reads fail
// with an error that says so (network.ErrResourceLimitExceeded) and still
// is a reset; a plain reset says nothing of resources.
func TestResetWithErrorCode(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	dc, lc := connect(t, a, l, b.id)
	defer dc.Close()
	defer lc.Close()
	for _, tc := range []struct {
		name     string
		reset    func(network.MuxedStream) error
		resource bool
	}{
		{"refused for resources", func(s network.MuxedStream) error {
			return s.(interface {
				ResetWithError(network.StreamErrorCode) error
			}).ResetWithError(network.StreamResourceLimitExceeded)
		}, true},
		{"plain reset", func(s network.MuxedStream) error { return s.Reset() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := dc.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			r, err := lc.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.reset(r); err != nil {
				t.Fatal(err)
			}
			_, err = s.Read(make([]byte, 1))
			if !errors.Is(err, quic.ErrStreamReset) || !errors.Is(err, network.ErrReset) {
				t.Fatalf("read after the remote's reset: %v; want a reset", err)
			}
			if got := errors.Is(err, network.ErrResourceLimitExceeded); got != tc.resource {
				t.Errorf("read error %v matches ErrResourceLimitExceeded: %v; want %v", err, got, tc.resource)
			}
			if se, ok := errors.AsType[*quicgo.StreamError](err); tc.resource && (!ok || se.ErrorCode != quicgo.StreamErrorCode(network.StreamResourceLimitExceeded)) {
				t.Errorf("the reset carried %v; want code 0x1002", err)
			}
		})
	}
}
