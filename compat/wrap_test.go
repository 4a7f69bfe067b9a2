package compat_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"

	p2pnet "github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/compat"
	"github.com/p2pnet/p2pnet/compat/internal/mixnet"
	pnetwork "github.com/p2pnet/p2pnet/network"
)

func newWrapped(t *testing.T, opts ...p2pnet.Option) *compat.Host {
	t.Helper()
	h, err := p2pnet.New(append([]p2pnet.Option{p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.DisableAutoNAT()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := compat.Wrap(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// TestWrapIsTheHost: the wrapper is a view of the p2pnet host, not a
// copy: its ID, addresses, peerstore and handlers are the host's, and
// closing it closes the host.
func TestWrapIsTheHost(t *testing.T) {
	if _, err := compat.Wrap(nil); err == nil {
		t.Error("Wrap(nil) worked")
	}
	ctx := testCtx(t)
	w := newWrapped(t)
	h := w.P2PNet()
	if string(w.ID()) != string(h.ID()) || len(w.Addrs()) != len(h.Addrs()) {
		t.Errorf("ID or addresses differ")
	}
	w.SetStreamHandler("/via-wrapper/1.0.0", echo)
	found := false
	for _, p := range h.Protocols() {
		found = found || p == "/via-wrapper/1.0.0"
	}
	if !found {
		t.Error("handler set on the wrapper is not the host's")
	}
	w.Peerstore().Put(w.ID(), "k", "v")
	if v, _ := h.Peerstore().Get(h.ID(), "k"); v != "v" {
		t.Error("peerstore is not the host's")
	}
	other := newHost(t, mixnet.Libp2p)
	connect(t, ctx, other, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	other.Network().ClosePeer(w.ID())
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := other.Connect(dctx, info(w)); err == nil {
		t.Error("connected to a closed host")
	}
}

// TestConnManager: tags, protection and decaying tags act on p2pnet's
// connection manager.
func TestConnManager(t *testing.T) {
	w := newWrapped(t, p2pnet.ConnectionManager(10, 20))
	cm := w.ConnManager()
	p := newHost(t, mixnet.Libp2p).ID()
	cm.TagPeer(p, "a", 5)
	cm.UpsertTag(p, "a", func(v int) int { return v + 2 })
	cm.TagPeer(p, "b", 1)
	ti := cm.GetTagInfo(p)
	if ti == nil || ti.Value != 8 || ti.Tags["a"] != 7 {
		t.Fatalf("tag info %+v", ti)
	}
	if pti := w.P2PNet().ConnManager().GetTagInfo(compat.P2PNetPeerID(p)); pti == nil || pti.Value != 8 {
		t.Errorf("p2pnet's manager does not see the tags: %+v", pti)
	}
	cm.UntagPeer(p, "b")
	cm.Protect(p, "keep")
	if !cm.IsProtected(p, "keep") || !cm.IsProtected(p, "") {
		t.Error("not protected")
	}
	if !cm.Unprotect(p, "other") {
		t.Error("unprotecting another tag lifted the protection")
	}
	if cm.Unprotect(p, "keep") {
		t.Error("still protected after the last tag was removed")
	}
	d, ok := lconnmgr.SupportsDecay(cm)
	if !ok {
		t.Fatal("no decayer")
	}
	tag, err := d.RegisterDecayingTag("decay", time.Minute, lconnmgr.DecayNone(), lconnmgr.BumpSumUnbounded())
	if err != nil {
		t.Fatal(err)
	}
	if err := tag.Bump(p, 3); err != nil {
		t.Fatal(err)
	}
	if v := cm.GetTagInfo(p).Tags["decay"]; v != 3 {
		t.Errorf("decaying tag's value %d after a bump of 3", v)
	}
	tag.Close()
	if err := cm.CheckLimit(limit(5)); err == nil {
		t.Error("CheckLimit under the high watermark passed")
	}
	if err := cm.CheckLimit(limit(100)); err != nil {
		t.Error(err)
	}
	if _, ok := newWrapped(t, p2pnet.NoConnectionManager()).ConnManager().(*lconnmgr.NullConnMgr); !ok {
		t.Error("no NullConnMgr without a connection manager")
	}
}

type limit int

func (l limit) GetConnLimit() int { return int(l) }

// TestResourceManagerView: the network's resource manager is p2pnet's,
// and stream scopes are views of p2pnet's.
func TestResourceManagerView(t *testing.T) {
	ctx := testCtx(t)
	w, b := newWrapped(t), newHost(t, mixnet.Libp2p)
	b.SetStreamHandler("/echo/1.0.0", echo)
	connect(t, ctx, w, b)
	rm := w.Network().ResourceManager()
	var conns int
	if err := rm.ViewSystem(func(s network.ResourceScope) error {
		conns = s.Stat().NumConnsOutbound
		return nil
	}); err != nil || conns == 0 {
		t.Errorf("system scope: %d outbound connections, %v", conns, err)
	}
	if err := rm.ViewPeer(b.ID(), func(s network.PeerScope) error {
		if s.Peer() != b.ID() {
			t.Errorf("peer scope of %v", s.Peer())
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	s, err := w.NewStream(ctx, b.ID(), "/echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Scope().ReserveMemory(1024, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	if s.Scope().Stat().Memory < 1024 {
		t.Errorf("stream scope memory %d", s.Scope().Stat().Memory)
	}
	s.Scope().ReleaseMemory(1024)
}

// TestUnsupported: what p2pnet cannot do fails loudly.
func TestUnsupported(t *testing.T) {
	ctx := testCtx(t)
	w, b := newWrapped(t), newHost(t, mixnet.Libp2p)
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "Host.SetStreamHandler") {
				t.Errorf("Network().SetStreamHandler: recovered %v", r)
			}
		}()
		w.Network().SetStreamHandler(func(network.Stream) {})
	}()
	if _, _, err := w.Mux().Negotiate(nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Negotiate: %v", err)
	}
	if err := w.Mux().Handle(nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Handle: %v", err)
	}
	if _, err := w.EventBus().Subscribe(event.WildcardSubscription); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("wildcard subscription: %v", err)
	}
	if _, err := w.EventBus().Emitter(new(event.EvtPeerConnectednessChanged)); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("emitter of a host event: %v", err)
	}
	connect(t, ctx, w, b)
	c := w.Network().ConnsToPeer(b.ID())[0]
	if err := c.CloseWithError(network.ConnGarbageCollected); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWithError: %v", err)
	}
	if !c.IsClosed() {
		t.Error("CloseWithError left the connection open")
	}
}

type customEvt struct{ N int }

// TestCustomEvents: a library's own event types travel on the host's
// bus, statefully when asked.
func TestCustomEvents(t *testing.T) {
	ctx := testCtx(t)
	w := newWrapped(t)
	em, err := w.EventBus().Emitter(new(customEvt), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	if err := em.Emit(customEvt{N: 1}); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, w, new(customEvt))
	if ev := next(t, ctx, sub, func(customEvt) bool { return true }); ev.N != 1 {
		t.Errorf("stateful event %v", ev)
	}
	em.Emit(customEvt{N: 2})
	if ev := next(t, ctx, sub, func(customEvt) bool { return true }); ev.N != 2 {
		t.Errorf("event %v", ev)
	}
	if len(w.EventBus().GetAllEventTypes()) == 0 {
		t.Error("no event types")
	}
}

// TestContextOptions: go-libp2p's network context options reach p2pnet:
// with WithNoDial, NewStream to a peer it is not connected to fails at
// once with network.ErrNoConn instead of dialing.
func TestContextOptions(t *testing.T) {
	ctx := testCtx(t)
	w, b := newWrapped(t), newHost(t, mixnet.Libp2p)
	b.SetStreamHandler("/echo/1.0.0", echo)
	w.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Minute)
	_, err := w.NewStream(network.WithNoDial(ctx, "test"), b.ID(), "/echo/1.0.0")
	if !errors.Is(err, network.ErrNoConn) {
		t.Errorf("NewStream with WithNoDial: %v, want network.ErrNoConn", err)
	}
	if w.Network().Connectedness(b.ID()) == network.Connected {
		t.Error("WithNoDial dialed")
	}
	pctx := compat.P2PNetContext(network.WithDialPeerTimeout(network.WithAllowLimitedConn(ctx, "x"), time.Second))
	if d := pnetwork.GetDialPeerTimeout(pctx); d != time.Second {
		t.Errorf("dial-peer timeout %v", d)
	}
	if ok, _ := pnetwork.GetAllowLimitedConn(pctx); !ok {
		t.Error("limited connections not allowed")
	}
	s, err := w.NewStream(ctx, b.ID(), "/echo/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
