package p2pnet_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
)

// next returns the next event of sub, failing after a generous bound (a
// real network is involved).
func next[T any](t *testing.T, sub *event.Subscription) T {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.Out():
			if !ok {
				t.Fatal("subscription closed")
			}
			if v, ok := ev.(T); ok {
				return v
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T within 10 s", zero)
			return zero
		}
	}
}

// TestHostEmitsEvents: connectedness from the swarm, identification from
// identify, local protocols from SetStreamHandler, local addresses from
// listening.
func TestHostEmitsEvents(t *testing.T) {
	a := newHost(t)
	b := newHost(t)
	addrs, err := a.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer addrs.Close()
	if ev := next[event.EvtLocalAddressesUpdated](t, addrs); len(ev.Current) == 0 {
		t.Fatal("the stateful address event has no address")
	}
	sub, err := a.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged), new(event.EvtPeerIdentificationCompleted), new(event.EvtLocalProtocolsUpdated),
	}, event.BufSize(64))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if ev := next[event.EvtPeerConnectednessChanged](t, sub); ev.Peer != b.ID() || ev.Connectedness != network.Connected {
		t.Fatalf("connectedness event %+v", ev)
	}
	if ev := next[event.EvtPeerIdentificationCompleted](t, sub); ev.Peer != b.ID() || len(ev.Protocols) == 0 || ev.AgentVersion == "" {
		t.Fatalf("identification event %+v", ev)
	}
	a.SetStreamHandler("/test/1", func(s network.Stream) { s.Close() })
	if ev := next[event.EvtLocalProtocolsUpdated](t, sub); len(ev.Added) != 1 || ev.Added[0] != "/test/1" {
		t.Fatalf("local protocols event %+v", ev)
	}
	a.Network().ClosePeer(b.ID())
	if ev := next[event.EvtPeerConnectednessChanged](t, sub); ev.Peer != b.ID() || ev.Connectedness != network.NotConnected {
		t.Fatalf("disconnect event %+v", ev)
	}
}

func TestHostConnManagerDefaults(t *testing.T) {
	h := newHost(t)
	if low, high := h.ConnManager().Watermarks(); low != connmgr.DefaultLowWater || high != connmgr.DefaultHighWater {
		t.Fatalf("watermarks %d/%d", low, high)
	}
	h2 := newHost(t, p2pnet.NoConnectionManager())
	if h2.ConnManager() != nil {
		t.Fatal("NoConnectionManager still has a manager")
	}
	if _, err := p2pnet.New(p2pnet.ConnectionManager(10, 5)); err == nil {
		t.Fatal("low above high accepted")
	}
}

// TestHostBlockListGatesTCPAndQUIC: a blocked peer is refused at the
// dialer's peer-dial hook and at the listener's secured hook, over TCP
// and QUIC. QUIC's accept and secured hooks live in transport/quic; here
// the swarm's upgraded hook refuses it.
func TestHostBlockListGates(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			bl := connmgr.NewBlockList()
			a := newHost(t, p2pnet.ListenAddrStrings(listen), p2pnet.ConnectionGater(bl))
			b := newHost(t, p2pnet.ListenAddrStrings(listen))
			bl.BlockPeer(b.ID())
			err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
			var ge *connmgr.GatedError
			if !errors.As(err, &ge) || ge.Hook != connmgr.HookPeerDial {
				t.Fatalf("dial of a blocked peer: %v", err)
			}
			bl.UnblockPeer(b.ID())
			bl.BlockAddr(netip.MustParseAddr("127.0.0.1"))
			err = a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
			if !errors.As(err, &ge) || ge.Hook != connmgr.HookAddrDial {
				t.Fatalf("dial of a blocked address: %v", err)
			}
			// b dials a, which blocks b: refused once the handshake has
			// proved who b is (TCP: the upgrader's secured hook; QUIC:
			// the listener's). b's dial fails, or its connection closes
			// right after it (the dialer may finish its side of the
			// handshake first).
			bl.UnblockAddr(netip.MustParseAddr("127.0.0.1"))
			bl.BlockPeer(b.ID())
			closed := make(chan struct{}, 1)
			b.Network().Notify(&network.NotifyBundle{DisconnectedF: func(network.Network, network.Conn) {
				select {
				case closed <- struct{}{}:
				default:
				}
			}})
			if err := b.Connect(t.Context(), peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err == nil {
				select {
				case <-closed:
				case <-time.After(10 * time.Second): // a bound on a failure, not a wait for success
					t.Fatal("b's connection to a, which blocks b, stayed open")
				}
			}
			if n := len(a.Network().ConnsToPeer(b.ID())); n != 0 {
				t.Fatalf("%d connections of a blocked peer", n)
			}
		})
	}
}
