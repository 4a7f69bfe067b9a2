package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/autonat"

	ma "github.com/multiformats/go-multiaddr"
)

// TestListenAutoNATService: `p2pnet listen --autonat-service` (loopback
// counted public) dials a host back over AutoNAT v2, the nonce coming
// back, and over v1; a port nobody listens on is reported unreachable
// by both. A listener without the flag serves neither.
func TestListenAutoNATService(t *testing.T) {
	server := nextLine(t, listenLines(t, "--autonat-service", "--listen", "/ip4/127.0.0.1/tcp/0", "--public-cidr", "127.0.0.0/8"), "/p2p/")
	plain := nextLine(t, listenLines(t, "--listen", "/ip4/127.0.0.1/tcp/0"), "/p2p/")

	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.DisableAutoNAT())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := autonat.NewClient(h)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	connect := func(s string) peer.ID {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, *ai); err != nil {
			t.Fatal(err)
		}
		return ai.ID
	}
	srv, other := connect(server), connect(plain)
	closed := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	for name, check := range map[string]func(context.Context, peer.ID, ma.Multiaddr) (autonat.Result, error){"v2": c.Check, "v1": c.CheckV1} {
		if r, err := check(ctx, srv, h.Addrs()[0]); err != nil || !r.Reachable {
			t.Errorf("%s check of our listen address: %+v, %v; want reachable", name, r, err)
		}
		if r, err := check(ctx, srv, closed); err != nil || r.Reachable {
			t.Errorf("%s check of a closed port: %+v, %v; want unreachable", name, r, err)
		}
		if _, err := check(ctx, other, h.Addrs()[0]); err == nil || errors.Is(err, autonat.ErrBadResponse) {
			t.Errorf("%s check with a listener without --autonat-service: %v; want the protocol refused", name, err)
		}
	}
}
