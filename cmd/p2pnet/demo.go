package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
)

// demoBytes is how much the demo transfers each way.
var demoBytes uint64 = 256 << 20

func runDemo(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("demo", stderr)
	size := sizeFlag(demoBytes)
	fl.Var(&size, "size", "bytes to transfer each way (`SIZE`, such as 64MiB or 1.5GiB)")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if err := noArgs(fl); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()

	loopback := p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")
	server, err := p2pnet.New(loopback, p2pnet.UserAgent("p2pnet-demo/server"), p2pnet.EnablePerf())
	if err != nil {
		return fmt.Errorf("starting the server host: %w", err)
	}
	defer server.Close()
	client, err := p2pnet.New(loopback, p2pnet.UserAgent("p2pnet-demo/client"))
	if err != nil {
		return fmt.Errorf("starting the client host: %w", err)
	}
	defer client.Close()

	w := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	w("p2pnet demo: two hosts in this process, talking over loopback TCP")
	w("")
	w("server  %s", server.ID())
	for _, a := range server.Addrs() {
		w("          listens on %s", a)
	}
	w("client  %s", client.ID())

	t0 := time.Now()
	if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		return fmt.Errorf("client connecting to the server: %w", err)
	}
	connectTime := time.Since(t0)
	conns := client.Network().ConnsToPeer(server.ID())
	if len(conns) == 0 {
		return fmt.Errorf("client has no connection to the server after connecting")
	}
	c := conns[0]
	select {
	case <-client.Identify().IdentifyWait(c):
	case <-ctx.Done():
		return fmt.Errorf("waiting for identify: %w", context.Cause(ctx))
	}
	st := c.ConnState()
	w("")
	w("connection  %s -> %s in %s", c.LocalMultiaddr(), c.RemoteMultiaddr(), connectTime.Round(time.Microsecond))
	w("            transport %s, security %s, muxer %s (negotiated inside the handshake: %v)",
		st.Transport, st.Security, st.StreamMultiplexer, st.UsedEarlyMuxerNegotiation)

	agent, _ := client.Peerstore().Get(server.ID(), "AgentVersion")
	protos, _ := client.Peerstore().GetProtocols(server.ID())
	names := make([]string, len(protos))
	for i, p := range protos {
		names[i] = string(p)
	}
	w("identify    server says it is %v and speaks %s", agent, strings.Join(names, ", "))
	w("            server's listen addresses: %v", client.Peerstore().Addrs(server.ID()))

	// The first round trip of a stream carries the protocol proposal and
	// its answer too: it is shown apart, as the stream's setup.
	var rtts []string
	var setup time.Duration
	results := ping.Ping(ctx, client, server.ID())
	for i := 0; i < 6; i++ {
		r := <-results
		if r.Err != nil {
			return withReason("pinging the server", r.Err)
		}
		if i == 0 {
			setup = r.RTT
			continue
		}
		rtts = append(rtts, r.RTT.Round(time.Microsecond).String())
	}
	w("ping        stream set up with its first round trip in %s; then 5 round trips: %s",
		setup.Round(time.Microsecond), strings.Join(rtts, " "))

	res, err := perf.Run(ctx, client, server.ID(), uint64(size), uint64(size), nil)
	if err != nil {
		return withReason("transferring data", err)
	}
	w("perf        sent %s in %s: %s", formatBytes(res.Uploaded), res.UploadTime.Round(time.Millisecond), formatBits(res.UploadBitsPerSecond()))
	w("            received %s in %s: %s", formatBytes(res.Downloaded), res.DownloadTime.Round(time.Millisecond), formatBits(res.DownloadBitsPerSecond()))

	if err := client.Network().ClosePeer(server.ID()); err != nil {
		return fmt.Errorf("closing the connection: %w", err)
	}
	w("")
	w("closed; connectedness now %s. Whole demo: %s", client.Network().Connectedness(server.ID()), time.Since(start).Round(time.Millisecond))
	w("")
	w("Try it across two shells:  go run ./cmd/p2pnet listen --listen /ip4/127.0.0.1/tcp/4001")
	w("                           go run ./cmd/p2pnet ping -c 3 <an address it prints>")
	return nil
}
