package flood

import (
	"context"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"
)

// connWatch relays the victim's connection events for one peer.
type connWatch struct {
	connected, disconnected chan network.Conn
}

func watchConns(n network.Network, p peer.ID, capacity int) *connWatch {
	w := &connWatch{
		connected:    make(chan network.Conn, capacity),
		disconnected: make(chan network.Conn, capacity),
	}
	n.Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() == p {
				w.connected <- c
			}
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			if c.RemotePeer() == p {
				w.disconnected <- c
			}
		},
	})
	return w
}

// requestOn makes one request to holdServer over one of the attacker's
// connections: it proves the victim serves the connection.
func requestOn(ctx context.Context, c *attackConn) error {
	s, err := c.stream(ctx, holdProto)
	if err != nil {
		return err
	}
	defer s.Close()
	return holdRequest(s)
}

// TestConnFlood dials 32 connections at once from one peer to a victim
// that lets a peer hold 4. The victim keeps 4, refuses the others once
// their handshake names the peer (the resource manager's peer scope), and
// serves a well-behaved peer throughout; once the attacker lets go, it
// may connect again.
func TestConnFlood(t *testing.T) {
	const (
		limit = 4  // connections a peer may hold
		flood = 32 // connections the attacker dials at once
	)
	rm := newManager(t, func(l *rcmgr.Limits) {
		l.PeerDefault.Conns = limit
		l.PeerDefault.ConnsInbound = limit
	})
	// The attacker dials from 127.0.0.1 like the good peer; this test is
	// about the peer scope, so the handshake slots of one address (8 by
	// default) must not refuse its connections first.
	victim := newHost(t, p2pnet.ResourceManager(rm), p2pnet.InboundHandshakesPerAddress(2*flood))
	victim.SetStreamHandler(holdProto, newHoldServer(flood).handle)
	vi := info(victim)
	good := newHost(t)
	atk := newAttacker(t)
	watch := watchConns(victim.Network(), atk.id, flood+1)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	base := liveHeap()

	during := goVisit(good, vi)
	type dialed struct {
		c   *attackConn
		err error
	}
	dials := make(chan dialed, flood)
	for range flood {
		go func() {
			c, err := atk.dial(ctx, vi)
			dials <- dialed{c, err}
		}()
	}
	var conns []*attackConn
	for range flood {
		d := <-dials
		if d.err != nil {
			t.Errorf("dialing the victim: %v", d.err)
			continue
		}
		conns = append(conns, d.c)
	}
	if len(conns) != flood {
		t.FailNow()
	}

	// The victim keeps limit connections and drops the others.
	drops := make(chan *attackConn, flood)
	var watchers sync.WaitGroup
	defer watchers.Wait()
	defer atk.close()
	for _, c := range conns {
		watchers.Go(func() {
			<-c.dropped
			drops <- c
		})
	}
	dropped := map[*attackConn]bool{}
	for range flood - limit {
		select {
		case c := <-drops:
			dropped[c] = true
		case <-ctx.Done():
			t.Fatalf("the victim dropped %d connections; want %d", len(dropped), flood-limit)
		}
	}
	for range limit {
		await(t, ctx, watch.connected, "the victim to report the connections it kept")
	}
	var kept []*attackConn
	for _, c := range conns {
		if !dropped[c] {
			kept = append(kept, c)
		}
	}

	// The peak.
	n := refusals(rm, rcmgr.KindPeer, rcmgr.ResourceConnsInbound)
	t.Logf("%d connections: %d kept, %d refused; refusals by the peer scope: %d", flood, len(kept), len(dropped), n)
	if n != flood-limit {
		t.Errorf("the peer scope counted %d refusals of inbound connections; want %d", n, flood-limit)
	}
	if got := len(victim.Network().ConnsToPeer(atk.id)); got != limit {
		t.Errorf("the victim has %d connections to the attacker; want %d", got, limit)
	}
	if st := peerStat(t, rm, atk.id); st.NumConnsInbound != limit {
		t.Errorf("the attacker's peer scope holds %d inbound connections; want %d", st.NumConnsInbound, limit)
	}
	for _, c := range kept {
		if err := requestOn(ctx, c); err != nil {
			t.Errorf("a connection the victim kept does not work: %v", err)
		}
	}
	checkLimits(t, rm)
	checkHeap(t, "at the peak of the flood", base, heapSlack)
	checkVisit(t, "as the flood began", <-during)
	mustVisit(t, "at the peak of the flood", good, vi)

	// The attacker lets go; the victim forgets its connections.
	for _, c := range kept {
		c.Close()
	}
	for range limit {
		await(t, ctx, watch.disconnected, "the victim to notice the attacker's connections closing")
	}
	if st := peerStat(t, rm, atk.id); st.NumConnsInbound != 0 || st.NumFD != 0 {
		t.Errorf("after the flood the attacker's peer scope holds %+v; want nothing", st)
	}

	// The limit is a limit, not a ban: the attacker may connect again.
	c, err := atk.dial(ctx, vi)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-watch.connected:
	case <-c.dropped:
		t.Fatal("the victim refused a connection after the flood")
	}
	if err := requestOn(ctx, c); err != nil {
		t.Errorf("the attacker's connection after the flood does not work: %v", err)
	}

	mustVisit(t, "after the flood", good, vi)
	checkHeap(t, "after the flood", base, heapSlack)
	checkLimits(t, rm)

	atk.close()
	victim.Close()
	checkReleased(t, rm)
}
