package interop

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"

	"github.com/libp2p/go-libp2p"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpprotocol "github.com/libp2p/go-libp2p/core/protocol"
	lprcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// refusedID is a protocol whose limits allow no inbound stream.
const refusedID = "/interop/refused/1.0.0"

// TestErrorCodeValues: p2pnet's error codes are go-libp2p's.
func TestErrorCodeValues(t *testing.T) {
	if uint32(network.StreamResourceLimitExceeded) != uint32(lpnetwork.StreamResourceLimitExceeded) ||
		uint32(network.StreamCodeOutOfRange) != uint32(lpnetwork.StreamCodeOutOfRange) ||
		uint32(network.ConnResourceLimitExceeded) != uint32(lpnetwork.ConnResourceLimitExceeded) ||
		uint32(network.ConnCodeOutOfRange) != uint32(lpnetwork.ConnCodeOutOfRange) {
		t.Fatal("error codes differ from go-libp2p's")
	}
}

// ourRefusingHost is a p2pnet listener whose limits change with limit.
func ourRefusingHost(t *testing.T, security string, limit func(*rcmgr.Limits)) *p2pnet.Host {
	t.Helper()
	l := rcmgr.DefaultLimits()
	limit(&l)
	rm, err := rcmgr.New(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	h, err := p2pnet.New(
		p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		p2pnet.Security(securityIDs[security]),
		p2pnet.ResourceManager(rm),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestGoDialerSeesRefusalCodes: a go-libp2p dialer refused by a p2pnet
// listener gets go-libp2p's typed error with the code: a stream whose
// protocol allows no inbound stream fails with a remote
// *network.StreamError of code StreamResourceLimitExceeded (0x1002); a
// connection whose peer the resource manager refuses after the handshake
// fails with a remote *network.ConnError of code
// ConnResourceLimitExceeded (0x1001).
func TestGoDialerSeesRefusalCodes(t *testing.T) {
	for _, security := range securities {
		t.Run(security+"/stream", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			us := ourRefusingHost(t, security, func(l *rcmgr.Limits) {
				lim := l.ProtocolDefault
				lim.StreamsInbound = 0
				l.Protocol = map[protocol.ID]rcmgr.Limit{refusedID: lim}
			})
			us.SetStreamHandler(refusedID, func(s network.Stream) { s.Reset() })
			gh := goHost(t, security)
			uid := lppeer.ID(us.ID())
			if err := gh.Connect(ctx, lppeer.AddrInfo{ID: uid, Addrs: us.Addrs()}); err != nil {
				t.Fatal(err)
			}
			s, err := gh.NewStream(ctx, uid, refusedID)
			if err == nil {
				_, err = s.Read(make([]byte, 1))
			}
			var se *lpnetwork.StreamError
			if !errors.As(err, &se) || se.ErrorCode != lpnetwork.StreamResourceLimitExceeded || !se.Remote {
				t.Fatalf("go-libp2p's stream refused by p2pnet: %v; want a remote StreamError with code 0x1002", err)
			}
			t.Logf("go-libp2p dialer sees: %v", err)
		})
		t.Run(security+"/connection", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			us := ourRefusingHost(t, security, func(l *rcmgr.Limits) { l.PeerDefault.ConnsInbound = 0 })
			gh := goHost(t, security)
			uid := lppeer.ID(us.ID())
			gh.Peerstore().AddAddrs(uid, us.Addrs(), time.Minute)
			// The dial succeeds: the dialer's handshake ends before the
			// listener's resource manager sees the peer. The refusal
			// arrives on the connection.
			c, err := gh.Network().DialPeer(ctx, uid)
			if err == nil {
				var s lpnetwork.Stream
				if s, err = c.NewStream(ctx); err == nil {
					_, err = s.Read(make([]byte, 1))
				}
			}
			var ce *lpnetwork.ConnError
			if !errors.As(err, &ce) || ce.ErrorCode != lpnetwork.ConnResourceLimitExceeded || !ce.Remote {
				t.Fatalf("go-libp2p's connection refused by p2pnet: %v; want a remote ConnError with code 0x1001", err)
			}
			t.Logf("go-libp2p dialer sees: %v", err)
		})
	}
}

// goRefusingHost is a go-libp2p listener on loopback TCP speaking the
// named security protocol, with a resource manager under cfg.
func goRefusingHost(t *testing.T, security string, cfg lprcmgr.PartialLimitConfig) peer.AddrInfo {
	t.Helper()
	rm, err := lprcmgr.NewResourceManager(lprcmgr.NewFixedLimiter(cfg.Build(lprcmgr.DefaultLimits.AutoScale())))
	if err != nil {
		t.Fatal(err)
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.ResourceManager(rm),
	}
	switch security {
	case "noise":
		opts = append(opts, libp2p.Security(lpnoise.ID, lpnoise.New))
	case "tls":
		opts = append(opts, libp2p.Security(lptls.ID, lptls.New))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(refusedID, func(s lpnetwork.Stream) { s.Reset() })
	return peer.AddrInfo{ID: peer.ID(h.ID()), Addrs: h.Addrs()}
}

// TestOurDialerSeesGoRefusalCodes: a p2pnet dialer whose stream go-libp2p
// refuses for its protocol's limits gets an error matching
// network.ErrResourceLimitExceeded and network.ErrReset, a remote
// *yamux.StreamError of code 0x1002. (For connections see
// TestOurDialerRefusedConnectionByGo.)
func TestOurDialerSeesGoRefusalCodes(t *testing.T) {
	for _, security := range securities {
		t.Run(security, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ai := goRefusingHost(t, security, lprcmgr.PartialLimitConfig{
				Protocol: map[lpprotocol.ID]lprcmgr.ResourceLimits{refusedID: {StreamsInbound: lprcmgr.BlockAllLimit}},
			})
			us := defaultHost(t, p2pnet.Security(securityIDs[security]))
			if err := us.Connect(ctx, ai); err != nil {
				t.Fatal(err)
			}
			s, err := us.NewStream(ctx, ai.ID, refusedID)
			if err == nil {
				_, err = s.Read(make([]byte, 1))
			}
			if !errors.Is(err, network.ErrResourceLimitExceeded) || !errors.Is(err, network.ErrReset) {
				t.Fatalf("p2pnet's stream refused by go-libp2p: %v; want ErrResourceLimitExceeded and ErrReset", err)
			}
			if se, ok := errors.AsType[*yamux.StreamError](err); !ok || se.Code != 0x1002 || !se.Remote {
				t.Fatalf("p2pnet's stream refused by go-libp2p: %v; want a remote yamux.StreamError with code 0x1002", err)
			}
			t.Logf("p2pnet dialer sees: %v", err)
		})
	}
}

// TestOurDialerRefusedConnectionByGo records what a p2pnet dialer sees
// when go-libp2p's resource manager refuses its peer after the handshake:
// go-libp2p v0.51.0 closes the connection without a GoAway
// (p2p/net/upgrader/upgrader.go, the SetPeer failure), so there is no code
// to report; the test asserts only that the refusal is not silent, and
// logs the error.
func TestOurDialerRefusedConnectionByGo(t *testing.T) {
	for _, security := range securities {
		t.Run(security, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ai := goRefusingHost(t, security, lprcmgr.PartialLimitConfig{
				PeerDefault: lprcmgr.ResourceLimits{ConnsInbound: lprcmgr.BlockAllLimit},
			})
			us := defaultHost(t, p2pnet.Security(securityIDs[security]))
			err := us.Connect(ctx, ai)
			if err == nil {
				var s network.Stream
				if s, err = us.NewStream(ctx, ai.ID, refusedID); err == nil {
					_, err = s.Read(make([]byte, 1))
				}
			}
			if err == nil {
				t.Fatal("a connection go-libp2p refused worked")
			}
			t.Logf("p2pnet dialer sees (matches ErrResourceLimitExceeded: %v): %v", errors.Is(err, network.ErrResourceLimitExceeded), err)
		})
	}
}
