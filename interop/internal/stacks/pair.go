package stacks

import (
	"context"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
)

// Pair is a dialer host connected to a listener host of one stack.
type Pair struct {
	// NewStream opens a stream for proto on the open connection.
	NewStream func(ctx context.Context, proto string) (Stream, error)
	// Disconnect closes the connections between the hosts and makes the
	// dialer forget the listener's addresses. It waits for what the
	// connection still had running (identify), so Dial that follows
	// measures a dial alone.
	Disconnect func()
	// Dial connects to the listener (through the Via address when one was
	// given) and opens a stream for proto.
	Dial func(ctx context.Context, proto string) (Stream, error)
	// Close closes both hosts.
	Close func()
}

// OurPair connects two p2pnet hosts of the stack. via, when not nil,
// returns the address to dial instead of the listener's own (see
// DelayProxy); it is handed the listener's first address.
func OurPair(stack string, via func(ma.Multiaddr) (ma.Multiaddr, error)) (*Pair, error) {
	var cl closers
	server, closeServer, err := OurHost(stack)
	if err != nil {
		return nil, err
	}
	cl = append(cl, closeServer)
	client, closeClient, err := OurHost(stack)
	if err != nil {
		cl.close()
		return nil, err
	}
	cl = append(cl, closeClient)
	server.SetStreamHandler(SinkID, func(s network.Stream) { Sink(s) })
	server.SetStreamHandler(EchoID, func(s network.Stream) { EchoOne(s) })
	addrs := server.Addrs()
	if via != nil {
		a, err := via(addrs[0])
		if err != nil {
			cl.close()
			return nil, err
		}
		addrs = []ma.Multiaddr{a}
	}
	info := peer.AddrInfo{ID: server.ID(), Addrs: addrs}
	if err := client.Connect(context.Background(), info); err != nil {
		cl.close()
		return nil, err
	}
	p := &Pair{
		NewStream: func(ctx context.Context, proto string) (Stream, error) {
			return client.NewStream(ctx, server.ID(), protocol.ID(proto))
		},
		Disconnect: func() {
			for _, c := range client.Network().ConnsToPeer(server.ID()) {
				<-client.Identify().IdentifyWait(c)
			}
			client.Network().ClosePeer(server.ID())
			client.Peerstore().ClearAddrs(server.ID())
		},
		Dial: func(ctx context.Context, proto string) (Stream, error) {
			if err := client.Connect(ctx, info); err != nil {
				return nil, err
			}
			return client.NewStream(ctx, server.ID(), protocol.ID(proto))
		},
		Close: cl.close,
	}
	return p, nil
}

// GoPair connects two go-libp2p hosts of the stack; via as for OurPair.
func GoPair(stack string, via func(ma.Multiaddr) (ma.Multiaddr, error)) (*Pair, error) {
	var cl closers
	server, err := GoHost(stack)
	if err != nil {
		return nil, err
	}
	cl = append(cl, func() { server.Close() })
	client, err := GoHost(stack)
	if err != nil {
		cl.close()
		return nil, err
	}
	cl = append(cl, func() { client.Close() })
	server.SetStreamHandler(SinkID, func(s lpnetwork.Stream) { Sink(s) })
	server.SetStreamHandler(EchoID, func(s lpnetwork.Stream) { EchoOne(s) })
	addrs := server.Addrs()
	if via != nil {
		a, err := via(addrs[0])
		if err != nil {
			cl.close()
			return nil, err
		}
		addrs = []ma.Multiaddr{a}
	}
	info := lppeer.AddrInfo{ID: server.ID(), Addrs: addrs}
	if err := client.Connect(context.Background(), info); err != nil {
		cl.close()
		return nil, err
	}
	p := &Pair{
		NewStream: func(ctx context.Context, proto string) (Stream, error) {
			return client.NewStream(ctx, server.ID(), lpprotocol.ID(proto))
		},
		Disconnect: func() {
			waitGoIdentify(client, server.ID())
			client.Network().ClosePeer(server.ID())
			client.Peerstore().ClearAddrs(server.ID())
		},
		Dial: func(ctx context.Context, proto string) (Stream, error) {
			if err := client.Connect(ctx, info); err != nil {
				return nil, err
			}
			return client.NewStream(ctx, server.ID(), lpprotocol.ID(proto))
		},
		Close: cl.close,
	}
	return p, nil
}

// waitGoIdentify waits for identify on each of h's connections to p.
func waitGoIdentify(h lphost.Host, p lppeer.ID) {
	bh, ok := h.(*basichost.BasicHost)
	if !ok {
		return
	}
	for _, c := range h.Network().ConnsToPeer(p) {
		<-bh.IDService().IdentifyWait(c)
	}
}

// NewPair builds the pair of the stack for p2pnet (ours) or go-libp2p.
func NewPair(ours bool, stack string, via func(ma.Multiaddr) (ma.Multiaddr, error)) (*Pair, error) {
	if ours {
		return OurPair(stack, via)
	}
	return GoPair(stack, via)
}
