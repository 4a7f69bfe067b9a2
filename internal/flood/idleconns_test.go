package flood

import (
	"context"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/rcmgr"
)

// TestIdleConnsTrimmed: idle authenticated connections from many peers
// fill the victim's inbound connection limit, so newcomers are refused;
// the connection manager closes the idle peers' connections down to its
// low watermark, and the well-behaved peer is served.
func TestIdleConnsTrimmed(t *testing.T) {
	const (
		peers       = 60 // idle attackers, one connection each
		inboundCap  = 40 // the victim's inbound connection limit
		low, high   = 8, 16
		silenceTime = 100 * time.Millisecond
	)
	rm := newManager(t, func(l *rcmgr.Limits) {
		l.System.ConnsInbound = inboundCap
		l.System.Conns = inboundCap + 8
	})
	victim := newHost(t, p2pnet.ResourceManager(rm), p2pnet.InboundHandshakesPerAddress(peers),
		p2pnet.ConnectionManager(low, high, connmgr.WithGracePeriod(0), connmgr.WithSilencePeriod(silenceTime)))
	victim.SetStreamHandler(holdProto, newHoldServer(peers).handle)
	vi := info(victim)

	trimmed := make(chan struct{}, 1)
	victim.Network().Notify(&network.NotifyBundle{DisconnectedF: func(n network.Network, _ network.Conn) {
		if len(n.Conns()) <= low {
			select {
			case trimmed <- struct{}{}:
			default:
			}
		}
	}})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for range peers {
		// Refusals are expected once the limit is full.
		newAttacker(t).dial(ctx, vi)
	}
	await(t, ctx, trimmed, "a trim down to the low watermark")
	mustVisit(t, "after the trim", newHost(t), vi)

	st := victim.ConnManager().Stats()
	if st.Closed < peers-inboundCap {
		t.Errorf("the manager closed %d connections; want at least %d", st.Closed, peers-inboundCap)
	}
	t.Logf("trims %d, closed %d, inbound refusals %d", st.Trims, st.Closed, refusals(rm, rcmgr.KindSystem, rcmgr.ResourceConnsInbound))
}
