package interop

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"

	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	lpidentify "github.com/libp2p/go-libp2p/p2p/protocol/identify"
	lpping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// interopLimits are the default limits with room for the tests' 100
// concurrent streams of one protocol from one peer: the default allows
// 64 per protocol and peer, as go-libp2p's does, and resets the rest.
func interopLimits(t testing.TB) p2pnet.Option {
	t.Helper()
	l := rcmgr.DefaultLimits()
	l.ProtocolPeerDefault.StreamsInbound = 1024
	l.ProtocolPeerDefault.Streams = 2048
	rm, err := rcmgr.New(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	return p2pnet.ResourceManager(rm)
}

func ourHost(t testing.TB, security string) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(
		p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		p2pnet.Security(securityIDs[security]),
		p2pnet.UserAgent("p2pnet-interop"),
		interopLimits(t),
		p2pnet.EnablePerf(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// goPerfHandler serves /perf/1.0.0 on the go-libp2p side, written from
// the perf spec: read the 8-byte download size, read the upload to EOF,
// send the download.
func goPerfHandler(s lpnetwork.Stream) {
	defer s.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Reset()
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset()
		return
	}
	n := binary.BigEndian.Uint64(hdr[:])
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(uint64(len(buf)), n)
		if _, err := s.Write(buf[:k]); err != nil {
			s.Reset()
			return
		}
		n -= k
	}
}

// goPerfClient runs the perf protocol from the go-libp2p side.
func goPerfClient(ctx context.Context, h lphost.Host, p lppeer.ID, up, down uint64) (uint64, error) {
	s, err := h.NewStream(ctx, p, lpprotocol.ID(perf.ID))
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], down)
	if _, err := s.Write(hdr[:]); err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for sent := uint64(0); sent < up; {
		k := min(uint64(len(buf)), up-sent)
		if _, err := s.Write(buf[:k]); err != nil {
			return 0, err
		}
		sent += k
	}
	if err := s.CloseWrite(); err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, s)
	return uint64(n), err
}

// TestHosts: a go-libp2p host and a p2pnet host, both directions:
// connect, ping, identify, perf, 100 concurrent streams, close.
func TestHosts(t *testing.T) {
	for _, security := range securities {
		for _, weDial := range []bool{true, false} {
			name := security + "/p2pnet-dials"
			if !weDial {
				name = security + "/golibp2p-dials"
			}
			t.Run(name, func(t *testing.T) { testHosts(t, security, weDial) })
		}
	}
}

func testHosts(t *testing.T, security string, weDial bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gh := goHost(t, security)
	gh.SetStreamHandler(lpprotocol.ID(perf.ID), goPerfHandler)
	gh.SetStreamHandler("/interop/echo/1.0.0", func(s lpnetwork.Stream) { io.Copy(s, s); s.Close() })
	us := ourHost(t, security)
	us.SetStreamHandler("/interop/echo/1.0.0", func(s network.Stream) { io.Copy(s, s); s.Close() })
	gid := peer.ID(gh.ID())

	// Connection events on both sides, registered before anything dials.
	ourConnected, ourDisconnected := make(chan struct{}, 1), make(chan struct{}, 1)
	us.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(network.Network, network.Conn) { ourConnected <- struct{}{} },
		DisconnectedF: func(network.Network, network.Conn) { ourDisconnected <- struct{}{} },
	})
	goDisconnected := make(chan struct{}, 1)
	gh.Network().Notify(&lpnetwork.NotifyBundle{
		DisconnectedF: func(lpnetwork.Network, lpnetwork.Conn) { goDisconnected <- struct{}{} },
	})

	if weDial {
		if err := us.Connect(ctx, peer.AddrInfo{ID: gid, Addrs: gh.Addrs()}); err != nil {
			t.Fatalf("p2pnet connecting to go-libp2p: %v", err)
		}
	} else {
		if err := gh.Connect(ctx, lppeer.AddrInfo{ID: lppeer.ID(us.ID()), Addrs: us.Addrs()}); err != nil {
			t.Fatalf("go-libp2p connecting to p2pnet: %v", err)
		}
	}
	select {
	case <-ourConnected:
	case <-ctx.Done():
		t.Fatal("p2pnet never saw the connection")
	}
	conns := us.Network().ConnsToPeer(gid)
	if len(conns) != 1 {
		t.Fatalf("%d connections; want 1", len(conns))
	}

	// Identify, both ways.
	<-us.Identify().IdentifyWait(conns[0])
	if v, _ := us.Peerstore().Get(gid, "AgentVersion"); v == nil || v == "" {
		t.Error("p2pnet learnt no agent version from go-libp2p")
	}
	protos, _ := us.Peerstore().GetProtocols(gid)
	for _, want := range []protocol.ID{ping.ID, identify.ID, perf.ID, "/interop/echo/1.0.0"} {
		if !slices.Contains(protos, want) {
			t.Errorf("p2pnet did not learn that go-libp2p speaks %s: %v", want, protos)
		}
	}
	if !slices.ContainsFunc(us.Peerstore().Addrs(gid), gh.Addrs()[0].Equal) {
		t.Errorf("p2pnet did not learn go-libp2p's listen address %s: %v", gh.Addrs()[0], us.Peerstore().Addrs(gid))
	}
	gconn := gh.Network().ConnsToPeer(lppeer.ID(us.ID()))[0]
	select {
	case <-gh.(interface{ IDService() lpidentify.IDService }).IDService().IdentifyWait(gconn):
	case <-ctx.Done():
		t.Fatal("go-libp2p's identify did not finish")
	}
	if v, _ := gh.Peerstore().Get(lppeer.ID(us.ID()), "AgentVersion"); v != "p2pnet-interop" {
		t.Errorf("go-libp2p learnt agent version %v; want p2pnet-interop", v)
	}
	gprotos, _ := gh.Peerstore().GetProtocols(lppeer.ID(us.ID()))
	for _, want := range []lpprotocol.ID{"/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/perf/1.0.0", "/interop/echo/1.0.0"} {
		if !slices.Contains(gprotos, want) {
			t.Errorf("go-libp2p did not learn that p2pnet speaks %s: %v", want, gprotos)
		}
	}
	if !slices.ContainsFunc(gh.Peerstore().Addrs(lppeer.ID(us.ID())), us.Addrs()[0].Equal) {
		t.Errorf("go-libp2p did not learn p2pnet's listen address")
	}

	// Ping, both ways.
	if rtt, err := ping.PingOnce(ctx, us, gid); err != nil || rtt <= 0 {
		t.Errorf("p2pnet pinging go-libp2p: %v, %v", rtt, err)
	}
	res := <-lpping.Ping(ctx, gh, lppeer.ID(us.ID()))
	if res.Error != nil {
		t.Errorf("go-libp2p pinging p2pnet: %v", res.Error)
	}

	// Perf, both ways.
	pr, err := perf.Run(ctx, us, gid, 2<<20, 3<<20, nil)
	if err != nil || pr.Uploaded != 2<<20 || pr.Downloaded != 3<<20 {
		t.Errorf("p2pnet perf against go-libp2p: %+v, %v", pr, err)
	}
	if n, err := goPerfClient(ctx, gh, lppeer.ID(us.ID()), 3<<20, 2<<20); err != nil || n != 2<<20 {
		t.Errorf("go-libp2p perf against p2pnet: %d, %v", n, err)
	}

	// 100 concurrent streams each way.
	echoBothWays(ctx, t, us, gid, gh, lppeer.ID(us.ID()))

	// Close, seen by both.
	if weDial {
		us.Network().ClosePeer(gid)
	} else {
		gh.Network().ClosePeer(lppeer.ID(us.ID()))
	}
	for _, ch := range []chan struct{}{ourDisconnected, goDisconnected} {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatal("a side never saw the close")
		}
	}
	if us.Network().Connectedness(gid) != network.NotConnected || gh.Network().Connectedness(lppeer.ID(us.ID())) != lpnetwork.NotConnected {
		t.Error("still connected after both sides saw the close")
	}
}

// echoBothWays runs 100 concurrent echo streams from each host to the
// other.
func echoBothWays(ctx context.Context, t *testing.T, us *p2pnet.Host, gid peer.ID, gh lphost.Host, uid lppeer.ID) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 100; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- echoOnce(ctx, func(ctx context.Context) (io.ReadWriteCloser, func() error, error) {
				s, err := us.NewStream(ctx, gid, "/interop/echo/1.0.0")
				if err != nil {
					return nil, nil, err
				}
				return s, s.CloseWrite, nil
			}, i)
		}()
		go func() {
			defer wg.Done()
			errs <- echoOnce(ctx, func(ctx context.Context) (io.ReadWriteCloser, func() error, error) {
				s, err := gh.NewStream(ctx, uid, "/interop/echo/1.0.0")
				if err != nil {
					return nil, nil, err
				}
				return s, s.CloseWrite, nil
			}, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func echoOnce(ctx context.Context, open func(context.Context) (io.ReadWriteCloser, func() error, error), i int) error {
	s, closeWrite, err := open(ctx)
	if err != nil {
		return fmt.Errorf("stream %d: open: %w", i, err)
	}
	defer s.Close()
	msg := fmt.Appendf(nil, "message %d", i)
	if _, err := s.Write(msg); err != nil {
		return fmt.Errorf("stream %d: write: %w", i, err)
	}
	if err := closeWrite(); err != nil {
		return fmt.Errorf("stream %d: close write: %w", i, err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("stream %d: read: %w", i, err)
	}
	if string(got) != string(msg) {
		return fmt.Errorf("stream %d: echo %q; want %q", i, got, msg)
	}
	return nil
}
