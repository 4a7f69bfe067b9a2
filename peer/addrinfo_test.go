package peer_test

import (
	"encoding/json"
	"errors"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pnet/p2pnet/peer"
)

func mustAddr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatalf("NewMultiaddr(%q): %v", s, err)
	}
	return m
}

func TestAddrInfoFromP2pAddr(t *testing.T) {
	id := mustDecode(t, specEd25519Base58)
	for _, tc := range []struct {
		in, transport string
	}{
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + specEd25519Base58, "/ip4/127.0.0.1/tcp/4001"},
		{"/ip6/::1/udp/4001/quic-v1/p2p/" + specEd25519Base58, "/ip6/::1/udp/4001/quic-v1"},
		{"/p2p/" + specEd25519Base58, ""},
		{"/p2p/" + id.CIDString(), ""},
		{"/ip4/127.0.0.1/tcp/1/p2p/" + specSHA256Base58 + "/p2p-circuit/p2p/" + specEd25519Base58, "/ip4/127.0.0.1/tcp/1/p2p/" + specSHA256Base58 + "/p2p-circuit"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			info, err := peer.AddrInfoFromString(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != id {
				t.Errorf("ID = %v, want %v", info.ID, id)
			}
			if tc.transport == "" {
				if len(info.Addrs) != 0 {
					t.Errorf("Addrs = %v, want none", info.Addrs)
				}
			} else if len(info.Addrs) != 1 || info.Addrs[0].String() != tc.transport {
				t.Errorf("Addrs = %v, want [%s]", info.Addrs, tc.transport)
			}

			// Back again: the canonical form of the input.
			addrs, err := peer.AddrInfoToP2pAddrs(info)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.transport + "/p2p/" + specEd25519Base58
			if len(addrs) != 1 || addrs[0].String() != want {
				t.Errorf("AddrInfoToP2pAddrs = %v, want [%s]", addrs, want)
			}
		})
	}
}

func TestAddrInfoFromP2pAddrErrors(t *testing.T) {
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/4001",
		"/p2p/" + specEd25519Base58 + "/tcp/1",
		"garbage",
		"/p2p/QmNotAPeer",
		"",
	} {
		if info, err := peer.AddrInfoFromString(s); !errors.Is(err, peer.ErrInvalidAddr) || info != nil {
			t.Errorf("AddrInfoFromString(%q) = %v, %v; want ErrInvalidAddr", s, info, err)
		}
	}
	if _, err := peer.AddrInfoFromP2pAddr(nil); !errors.Is(err, peer.ErrInvalidAddr) {
		t.Errorf("AddrInfoFromP2pAddr(nil) = %v", err)
	}
	if _, err := peer.AddrInfoToP2pAddrs(nil); !errors.Is(err, peer.ErrInvalidAddr) {
		t.Errorf("AddrInfoToP2pAddrs(nil) = %v", err)
	}
	if _, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{}); !errors.Is(err, peer.ErrEmptyPeerID) {
		t.Errorf("AddrInfoToP2pAddrs(empty ID) = %v", err)
	}
}

func TestSplitAddr(t *testing.T) {
	id := mustDecode(t, specEd25519Base58)
	m := mustAddr(t, "/ip4/127.0.0.1/tcp/4001/p2p/"+specEd25519Base58)
	transport, got := peer.SplitAddr(m)
	if got != id || transport.String() != "/ip4/127.0.0.1/tcp/4001" {
		t.Errorf("SplitAddr = %v, %v", transport, got)
	}
	// The transport part is a copy: appending to it leaves m alone.
	_ = append(transport, mustAddr(t, "/tcp/9")...)
	if m.String() != "/ip4/127.0.0.1/tcp/4001/p2p/"+specEd25519Base58 {
		t.Errorf("SplitAddr's result aliases its input: %v", m)
	}

	plain := mustAddr(t, "/ip4/127.0.0.1/tcp/4001")
	if transport, got := peer.SplitAddr(plain); got != "" || !transport.Equal(plain) {
		t.Errorf("SplitAddr(no p2p) = %v, %q", transport, got)
	}
	if transport, got := peer.SplitAddr(nil); got != "" || transport != nil {
		t.Errorf("SplitAddr(nil) = %v, %q", transport, got)
	}
	if transport, got := peer.SplitAddr(mustAddr(t, "/p2p/"+specEd25519Base58)); got != id || len(transport) != 0 {
		t.Errorf("SplitAddr(bare p2p) = %v, %q", transport, got)
	}
}

func TestAddrInfosFromP2pAddrs(t *testing.T) {
	a := "/p2p/" + specEd25519Base58
	b := "/p2p/" + specSHA256Base58
	infos, err := peer.AddrInfosFromP2pAddrs(
		mustAddr(t, "/ip4/127.0.0.1/tcp/1"+a),
		mustAddr(t, "/ip4/127.0.0.1/tcp/2"+b),
		mustAddr(t, "/ip6/::1/tcp/3"+a),
		mustAddr(t, b),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("got %d AddrInfos, want 2: %v", len(infos), infos)
	}
	if infos[0].ID.String() != specEd25519Base58 || len(infos[0].Addrs) != 2 ||
		infos[0].Addrs[0].String() != "/ip4/127.0.0.1/tcp/1" || infos[0].Addrs[1].String() != "/ip6/::1/tcp/3" {
		t.Errorf("first peer = %v", infos[0])
	}
	if infos[1].ID.String() != specSHA256Base58 || len(infos[1].Addrs) != 1 || infos[1].Addrs[0].String() != "/ip4/127.0.0.1/tcp/2" {
		t.Errorf("second peer = %v", infos[1])
	}
	if _, err := peer.AddrInfosFromP2pAddrs(mustAddr(t, "/ip4/127.0.0.1/tcp/1")); !errors.Is(err, peer.ErrInvalidAddr) {
		t.Errorf("address without /p2p: %v", err)
	}
	if infos, err := peer.AddrInfosFromP2pAddrs(); err != nil || len(infos) != 0 {
		t.Errorf("no addresses: %v, %v", infos, err)
	}
}

func TestAddrInfoToP2pAddrsMany(t *testing.T) {
	info := &peer.AddrInfo{
		ID:    mustDecode(t, specSHA256Base58),
		Addrs: []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1"), mustAddr(t, "/ip6/::1/udp/2/quic-v1")},
	}
	addrs, err := peer.AddrInfoToP2pAddrs(info)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/ip4/127.0.0.1/tcp/1/p2p/" + specSHA256Base58, "/ip6/::1/udp/2/quic-v1/p2p/" + specSHA256Base58}
	if len(addrs) != 2 || addrs[0].String() != want[0] || addrs[1].String() != want[1] {
		t.Errorf("got %v, want %v", addrs, want)
	}
	if info.Addrs[0].String() != "/ip4/127.0.0.1/tcp/1" {
		t.Error("AddrInfoToP2pAddrs changed the AddrInfo's addresses")
	}
	back, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil || len(back) != 1 || back[0].ID != info.ID || len(back[0].Addrs) != 2 {
		t.Errorf("round trip = %v, %v", back, err)
	}
}

func TestAddrInfoStringAndJSON(t *testing.T) {
	info := peer.AddrInfo{
		ID:    mustDecode(t, specEd25519Base58),
		Addrs: []ma.Multiaddr{mustAddr(t, "/ip4/127.0.0.1/tcp/1"), mustAddr(t, "/ip6/::1/tcp/2")},
	}
	if got, want := info.String(), "{"+specEd25519Base58+": [/ip4/127.0.0.1/tcp/1 /ip6/::1/tcp/2]}"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	js, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ID":"` + specEd25519Base58 + `","Addrs":["/ip4/127.0.0.1/tcp/1","/ip6/::1/tcp/2"]}`
	if string(js) != want {
		t.Errorf("JSON = %s, want %s", js, want)
	}
	var back peer.AddrInfo
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != info.ID || len(back.Addrs) != 2 || !back.Addrs[0].Equal(info.Addrs[0]) || !back.Addrs[1].Equal(info.Addrs[1]) {
		t.Errorf("JSON round trip = %v", back)
	}
	// A pointer marshals the same way.
	if js2, _ := json.Marshal(&info); string(js2) != want {
		t.Errorf("pointer JSON = %s", js2)
	}
	for _, bad := range []string{
		`{"ID":"` + specEd25519Base58 + `","Addrs":["/not/an/addr"]}`,
		`{"ID":"QmBad","Addrs":[]}`,
		`[]`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("UnmarshalJSON(%s) succeeded", bad)
		}
	}
	empty, _ := json.Marshal(peer.AddrInfo{})
	if string(empty) != `{"ID":"","Addrs":[]}` {
		t.Errorf("empty AddrInfo JSON = %s", empty)
	}
	if err := json.Unmarshal(empty, &back); err != nil || back.ID != "" || len(back.Addrs) != 0 {
		t.Errorf("empty AddrInfo round trip = %v, %v", back, err)
	}
}
