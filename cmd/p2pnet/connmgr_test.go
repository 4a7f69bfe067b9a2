package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// TestListenConnManager: `listen --conn-low 1 --conn-high 2 --conn-grace 0`
// trims down to one connection once a third peer connects.
func TestListenConnManager(t *testing.T) {
	addr := nextLine(t, listenLines(t, "--listen", "/ip4/127.0.0.1/tcp/0",
		"--conn-low", "1", "--conn-high", "2", "--conn-grace", "0"), "/p2p/")
	info, err := peer.AddrInfoFromP2pAddr(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	dropped := make(chan struct{}, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		h, err := p2pnet.New(p2pnet.ListenAddrs())
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		h.Network().Notify(&network.NotifyBundle{DisconnectedF: func(network.Network, network.Conn) { dropped <- struct{}{} }})
		if err := h.Connect(ctx, *info); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		select {
		case <-dropped:
		case <-ctx.Done():
			t.Fatalf("%d of 3 peers trimmed; want 2 (low watermark 1)", i)
		}
	}
	if code, _, errs := runCmd(t, "listen", "--conn-low", "5", "--conn-high", "2"); code != 2 || !strings.Contains(errs, "conn-low") {
		t.Errorf("--conn-low above --conn-high: exit %d, %q", code, errs)
	}
}
