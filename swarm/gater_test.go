package swarm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/internal/testtransport"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// testGater refuses at the hooks a test sets, and logs every call.
type testGater struct {
	mu     sync.Mutex
	refuse map[connmgr.Hook]bool
	calls  []connmgr.Hook
}

func (g *testGater) ask(h connmgr.Hook) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, h)
	return !g.refuse[h]
}

func (g *testGater) InterceptPeerDial(peer.ID) bool               { return g.ask(connmgr.HookPeerDial) }
func (g *testGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return g.ask(connmgr.HookAddrDial) }
func (g *testGater) InterceptAccept(network.ConnMultiaddrs) bool  { return g.ask(connmgr.HookAccept) }
func (g *testGater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return g.ask(connmgr.HookSecured)
}
func (g *testGater) InterceptUpgraded(network.Conn) (bool, connmgr.DisconnectReason) {
	return g.ask(connmgr.HookUpgraded), 7
}

func gatedHook(err error) connmgr.Hook {
	var ge *connmgr.GatedError
	if !errors.As(err, &ge) {
		return ""
	}
	return ge.Hook
}

// TestGaterRefusesAtEachSwarmHook: a refusal at peer dial or address dial
// dials nothing; a refusal of the upgraded connection closes it; each is a
// GatedError naming its hook, and no connection is left on either side.
func TestGaterRefusesAtEachSwarmHook(t *testing.T) {
	for _, hook := range []connmgr.Hook{connmgr.HookPeerDial, connmgr.HookAddrDial, connmgr.HookUpgraded} {
		t.Run(string(hook), func(t *testing.T) {
			tn := testtransport.NewNetwork()
			g := &testGater{refuse: map[connmgr.Hook]bool{hook: true}}
			a := newNode(t, tn, WithConnectionGater(g))
			b := newNode(t, tn)
			addr := b.listen(t)
			a.learn(b.id, addr)
			_, err := a.s.DialPeer(t.Context(), b.id)
			if !errors.Is(err, connmgr.ErrGated) || gatedHook(err) != hook {
				t.Fatalf("DialPeer: %v, want a GatedError by %s", err, hook)
			}
			wantDials := 0
			if hook == connmgr.HookUpgraded {
				wantDials = 1
			}
			if n := a.tpt.Dials(addr); n != wantDials {
				t.Errorf("%d dials, want %d", n, wantDials)
			}
			if n := len(a.s.Conns()); n != 0 {
				t.Errorf("%d connections left on the dialer", n)
			}
		})
	}
}

// TestGaterRefusesInboundUpgraded: the listener's gater closes an inbound
// connection before the swarm adds it.
func TestGaterRefusesInboundUpgraded(t *testing.T) {
	tn := testtransport.NewNetwork()
	g := &testGater{refuse: map[connmgr.Hook]bool{connmgr.HookUpgraded: true}}
	a := newNode(t, tn)
	b := newNode(t, tn, WithConnectionGater(g))
	connected := make(chan struct{}, 1)
	b.s.Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { connected <- struct{}{} }})
	a.learn(b.id, b.listen(t))
	gone := make(chan struct{}, 1)
	a.s.Notify(&network.NotifyBundle{DisconnectedF: func(network.Network, network.Conn) {
		select {
		case gone <- struct{}{}:
		default:
		}
	}})
	if c, err := a.s.DialPeer(t.Context(), b.id); err == nil {
		// The dialer may see the connection before it learns of the
		// close (opening a stream is local until it is used): it must
		// learn of it, and then the connection is not usable.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		select {
		case <-gone:
		case <-ctx.Done():
			t.Fatal("the dialer kept a connection the listener's gater refused")
		}
		if _, err := c.NewStream(t.Context()); err == nil {
			t.Fatal("a stream opened on a connection the listener's gater refused")
		}
	}
	select {
	case <-connected:
		t.Fatal("the listener fired Connected for a refused connection")
	default:
	}
	if n := len(b.s.Conns()); n != 0 {
		t.Errorf("%d connections on the listener", n)
	}
}
