package compat_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pnet/p2pnet/compat/internal/mixnet"
)

// TestConnect: a connects to b; both see each other as connected over
// one connection whose ends name the right peers and key; connecting
// again reuses it.
func TestConnect(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		bsub := subscribe(t, b, new(event.EvtPeerConnectednessChanged))
		connect(t, ctx, a, b)
		if c := a.Network().Connectedness(b.ID()); c != network.Connected {
			t.Fatalf("a's connectedness to b: %v", c)
		}
		next(t, ctx, bsub, func(e event.EvtPeerConnectednessChanged) bool {
			return e.Peer == a.ID() && e.Connectedness == network.Connected
		})
		conns := a.Network().ConnsToPeer(b.ID())
		if len(conns) != 1 {
			t.Fatalf("%d connections to b", len(conns))
		}
		c := conns[0]
		if c.LocalPeer() != a.ID() || c.RemotePeer() != b.ID() {
			t.Errorf("conn peers %v -> %v", c.LocalPeer(), c.RemotePeer())
		}
		if !c.RemotePublicKey().Equals(b.Peerstore().PubKey(b.ID())) {
			t.Error("conn's remote key is not b's")
		}
		if c.Stat().Direction != network.DirOutbound {
			t.Errorf("direction %v", c.Stat().Direction)
		}
		if c.ConnState().Security == "" || c.ConnState().StreamMultiplexer == "" {
			t.Errorf("conn state %+v", c.ConnState())
		}
		if !slices.Contains(a.Network().Peers(), b.ID()) {
			t.Error("b not among a's peers")
		}
		if !slices.Contains(a.Network().Conns(), c) {
			t.Error("Conns lacks the connection ConnsToPeer returned")
		}
		connect(t, ctx, a, b)
		if n := len(a.Network().ConnsToPeer(b.ID())); n != 1 {
			t.Errorf("%d connections after connecting again", n)
		}
	})
}

// TestStreamHandlers: a stream to a served protocol reaches its handler
// with the protocol negotiated on both ends; once the handler is
// removed, a stream for it fails.
func TestStreamHandlers(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		const pid = "/echo/1.0.0"
		seen := make(chan network.Stream, 1)
		b.SetStreamHandler(pid, func(s network.Stream) {
			seen <- s
			echo(s)
		})
		connect(t, ctx, a, b)
		s, err := a.NewStream(ctx, b.ID(), pid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := roundTrip(s, "hello")
		if err != nil || got != "hello" {
			t.Fatalf("echo: %q, %v", got, err)
		}
		s.Close()
		if s.Protocol() != pid {
			t.Errorf("dialer's stream protocol %q", s.Protocol())
		}
		in := <-seen
		if in.Protocol() != pid || in.Conn().RemotePeer() != a.ID() || in.Stat().Direction != network.DirInbound {
			t.Errorf("handler's stream: protocol %q, remote %v, direction %v", in.Protocol(), in.Conn().RemotePeer(), in.Stat().Direction)
		}

		b.RemoveStreamHandler(pid)
		s, err = a.NewStream(ctx, b.ID(), pid)
		if err == nil {
			_, err = roundTrip(s, "again")
			s.Reset()
		}
		if err == nil {
			t.Fatal("stream to a removed handler worked")
		}
	})
}

// TestProtocolNegotiation: with several protocols, the dialer gets the
// first of its list that the listener serves, and match handlers serve
// the protocols they accept.
func TestProtocolNegotiation(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		for _, p := range []protocol.ID{"/p/1.0.0", "/p/2.0.0"} {
			b.SetStreamHandler(p, echo)
		}
		b.SetStreamHandlerMatch("/m", func(p protocol.ID) bool { return len(p) > 3 && p[:3] == "/m/" }, echo)
		connect(t, ctx, a, b)
		for _, c := range []struct {
			offer []protocol.ID
			want  protocol.ID
		}{
			{[]protocol.ID{"/p/3.0.0", "/p/2.0.0", "/p/1.0.0"}, "/p/2.0.0"},
			{[]protocol.ID{"/p/1.0.0", "/p/2.0.0"}, "/p/1.0.0"},
			{[]protocol.ID{"/x/1.0.0", "/m/anything"}, "/m/anything"},
			{[]protocol.ID{"/m/one"}, "/m/one"},
		} {
			s, err := a.NewStream(ctx, b.ID(), c.offer...)
			if err != nil {
				t.Fatalf("NewStream(%v): %v", c.offer, err)
			}
			if got, err := roundTrip(s, "x"); err != nil || got != "x" {
				t.Fatalf("NewStream(%v): echo %q, %v", c.offer, got, err)
			}
			if s.Protocol() != c.want {
				t.Errorf("NewStream(%v) negotiated %q, want %q", c.offer, s.Protocol(), c.want)
			}
			s.Close()
		}
		if _, err := a.NewStream(ctx, b.ID(), "/x/1.0.0", "/y/1.0.0"); err == nil {
			t.Error("NewStream for protocols b does not serve worked")
		}
	})
}

// TestNotifications: a Notifiee registered on the network hears of
// connections opening and closing and of new listen addresses, with the
// network and connections it knows; StopNotify stops it.
func TestNotifications(t *testing.T) {
	kinds(t, func(t *testing.T, k mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, k), newHost(t, mixnet.Libp2p)
		connected, disconnected := make(chan network.Conn, 4), make(chan network.Conn, 4)
		listened := make(chan ma.Multiaddr, 4)
		var netw network.Network
		nb := &network.NotifyBundle{
			ConnectedF:    func(n network.Network, c network.Conn) { netw = n; connected <- c },
			DisconnectedF: func(_ network.Network, c network.Conn) { disconnected <- c },
			ListenF:       func(_ network.Network, a ma.Multiaddr) { listened <- a },
		}
		a.Network().Notify(nb)
		connect(t, ctx, a, b)
		c := recv(t, connected)
		if netw != a.Network() {
			t.Error("notified with another network")
		}
		if c.RemotePeer() != b.ID() || !slices.Contains(a.Network().ConnsToPeer(b.ID()), c) {
			t.Errorf("Connected with %v", c)
		}
		if err := a.Network().ClosePeer(b.ID()); err != nil {
			t.Fatal(err)
		}
		if d := recv(t, disconnected); d != c {
			t.Errorf("Disconnected with %v, want %v", d, c)
		}
		if err := a.Network().Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); err != nil {
			t.Fatal(err)
		}
		if l := recv(t, listened); !slices.ContainsFunc(a.Network().ListenAddresses(), func(x ma.Multiaddr) bool {
			_, err := x.ValueForProtocol(ma.P_TCP)
			return err == nil && x.Equal(l)
		}) {
			t.Errorf("Listen with %v, not among %v", l, a.Network().ListenAddresses())
		}
		a.Network().StopNotify(nb)
		connect(t, ctx, a, b)
		select {
		case c := <-connected:
			t.Errorf("Connected after StopNotify: %v", c)
		default:
		}
	})
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		var zero T
		t.Fatalf("no %T within 20 s", zero)
		return zero
	}
}

// TestPeerstoreAfterIdentify: once a has identified b, a's peerstore
// holds b's protocols, key, addresses and agent, and the event names the
// connection the network knows.
func TestPeerstoreAfterIdentify(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		b.SetStreamHandler("/served/1.0.0", echo)
		ev := identified(t, ctx, a, b)
		if !slices.Contains(ev.Protocols, "/served/1.0.0") {
			t.Errorf("event protocols %v", ev.Protocols)
		}
		if ev.Conn == nil || !slices.Contains(a.Network().ConnsToPeer(b.ID()), ev.Conn) {
			t.Errorf("event conn %v is not a's connection to b", ev.Conn)
		}
		if len(ev.ListenAddrs) == 0 || ev.AgentVersion == "" {
			t.Errorf("event %+v", ev)
		}
		ps := a.Peerstore()
		protos, err := ps.GetProtocols(b.ID())
		if err != nil || !slices.Contains(protos, "/served/1.0.0") {
			t.Errorf("GetProtocols: %v, %v", protos, err)
		}
		if ok, _ := ps.SupportsProtocols(b.ID(), "/nope/1", "/served/1.0.0"); !slices.Equal(ok, []protocol.ID{"/served/1.0.0"}) {
			t.Errorf("SupportsProtocols: %v", ok)
		}
		if p, _ := ps.FirstSupportedProtocol(b.ID(), "/nope/1", "/served/1.0.0"); p != "/served/1.0.0" {
			t.Errorf("FirstSupportedProtocol: %q", p)
		}
		if k := ps.PubKey(b.ID()); k == nil || !k.Equals(b.Peerstore().PubKey(b.ID())) {
			t.Error("b's key is not in a's peerstore")
		}
		if av, err := ps.Get(b.ID(), "AgentVersion"); err != nil || av == "" {
			t.Errorf("AgentVersion: %v, %v", av, err)
		}
		if pv, err := ps.Get(b.ID(), "ProtocolVersion"); err != nil || pv == nil {
			t.Errorf("ProtocolVersion: %v, %v", pv, err)
		}
		if _, err := ps.Get(b.ID(), "no-such-key"); !errors.Is(err, peerstore.ErrNotFound) {
			t.Errorf("Get of a missing key: %v, want peerstore.ErrNotFound", err)
		}
		if err := ps.Put(b.ID(), "mine", 42); err != nil {
			t.Fatal(err)
		}
		if v, err := ps.Get(b.ID(), "mine"); err != nil || v != 42 {
			t.Errorf("metadata: %v, %v", v, err)
		}
		addrs := ps.Addrs(b.ID())
		for _, want := range b.Addrs() {
			if !slices.ContainsFunc(addrs, want.Equal) {
				t.Errorf("a's peerstore lacks b's address %v (has %v)", want, addrs)
			}
		}
		if pi := ps.PeerInfo(b.ID()); pi.ID != b.ID() || len(pi.Addrs) == 0 {
			t.Errorf("PeerInfo %v", pi)
		}
		if !slices.Contains(ps.Peers(), b.ID()) || !slices.Contains(ps.PeersWithAddrs(), b.ID()) || !slices.Contains(ps.PeersWithKeys(), b.ID()) {
			t.Error("b missing from the peer lists")
		}
		ps.RecordLatency(b.ID(), 10*time.Millisecond)
		if l := ps.LatencyEWMA(b.ID()); l <= 0 {
			t.Errorf("LatencyEWMA %v", l)
		}
		if a.Peerstore().PrivKey(a.ID()) == nil || !a.Peerstore().PrivKey(a.ID()).GetPublic().Equals(a.Peerstore().PubKey(a.ID())) {
			t.Error("own key pair not in the peerstore")
		}
	})
}

// TestEvents: the host's events arrive as go-libp2p's types: protocols
// added locally, protocols a connected peer adds (identify push),
// connectedness going down, and the current local addresses at once.
func TestEvents(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		local := subscribe(t, a, new(event.EvtLocalProtocolsUpdated))
		a.SetStreamHandler("/local/1.0.0", echo)
		next(t, ctx, local, func(e event.EvtLocalProtocolsUpdated) bool { return slices.Contains(e.Added, "/local/1.0.0") })

		addrs := subscribe(t, a, new(event.EvtLocalAddressesUpdated))
		ev := next(t, ctx, addrs, func(event.EvtLocalAddressesUpdated) bool { return true })
		if len(ev.Current) == 0 {
			t.Error("no current addresses")
		}

		identified(t, ctx, a, b)
		sub := subscribe(t, a, []any{new(event.EvtPeerProtocolsUpdated), new(event.EvtPeerConnectednessChanged)})
		b.SetStreamHandler("/late/1.0.0", echo)
		next(t, ctx, sub, func(e event.EvtPeerProtocolsUpdated) bool {
			return e.Peer == b.ID() && slices.Contains(e.Added, "/late/1.0.0")
		})
		a.Network().ClosePeer(b.ID())
		next(t, ctx, sub, func(e event.EvtPeerConnectednessChanged) bool {
			return e.Peer == b.ID() && e.Connectedness == network.NotConnected
		})
	})
}

// TestStreamReset: a stream reset by the remote side fails with an error
// matching network.ErrReset; reset with a code, it is a
// *network.StreamError carrying the code.
func TestStreamReset(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		b.SetStreamHandler("/reset/1.0.0", func(s network.Stream) { s.Read(make([]byte, 1)); s.Reset() })
		b.SetStreamHandler("/code/1.0.0", func(s network.Stream) { s.Read(make([]byte, 1)); s.ResetWithError(0x42) })
		connect(t, ctx, a, b)
		for _, c := range []struct {
			pid  protocol.ID
			code network.StreamErrorCode
		}{{"/reset/1.0.0", 0}, {"/code/1.0.0", 0x42}} {
			s, err := a.NewStream(ctx, b.ID(), c.pid)
			if err != nil {
				t.Fatal(err)
			}
			s.SetDeadline(time.Now().Add(20 * time.Second))
			_, err = roundTrip(s, "x")
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("%s: %v, want network.ErrReset", c.pid, err)
			}
			var se *network.StreamError
			if c.code != 0 && (!errors.As(err, &se) || se.ErrorCode != c.code || !se.Remote) {
				t.Errorf("%s: %#v, want a remote StreamError with code %#x", c.pid, err, c.code)
			}
			s.Reset()
		}
	})
}

// TestMux: the host's protocol.Switch lists the protocols served and
// adds handlers that get the stream as a network.Stream.
func TestMux(t *testing.T) {
	kinds(t, func(t *testing.T, k mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, mixnet.Libp2p), newHost(t, k)
		got := make(chan protocol.ID, 1)
		b.Mux().AddHandler("/mux/1.0.0", func(p protocol.ID, rwc ioRWC) error {
			if _, ok := rwc.(network.Stream); !ok {
				t.Errorf("handler got %T", rwc)
			}
			got <- p
			return rwc.Close()
		})
		if !slices.Contains(b.Mux().Protocols(), "/mux/1.0.0") {
			t.Errorf("Protocols %v", b.Mux().Protocols())
		}
		connect(t, ctx, a, b)
		s, err := a.NewStream(ctx, b.ID(), "/mux/1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("x"))
		if p := recv(t, got); p != "/mux/1.0.0" {
			t.Errorf("handler got protocol %q", p)
		}
		s.Close()
		b.Mux().RemoveHandler("/mux/1.0.0")
		if slices.Contains(b.Mux().Protocols(), "/mux/1.0.0") {
			t.Error("removed handler still listed")
		}
	})
}

var _ host.Host = nil

// TestProtoDowngrade (go-libp2p's TestProtoDowngrade): once the listener
// stops serving its newer protocol, identify push tells the dialer, and
// a stream offering newer then older gets the older one.
func TestProtoDowngrade(t *testing.T) {
	pairs(t, func(t *testing.T, ka, kb mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, ka), newHost(t, kb)
		b.SetStreamHandler("/proto/2.0.0", echo)
		b.SetStreamHandler("/proto/1.0.0", echo)
		identified(t, ctx, a, b)
		s, err := a.NewStream(ctx, b.ID(), "/proto/2.0.0", "/proto/1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if s.Protocol() != "/proto/2.0.0" {
			t.Errorf("negotiated %q before the downgrade", s.Protocol())
		}
		s.Close()
		sub := subscribe(t, a, new(event.EvtPeerProtocolsUpdated))
		b.RemoveStreamHandler("/proto/2.0.0")
		next(t, ctx, sub, func(e event.EvtPeerProtocolsUpdated) bool {
			return e.Peer == b.ID() && slices.Contains(e.Removed, "/proto/2.0.0")
		})
		s, err = a.NewStream(ctx, b.ID(), "/proto/2.0.0", "/proto/1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := roundTrip(s, "x"); err != nil || got != "x" {
			t.Fatalf("echo %q, %v", got, err)
		}
		if s.Protocol() != "/proto/1.0.0" {
			t.Errorf("negotiated %q after the downgrade", s.Protocol())
		}
		s.Close()
	})
}

// TestConnectWaitsForIdentify: as with go-libp2p's host, once Connect
// returns, the peerstore holds the peer's protocols.
func TestConnectWaitsForIdentify(t *testing.T) {
	kinds(t, func(t *testing.T, k mixnet.Kind) {
		ctx := testCtx(t)
		a, b := newHost(t, k), newHost(t, mixnet.Libp2p)
		b.SetStreamHandler("/known/1.0.0", echo)
		connect(t, ctx, a, b)
		if ok, err := a.Peerstore().SupportsProtocols(b.ID(), "/known/1.0.0"); err != nil || len(ok) != 1 {
			t.Errorf("after Connect, b's protocols unknown: %v, %v", ok, err)
		}
		if _, err := a.Peerstore().Get(b.ID(), "AgentVersion"); err != nil {
			t.Errorf("after Connect, b's agent unknown: %v", err)
		}
	})
}
