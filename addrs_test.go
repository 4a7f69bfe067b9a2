package p2pnet_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/netns"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TestDefaultListenAddrs: a host with the default listen addresses
// announces an /ip4/…/tcp address (an /ip4/0.0.0.0 listener is an IPv4
// socket, not a dual-stack one announced as /ip6/::), an /ip6 one, QUIC
// for both, nothing unspecified, nothing twice, in the same order on
// every call. It binds wildcard addresses, so it runs in a network
// namespace of its own, where the only interface is loopback.
func TestDefaultListenAddrs(t *testing.T) {
	netns.Run(t, func() {
		h, err := p2pnet.New()
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		addrs := h.Addrs()
		has := func(prefix, suffix string) bool {
			return slices.ContainsFunc(addrs, func(a ma.Multiaddr) bool {
				s := a.String()
				return strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix) &&
					strings.Count(s, "/") == strings.Count(prefix+"/N"+suffix, "/")
			})
		}
		for _, want := range [][2]string{
			{"/ip4/127.0.0.1/tcp", ""}, {"/ip6/::1/tcp", ""},
			{"/ip4/127.0.0.1/udp", "/quic-v1"}, {"/ip6/::1/udp", "/quic-v1"},
		} {
			if !has(want[0], want[1]) {
				t.Errorf("Addrs %v: no %s/N%s", addrs, want[0], want[1])
			}
		}
		for i, a := range addrs {
			if manet.IsIPUnspecified(a) || manet.IsIP6LinkLocal(a) {
				t.Errorf("Addrs announces %s", a)
			}
			if slices.ContainsFunc(addrs[:i], a.Equal) {
				t.Errorf("Addrs has %s twice", a)
			}
		}
		// TCP before QUIC, IPv4 before IPv6 within each.
		kinds := make([]string, len(addrs))
		for i, a := range addrs {
			kinds[i] = a[0].Protocol().Name + "/" + a[1].Protocol().Name
		}
		if want := []string{"ip4/tcp", "ip6/tcp", "ip4/udp", "ip6/udp"}; !slices.Equal(kinds, want) {
			t.Errorf("order %v; want %v", kinds, want)
		}
		for range 10 {
			if again := h.Addrs(); !slices.EqualFunc(again, addrs, ma.Multiaddr.Equal) {
				t.Fatalf("Addrs changed order: %v then %v", addrs, again)
			}
		}
		// The IPv4 TCP address really takes connections over IPv4.
		ta, err := manet.ToNetAddr(addrs[0])
		if err != nil {
			t.Error(err)
			return
		}
		c, err := net.DialTimeout("tcp4", ta.String(), 2*time.Second)
		if err != nil {
			t.Errorf("dialing %s: %v", addrs[0], err)
			return
		}
		c.Close()
	})
}

// TestListenAddrsAddUp: ListenAddrs and ListenAddrStrings given more than
// once listen on every address given.
func TestListenAddrsAddUp(t *testing.T) {
	h, err := p2pnet.New(
		p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		p2pnet.ListenAddrs(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.Network().ListenAddresses(); len(got) != 2 {
		t.Errorf("listening on %v; want a TCP and a QUIC address", got)
	}
}

// TestListenErrorsNamed: every explicitly given address that fails makes
// New fail, and the error names each of them.
func TestListenErrorsNamed(t *testing.T) {
	// A port taken by a socket without SO_REUSEPORT cannot be shared.
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	inUse := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(taken.Addr().String(), "127.0.0.1:")
	noTransport := "/ip4/127.0.0.1/udp/0/webrtc-direct"
	_, err = p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", inUse, noTransport))
	if err == nil {
		t.Fatal("New succeeded with two addresses it cannot listen on")
	}
	for _, a := range []string{inUse, noTransport} {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not name %s", err, a)
		}
	}
}

// TestNilHandlerRefused: a nil handler panics where it is registered,
// not later in a goroutine serving a peer.
func TestNilHandlerRefused(t *testing.T) {
	h := newHost(t)
	for name, register := range map[string]func(){
		"SetStreamHandler": func() { h.SetStreamHandler("/nil/1.0.0", nil) },
		"SetStreamHandlerMatch handler": func() {
			h.SetStreamHandlerMatch("/nil/1.0.0", func(protocol.ID) bool { return true }, nil)
		},
		"SetStreamHandlerMatch match": func() { h.SetStreamHandlerMatch("/nil/1.0.0", nil, echo) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s with nil: no panic", name)
				}
			}()
			register()
		}()
	}
	if slices.Contains(h.Protocols(), "/nil/1.0.0") {
		t.Errorf("a nil handler was registered: %v", h.Protocols())
	}
}

// TestPerfOnlyWhenEnabled: the library host does not serve perf unless
// asked.
func TestPerfOnlyWhenEnabled(t *testing.T) {
	a, plain, withPerf := newHost(t), newHost(t), newHost(t, p2pnet.EnablePerf())
	if slices.Contains(plain.Protocols(), perf.ID) {
		t.Errorf("a default host serves perf: %v", plain.Protocols())
	}
	if !slices.Contains(withPerf.Protocols(), perf.ID) {
		t.Errorf("EnablePerf host does not serve perf: %v", withPerf.Protocols())
	}
	connect(t, a, plain)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := perf.Run(ctx, a, plain.ID(), 1024, 1024, nil); err == nil {
		t.Error("perf against a host without EnablePerf succeeded")
	}
}
