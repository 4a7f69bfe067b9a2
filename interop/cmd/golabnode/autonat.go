package main

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/p2pnet/p2pnet/internal/netlab/labcmd"
)

// runAutoNATv1 is the autonat-v1 mode: a go-libp2p host on listen that
// serves AutoNAT v1 (EnableNATService; go-libp2p's v1 server dials back
// from a second identity and only addresses it counts as public, which
// is why the lab test puts it on a range outside its unroutable list).
// Its reachability is forced public, so that the service stays on
// without its own client probing, and its rate limits are raised so that
// a client may check several addresses a minute. It prints
// {"type":"listen","addrs":[...]} and runs until ctx ends.
func runAutoNATv1(ctx context.Context, listen []string) error {
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen...), libp2p.EnableNATService(),
		libp2p.ForceReachabilityPublic(), libp2p.AutoNATServiceRateLimit(100, 100, time.Minute))
	if err != nil {
		return err
	}
	defer h.Close()
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+h.ID().String())
	}
	labcmd.Emit(map[string]any{"type": "listen", "addrs": addrs})
	<-ctx.Done()
	return nil
}
