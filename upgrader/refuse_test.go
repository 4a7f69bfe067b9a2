package upgrader_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/upgrader"
)

// TestRefusedAtSetPeerTellsDialer: when the listener's resource manager
// refuses the authenticated peer, the listener tells the dialer with a
// yamux GoAway carrying ConnResourceLimitExceeded before closing, so the
// dialer's connection fails with an error matching
// network.ErrResourceLimitExceeded instead of a bare EOF.
func TestRefusedAtSetPeerTellsDialer(t *testing.T) {
	for _, secName := range secNames {
		t.Run(secName, func(t *testing.T) {
			a := newNode(t, []string{secName}, []protocol.ID{yamux.ID}, nil)
			b := newNode(t, []string{secName}, []protocol.ID{yamux.ID}, nil)
			ra, rb := memconn.Pair(0)
			ls := &countingScope{refuse: true}
			var wg sync.WaitGroup
			var dc *upgrader.Conn
			var derr, lerr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				dc, derr = a.u.Upgrade(context.Background(), ra, network.DirOutbound, b.id, &network.NullScope{}, addrA, addrB, "test")
			}()
			go func() {
				defer wg.Done()
				_, lerr = b.u.Upgrade(context.Background(), rb, network.DirInbound, "", ls, addrB, addrA, "test")
			}()
			wg.Wait()
			if !errors.Is(lerr, network.ErrResourceLimitExceeded) {
				t.Fatalf("listener error %v; want ErrResourceLimitExceeded", lerr)
			}
			// The dialer finished its handshake before the listener
			// refused: it learns of the refusal on the connection.
			if derr != nil {
				t.Fatalf("dialer error %v; want the upgrade to succeed", derr)
			}
			defer dc.Close()
			_, err := dc.AcceptStream()
			if !errors.Is(err, network.ErrResourceLimitExceeded) {
				t.Fatalf("dialer's AcceptStream on a refused connection = %v; want ErrResourceLimitExceeded", err)
			}
			if ga, ok := errors.AsType[*yamux.GoAwayError](err); !ok || ga.Code != uint32(network.ConnResourceLimitExceeded) {
				t.Fatalf("dialer's AcceptStream on a refused connection = %v; want a GoAway with code 0x1001", err)
			}
		})
	}
}
