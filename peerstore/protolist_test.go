package peerstore

import (
	"slices"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

func TestProtoListRoundTrip(t *testing.T) {
	for _, ids := range [][]protocol.ID{
		nil,
		{""},
		{"/a/1", "", "/b/2"},
		{protocol.ID(strings.Repeat("x", 127)), protocol.ID(strings.Repeat("y", 128)), protocol.ID(strings.Repeat("z", MaxProtocolLen))},
	} {
		l := makeProtoList(ids)
		if got := l.ids(); !slices.Equal(got, ids) {
			t.Errorf("%q: decoded as %q", ids, got)
		}
		if l.empty() != (len(ids) == 0) {
			t.Errorf("%q: empty() = %v", ids, l.empty())
		}
		for _, id := range ids {
			if !l.contains(id) {
				t.Errorf("%q: does not contain %q", ids, id)
			}
		}
		if l.contains("/absent") {
			t.Errorf("%q: contains /absent", ids)
		}
	}
}

// Peers announcing the same protocols share one copy of them.
func TestProtocolsSharedBetweenPeers(t *testing.T) {
	m := New()
	a, _ := newPeer(t)
	b, _ := newPeer(t)
	protos := []protocol.ID{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/x/1"}
	for _, p := range []peer.ID{a, b} {
		if err := m.SetProtocols(p, protos...); err != nil {
			t.Fatal(err)
		}
	}
	// The same IDs added in another call and order-preserving appends
	// give the same list too.
	c, _ := newPeer(t)
	if err := m.AddProtocols(c, protos[:1]...); err != nil {
		t.Fatal(err)
	}
	if err := m.AddProtocols(c, protos...); err != nil {
		t.Fatal(err)
	}
	m.mu.RLock()
	ra, rb, rc := m.peers[a].protos, m.peers[b].protos, m.peers[c].protos
	m.mu.RUnlock()
	if ra != rb || ra != rc {
		t.Error("peers with the same protocols keep separate lists")
	}
	if err := m.RemoveProtocols(b, "/x/1"); err != nil {
		t.Fatal(err)
	}
	got, _ := m.GetProtocols(b)
	if want := protos[:2]; !slices.Equal(got, want) {
		t.Errorf("after removing one: %q, want %q", got, want)
	}
	if got, _ := m.GetProtocols(a); !slices.Equal(got, protos) {
		t.Errorf("another peer's list changed with it: %q", got)
	}
}
