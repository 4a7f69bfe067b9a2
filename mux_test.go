package p2pnet_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// echoOnce sends a byte on s, reads it back and closes s.
func echoOnce(t *testing.T, s network.Stream) {
	t.Helper()
	defer s.Close()
	if _, err := s.Write([]byte("m")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Fatalf("echo over %s: %v", s.Protocol(), err)
	}
}

// TestMuxAddsAndRemovesHandlers: handlers added and removed through
// Host.Mux serve streams, show in Protocols, are emitted locally as
// EvtLocalProtocolsUpdated and reach a connected peer by identify push
// (EvtPeerProtocolsUpdated on its bus), as SetStreamHandler's do.
func TestMuxAddsAndRemovesHandlers(t *testing.T) {
	a, b := newHost(t), newHost(t)
	mux := b.Mux()
	local, err := b.EventBus().Subscribe(new(event.EvtLocalProtocolsUpdated), event.BufSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote, err := a.EventBus().Subscribe(new(event.EvtPeerProtocolsUpdated), event.BufSize(16))
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	c := connect(t, a, b)
	<-a.Identify().IdentifyWait(c)

	// awaitFromB returns the first update about b that names p (added, or
	// removed), skipping others: the first identification's, say.
	awaitFromB := func(p protocol.ID, removed bool) event.EvtPeerProtocolsUpdated {
		t.Helper()
		for {
			ev := next[event.EvtPeerProtocolsUpdated](t, remote)
			list := ev.Added
			if removed {
				list = ev.Removed
			}
			if ev.Peer == b.ID() && slices.Contains(list, p) {
				return ev
			}
		}
	}

	const exact protocol.ID = "/mux-test/exact/1.0.0"
	mux.AddHandler(exact, echo)
	if ev := next[event.EvtLocalProtocolsUpdated](t, local); !slices.Equal(ev.Added, []protocol.ID{exact}) || len(ev.Removed) != 0 {
		t.Fatalf("local event after AddHandler: %+v", ev)
	}
	awaitFromB(exact, false)
	s, err := a.NewStream(t.Context(), b.ID(), exact)
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, s)

	const family protocol.ID = "/mux-test/family"
	mux.AddHandlerWithFunc(family, func(p protocol.ID) bool { return strings.HasPrefix(string(p), string(family)+"/") }, echo)
	if ev := next[event.EvtLocalProtocolsUpdated](t, local); !slices.Equal(ev.Added, []protocol.ID{family}) {
		t.Fatalf("local event after AddHandlerWithFunc: %+v", ev)
	}
	awaitFromB(family, false)
	s, err = a.NewStream(t.Context(), b.ID(), family+"/2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Protocol() != family+"/2.0.0" {
		t.Errorf("matched stream's protocol = %q", s.Protocol())
	}
	echoOnce(t, s)

	got := mux.Protocols()
	if !slices.Contains(got, exact) || !slices.Contains(got, family) || !slices.IsSorted(got) {
		t.Errorf("Protocols = %v; want both registrations, sorted", got)
	}
	if !slices.Equal(got, b.Protocols()) {
		t.Errorf("Mux().Protocols() = %v, Host.Protocols() = %v", got, b.Protocols())
	}

	mux.RemoveHandler(exact)
	if ev := next[event.EvtLocalProtocolsUpdated](t, local); !slices.Equal(ev.Removed, []protocol.ID{exact}) || len(ev.Added) != 0 {
		t.Fatalf("local event after RemoveHandler: %+v", ev)
	}
	// Once a has heard of the removal, NewStream fails before it sends.
	// (a's peerstore also learnt family+"/2.0.0" by negotiating it, and
	// the push, which names registrations, replaces it.)
	if ev := awaitFromB(exact, true); slices.Contains(ev.Removed, family) {
		t.Fatalf("a's event after b's RemoveHandler: %+v", ev)
	}
	if slices.Contains(mux.Protocols(), exact) {
		t.Errorf("Protocols = %v after RemoveHandler", mux.Protocols())
	}
	s, err = a.NewStream(t.Context(), b.ID(), exact)
	if err == nil {
		s.Write([]byte("m"))
		_, err = s.Read(make([]byte, 1))
		s.Close()
	}
	if !errors.Is(err, multistream.ErrNotSupported) {
		t.Errorf("removed handler still answers: %v", err)
	}
	// Removing what is not registered changes nothing.
	mux.RemoveHandler("/mux-test/never")
	if !slices.Equal(mux.Protocols(), b.Protocols()) || !slices.Contains(mux.Protocols(), family) {
		t.Errorf("Protocols = %v after removing an unknown protocol", mux.Protocols())
	}
}

// TestMuxPanicsOnNilHandler: like SetStreamHandler, the Mux refuses a
// nil handler or match function at once.
func TestMuxPanicsOnNilHandler(t *testing.T) {
	h := newHost(t)
	for name, f := range map[string]func(){
		"AddHandler":                   func() { h.Mux().AddHandler("/x", nil) },
		"AddHandlerWithFunc nil match": func() { h.Mux().AddHandlerWithFunc("/x", nil, echo) },
		"AddHandlerWithFunc nil handler": func() {
			h.Mux().AddHandlerWithFunc("/x", func(protocol.ID) bool { return true }, nil)
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
	if slices.Contains(h.Protocols(), "/x") {
		t.Error("a refused handler was registered")
	}
}
