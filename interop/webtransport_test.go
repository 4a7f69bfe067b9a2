package interop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpidentify "github.com/libp2p/go-libp2p/p2p/protocol/identify"
	lpping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	libp2pwebtransport "github.com/libp2p/go-libp2p/p2p/transport/webtransport"
	ma "github.com/multiformats/go-multiaddr"
)

const wtEchoID = "/interop/echo-sha256/1.0.0"

// goWTHost is a go-libp2p host listening only on loopback WebTransport.
func goWTHost(t testing.TB) lphost.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1/webtransport"),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Transport(libp2pwebtransport.New),
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}), // see goHost
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// ourWTHost is a p2pnet host listening only on loopback WebTransport.
func ourWTHost(t testing.TB) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1/webtransport"), interopLimits(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// isWT reports whether a is a WebTransport address with certificate
// hashes.
func isWT(a ma.Multiaddr) bool {
	return slices.ContainsFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_WEBTRANSPORT }) &&
		a[len(a)-1].Code() == ma.P_CERTHASH
}

// sha256Echo answers with the SHA-256 of what it read.
func sha256Echo(r io.Reader, w io.WriteCloser) {
	h := sha256.New()
	io.Copy(h, r)
	w.Write(h.Sum(nil))
	w.Close()
}

// sendSum writes 1 MiB of random bytes on s, closes its write side and
// checks the SHA-256 the remote answers.
func sendSum(s io.ReadWriter, closeWrite func() error) error {
	data := make([]byte, 1<<20)
	rand.Read(data)
	if _, err := s.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := closeWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if want := sha256.Sum256(data); string(got) != string(want[:]) {
		return fmt.Errorf("checksum %x; want %x", got, want)
	}
	return nil
}

// TestWebTransportHosts: p2pnet and go-libp2p v0.51.0 over WebTransport
// only, both dial directions: each side's listen address carries its
// certificate hashes and the other verifies them; identify, ping and a
// 1 MiB echo checked by SHA-256 work each way.
func TestWebTransportHosts(t *testing.T) {
	for _, weDial := range []bool{true, false} {
		name := "p2pnet-dials"
		if !weDial {
			name = "golibp2p-dials"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			gh := goWTHost(t)
			gh.SetStreamHandler(wtEchoID, func(s lpnetwork.Stream) { sha256Echo(s, s) })
			us := ourWTHost(t)
			us.SetStreamHandler(wtEchoID, func(s network.Stream) { sha256Echo(s, s) })
			gid, uid := peer.ID(gh.ID()), lppeer.ID(us.ID())
			if len(gh.Addrs()) != 1 || !isWT(gh.Addrs()[0]) {
				t.Fatalf("go-libp2p listens on %v", gh.Addrs())
			}
			if len(us.Addrs()) != 1 || !isWT(us.Addrs()[0]) {
				t.Fatalf("p2pnet listens on %v", us.Addrs())
			}

			connected := make(chan struct{}, 1)
			us.Network().Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) {
				select {
				case connected <- struct{}{}:
				default:
				}
			}})
			goConnected := make(chan struct{}, 1)
			gh.Network().Notify(&lpnetwork.NotifyBundle{ConnectedF: func(lpnetwork.Network, lpnetwork.Conn) {
				select {
				case goConnected <- struct{}{}:
				default:
				}
			}})
			if weDial {
				if err := us.Connect(ctx, peer.AddrInfo{ID: gid, Addrs: gh.Addrs()}); err != nil {
					t.Fatalf("p2pnet connecting to go-libp2p: %v", err)
				}
			} else {
				if err := gh.Connect(ctx, lppeer.AddrInfo{ID: uid, Addrs: us.Addrs()}); err != nil {
					t.Fatalf("go-libp2p connecting to p2pnet: %v", err)
				}
			}
			for _, ch := range []chan struct{}{connected, goConnected} {
				select {
				case <-ch:
				case <-ctx.Done():
					t.Fatal("no connection")
				}
			}
			conns := us.Network().ConnsToPeer(gid)
			if len(conns) != 1 || conns[0].ConnState().Transport != "webtransport" {
				t.Fatalf("want one WebTransport connection; got %d", len(conns))
			}
			if gc := gh.Network().ConnsToPeer(uid); len(gc) != 1 || gc[0].ConnState().Transport != "webtransport" {
				t.Fatalf("go-libp2p's view of the connection: %d conns", len(gc))
			}

			// identify, both ways.
			<-us.Identify().IdentifyWait(conns[0])
			if protos, _ := us.Peerstore().GetProtocols(gid); !slices.Contains(protos, ping.ID) {
				t.Errorf("identify over WebTransport learnt %v", protos)
			}
			if !slices.ContainsFunc(us.Peerstore().Addrs(gid), gh.Addrs()[0].Equal) {
				t.Errorf("identify did not tell go-libp2p's WebTransport address: %v", us.Peerstore().Addrs(gid))
			}
			select {
			case <-gh.(interface{ IDService() lpidentify.IDService }).IDService().IdentifyWait(gh.Network().ConnsToPeer(uid)[0]):
			case <-ctx.Done():
				t.Fatal("go-libp2p's identify did not finish")
			}
			if protos, _ := gh.Peerstore().GetProtocols(uid); !slices.Contains(protos, wtEchoID) {
				t.Errorf("go-libp2p's identify over WebTransport learnt %v", protos)
			}
			if !slices.ContainsFunc(gh.Peerstore().Addrs(uid), us.Addrs()[0].Equal) {
				t.Errorf("identify did not tell our WebTransport address: %v", gh.Peerstore().Addrs(uid))
			}

			// ping, both ways.
			if rtt, err := ping.PingOnce(ctx, us, gid); err != nil || rtt <= 0 {
				t.Errorf("p2pnet pinging go-libp2p over WebTransport: %v", err)
			}
			if res := <-lpping.Ping(ctx, gh, uid); res.Error != nil {
				t.Errorf("go-libp2p pinging p2pnet over WebTransport: %v", res.Error)
			}

			// 1 MiB echoed as its checksum, both ways.
			s, err := us.NewStream(ctx, gid, wtEchoID)
			if err != nil {
				t.Fatal(err)
			}
			if err := sendSum(s, s.CloseWrite); err != nil {
				t.Errorf("p2pnet to go-libp2p: %v", err)
			}
			s.Close()
			gs, err := gh.NewStream(ctx, uid, wtEchoID)
			if err != nil {
				t.Fatal(err)
			}
			if err := sendSum(gs, gs.CloseWrite); err != nil {
				t.Errorf("go-libp2p to p2pnet: %v", err)
			}
			gs.Close()
		})
	}
}
