package p2pnet_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// Two hosts on loopback: one serves an echo protocol, the other connects,
// opens a stream for it, writes, closes its side and reads the echo.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	server, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	server.SetStreamHandler("/echo/1.0.0", func(s network.Stream) {
		io.Copy(s, s) // echo until the client closes its side
		s.Close()
	})

	client, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	err = client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()})
	if err != nil {
		log.Fatal(err)
	}
	s, err := client.NewStream(ctx, server.ID(), "/echo/1.0.0") // the protocol rides with the first write
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Write([]byte("hello")); err != nil {
		log.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil { // reports a refusal of the protocol
		log.Fatal(err)
	}
	reply, err := io.ReadAll(s)
	if err != nil {
		log.Fatal(err)
	}
	s.Close()
	fmt.Printf("%s\n", reply)
	// Output: hello
}

// Connect takes the peer's ID and addresses, as a peer.AddrInfo or parsed
// from a /…/p2p/ID address; NewStream then needs only the ID.
func ExampleHost_Connect() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, _ := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	defer server.Close()
	server.SetStreamHandler("/greet/1.0.0", func(s network.Stream) {
		fmt.Fprint(s, "hello")
		s.Close()
	})
	client, _ := p2pnet.New(p2pnet.ListenAddrs()) // dials only
	defer client.Close()

	// What a user would paste: the server's first address with /p2p/ID.
	text := server.P2PAddrs()[0].String()
	info, err := peer.AddrInfoFromP2pAddr(ma.StringCast(text))
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Connect(ctx, *info); err != nil {
		log.Fatal(err)
	}
	fmt.Println("connected:", client.Network().Connectedness(server.ID()))
	s, err := client.NewStream(ctx, server.ID(), "/greet/1.0.0")
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	b, err := io.ReadAll(s)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// connected: Connected
	// hello
}

// A handler owns its stream: it reads the request, writes the answer and
// closes (or resets) the stream. Handlers run on their own goroutine, one
// per stream.
func ExampleHost_SetStreamHandler() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, _ := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	defer server.Close()
	server.SetStreamHandler("/upper/1.0.0", func(s network.Stream) {
		b, err := io.ReadAll(io.LimitReader(s, 1024))
		if err != nil {
			s.Reset()
			return
		}
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - 'a' + 'A'
			}
		}
		s.Write(b)
		s.Close()
	})
	fmt.Println("serving:", server.Protocols())

	client, _ := p2pnet.New(p2pnet.ListenAddrs())
	defer client.Close()
	client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()})
	s, _ := client.NewStream(ctx, server.ID(), "/upper/1.0.0")
	s.Write([]byte("shout"))
	s.CloseWrite()
	b, _ := io.ReadAll(s)
	s.Close()
	fmt.Println(string(b))
	// Output:
	// serving: [/ipfs/id/1.0.0 /ipfs/id/push/1.0.0 /ipfs/ping/1.0.0 /libp2p/autonat/2/dial-back /libp2p/dcutr /upper/1.0.0]
	// SHOUT
}

// Notifications tell when connections open and close. Connected comes
// before any stream of the connection reaches a handler, and
// Disconnected never precedes Connected.
func ExampleHost_Network_notifications() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, _ := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	defer server.Close()
	events := make(chan string, 2)
	server.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			events <- "connected, " + c.Stat().Direction.String()
		},
		DisconnectedF: func(_ network.Network, c network.Conn) {
			events <- "disconnected"
		},
	})

	client, _ := p2pnet.New(p2pnet.ListenAddrs())
	client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()})
	fmt.Println(<-events)
	client.Close() // closes its connections
	fmt.Println(<-events)
	// Output:
	// connected, Inbound
	// disconnected
}
