package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"

	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// msMessage is a multistream-select message: varint length, s, '\n'
// (every message here is shorter than 128 bytes).
func msMessage(s string) []byte {
	return append([]byte{byte(len(s) + 1)}, s+"\n"...)
}

// listenerImpls start a listener of another implementation speaking
// only the given security protocol, and return its TCP address.
var listenerImpls = []struct {
	name  string
	start func(t *testing.T, security string) ma.Multiaddr
}{
	{"go-libp2p", func(t *testing.T, security string) ma.Multiaddr { return tcpAddrOf(t, goHost(t, security).Addrs()) }},
	{"js-libp2p", func(t *testing.T, security string) ma.Multiaddr {
		return tcpAddrOf(t, startJSListener(t, security).Addrs)
	}},
}

// tcpAddrOf returns the first /ip4/…/tcp/… address of addrs.
func tcpAddrOf(t *testing.T, addrs []ma.Multiaddr) ma.Multiaddr {
	t.Helper()
	for _, a := range addrs {
		if na, err := manet.ToNetAddr(a); err == nil {
			if _, ok := na.(*net.TCPAddr); ok {
				return a
			}
		}
	}
	t.Fatalf("no TCP address in %v", addrs)
	return nil
}

// TestRefusedLazyProposalEndsConnection records the wire fact the
// security fallback is built on: once a go-libp2p or js-libp2p listener
// has refused a lazy proposal, it reads the handshake message that was
// pipelined with the proposal as the next proposal, finds it malformed
// and closes the connection, so the next protocol cannot be proposed on
// it. Without the pipelined bytes (plain multistream-select), the next
// proposal works.
func TestRefusedLazyProposalEndsConnection(t *testing.T) {
	// The first bytes of each handshake's first message: Noise's 2-byte
	// length and a 32-byte ephemeral key, and a TLS record header and
	// ClientHello start.
	noiseMsg1 := append([]byte{0x00, 0x20}, bytes.Repeat([]byte{0x42}, 32)...)
	tlsHello := append([]byte{0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03}, bytes.Repeat([]byte{0x42}, 32)...)
	for _, impl := range listenerImpls {
		for _, tc := range []struct {
			name      string
			listener  string // the listener's only security protocol
			first     protocol.ID
			pipelined []byte
			next      protocol.ID
		}{
			{"noise-to-tls-listener", "tls", noise.ID, noiseMsg1, tls.ID},
			{"tls-to-noise-listener", "noise", tls.ID, tlsHello, noise.ID},
			{"plain-multistream", "tls", noise.ID, nil, tls.ID},
		} {
			t.Run(impl.name+"/"+tc.name, func(t *testing.T) {
				addr := impl.start(t, tc.listener)
				na, _ := manet.ToNetAddr(addr)
				c, err := net.Dial("tcp", na.String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				first := append(msMessage("/multistream/1.0.0"), msMessage(string(tc.first))...)
				if _, err := c.Write(append(first, tc.pipelined...)); err != nil {
					t.Fatal(err)
				}
				want := append(msMessage("/multistream/1.0.0"), msMessage("na")...)
				got := make([]byte, len(want))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("answer to %s: %q, %v; want %q", tc.first, got, err, want)
				}
				// Propose the listener's protocol on the same connection.
				if _, err := c.Write(msMessage(string(tc.next))); err != nil && tc.pipelined == nil {
					t.Fatal(err)
				}
				want = msMessage(string(tc.next))
				got = make([]byte, len(want))
				_, err = io.ReadFull(c, got)
				if tc.pipelined == nil {
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("second proposal answered %q, %v; want %q", got, err, want)
					}
					return
				}
				var ne net.Error
				if err == nil || errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("second proposal after pipelined bytes answered %q, %v; want the connection closed", got, err)
				}
				t.Logf("%s closed the connection: %v", impl.name, err)
			})
		}
	}
}

// securityOrders are the p2pnet hosts' security options in the fallback
// tests: the default (Noise, then TLS), and TLS first.
var securityOrders = []struct {
	name string
	opts []p2pnet.Option
}{
	{"default", nil},
	{"tls-first", []p2pnet.Option{p2pnet.Security(tls.ID, noise.ID)}},
}

// defaultHost is a p2pnet host with default options but for a loopback
// listen address and opts.
func defaultHost(t testing.TB, opts ...p2pnet.Option) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(append([]p2pnet.Option{p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestSecurityFallbackGoLibp2p: p2pnet hosts preferring either protocol
// connect to go-libp2p listeners that speak only the other one (or only
// the same one), and both sides then use the connection: an echo from
// us, pings both ways. A second connection after a disconnect agrees on
// the same protocol.
func TestSecurityFallbackGoLibp2p(t *testing.T) {
	for _, order := range securityOrders {
		for _, security := range securities {
			t.Run(order.name+"/"+security+"-only", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				gh := goHost(t, security)
				gh.SetStreamHandler(interopEchoID, func(s lpnetwork.Stream) { io.Copy(s, s); s.Close() })
				us := defaultHost(t, order.opts...)
				gid := peer.ID(gh.ID())
				for round := range 2 {
					if err := us.Connect(ctx, peer.AddrInfo{ID: gid, Addrs: gh.Addrs()}); err != nil {
						t.Fatalf("round %d: connecting to a %s-only go-libp2p host: %v", round, security, err)
					}
					checkSecurity(t, us, gid, securityIDs[security])
					exchange(ctx, t, us, gid)
					if _, err := goPing(ctx, gh, us.ID()); err != nil {
						t.Errorf("round %d: go-libp2p pinging us: %v", round, err)
					}
					us.Network().ClosePeer(gid)
				}
			})
		}
	}
}

// goPing pings p from gh over an existing connection.
func goPing(ctx context.Context, gh lphost.Host, p peer.ID) (time.Duration, error) {
	r := <-lpping.Ping(ctx, gh, lppeer.ID(p))
	return r.RTT, r.Error
}

const interopEchoID = "/interop/echo/1.0.0"

// checkSecurity checks that us has one connection to p, secured with want.
func checkSecurity(t *testing.T, us *p2pnet.Host, p peer.ID, want protocol.ID) {
	t.Helper()
	conns := us.Network().ConnsToPeer(p)
	if len(conns) != 1 {
		t.Fatalf("%d connections to %s; want 1", len(conns), p)
	}
	if got := conns[0].ConnState().Security; got != want {
		t.Errorf("connection secured with %s; want %s", got, want)
	}
}

// exchange sends 256 KiB through p's echo service and checks what comes
// back, then pings p.
func exchange(ctx context.Context, t *testing.T, us *p2pnet.Host, p peer.ID) {
	t.Helper()
	s, err := us.NewStream(ctx, p, interopEchoID)
	if err != nil {
		t.Fatalf("echo stream: %v", err)
	}
	defer s.Close()
	msg := make([]byte, 256<<10)
	rand.Read(msg)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(msg)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(s)
	if err := <-werr; err != nil {
		t.Fatalf("echo write: %v", err)
	}
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d of %d bytes back, equal %v, %v", len(got), len(msg), bytes.Equal(got, msg), err)
	}
	if _, err := ping.PingOnce(ctx, us, p); err != nil {
		t.Errorf("ping: %v", err)
	}
}
