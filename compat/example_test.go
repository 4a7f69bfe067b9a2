package compat_test

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	p2pnet "github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/compat"
)

// Gossipsub on a p2pnet host, talking to a plain go-libp2p host.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		panic(err)
	}
	lh, err := compat.Wrap(h) // a go-libp2p host.Host; closing it closes h
	if err != nil {
		panic(err)
	}
	defer lh.Close()
	ps, err := pubsub.NewGossipSub(ctx, lh)
	if err != nil {
		panic(err)
	}
	topic, err := ps.Join("news")
	if err != nil {
		panic(err)
	}
	defer topic.Close()
	peers, err := topic.EventHandler()
	if err != nil {
		panic(err)
	}
	defer peers.Cancel()

	// A go-libp2p host on the other end.
	other, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		panic(err)
	}
	defer other.Close()
	ops, err := pubsub.NewGossipSub(ctx, other)
	if err != nil {
		panic(err)
	}
	otopic, err := ops.Join("news")
	if err != nil {
		panic(err)
	}
	defer otopic.Close()
	sub, err := otopic.Subscribe()
	if err != nil {
		panic(err)
	}
	defer sub.Cancel()

	if err := lh.Connect(ctx, peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()}); err != nil {
		panic(err)
	}
	if _, err := peers.NextPeerEvent(ctx); err != nil { // the go-libp2p host joined
		panic(err)
	}
	if err := topic.Publish(ctx, []byte("hello from p2pnet")); err != nil {
		panic(err)
	}
	msg, err := sub.Next(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (from the p2pnet host: %v)\n", msg.Data, msg.GetFrom() == lh.ID())
	// Output: hello from p2pnet (from the p2pnet host: true)
}
