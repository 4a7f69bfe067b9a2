package rcmgr_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"
)

func Example() {
	limits := rcmgr.ScaledDefaultLimits(1<<30, 1024)
	limits.PeerDefault.StreamsInbound = 1
	m, err := rcmgr.New(limits)
	if err != nil {
		panic(err)
	}
	defer m.Close()

	p, _ := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	s, err := m.OpenStream(p, network.DirInbound)
	if err != nil {
		panic(err)
	}
	defer s.Done()

	_, err = m.OpenStream(p, network.DirInbound)
	fmt.Println(err)
	var le *rcmgr.LimitError
	if errors.As(err, &le) {
		fmt.Println(le.Kind, le.Resource.FieldName(), le.Used, le.Limit, le.Origin)
	}
	// Output:
	// peer 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA: cannot reserve inbound stream: 1 of 1 in use (limit from PeerDefault)
	// peer StreamsInbound 1 1 PeerDefault
}

func ExampleParseLimits() {
	file := `{
	  "System": {"Memory": "2GiB", "Conns": "unlimited"},
	  "Protocol": {"/ipfs/ping/1.0.0": {"StreamsInbound": 16}}
	}`
	limits, err := rcmgr.ParseLimits(strings.NewReader(file), rcmgr.ScaledDefaultLimits(1<<30, 1024))
	if err != nil {
		panic(err)
	}
	ping := limits.Protocol["/ipfs/ping/1.0.0"]
	fmt.Println(limits.System.Memory>>30, limits.System.IsUnlimited(rcmgr.ResourceConns))
	fmt.Println(ping.StreamsInbound, ping.Streams == limits.ProtocolDefault.Streams)

	_, err = rcmgr.ParseLimits(strings.NewReader(`{"System": {"Streems": 1}}`), limits)
	fmt.Println(err)
	// Output:
	// 2 true
	// 16 true
	// rcmgr: invalid limits: System: unknown field "Streems" (known fields: Memory, FD, Conns, ConnsInbound, ConnsOutbound, Streams, StreamsInbound, StreamsOutbound)
}
