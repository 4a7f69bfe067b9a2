package interop

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/autonat"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpautonat "github.com/libp2p/go-libp2p/p2p/host/autonat"
	lpautonatv2 "github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	lpquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// AutoNAT between p2pnet and go-libp2p on loopback. p2pnet counts
// 127.0.0.0/8 as public (PublicCIDRs / ServerPublic / ClientPublic);
// go-libp2p's autonatv2 has AllowPrivateAddrs for the same. Each host
// listens on 127.0.0.1 and on 127.0.0.2 (both loopback on Linux): a
// connection comes from 127.0.0.1, so a check of the 127.0.0.2 address
// is one of another IP than the observed one, and takes the spec's
// amplification-attack path (the server asks for 30 to 100 kB of dial
// data before it dials).

var loopbackPublic = autonat.Public{netip.MustParsePrefix("127.0.0.0/8")}

// goAutoNATHost is a go-libp2p host on TCP (without port reuse, so its
// connections come from the kernel's choice of source, 127.0.0.1) and
// QUIC, listening on listen.
func goAutoNATHost(t *testing.T, listen ...string) lphost.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(lptcp.NewTCPTransport, lptcp.DisableReuseport()),
		libp2p.Transport(lpquic.NewTransport),
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// goEvents records the go-libp2p autonatv2 server's completed requests.
type goEvents chan lpautonatv2.EventDialRequestCompleted

func (e goEvents) CompletedRequest(ev lpautonatv2.EventDialRequestCompleted) {
	select {
	case e <- ev:
	default: // the host-level checks at the end are not inspected
	}
}
func (goEvents) ClientCompletedRequest([]lpautonatv2.Request, lpautonatv2.Result, error) {}

// goAutoNATv2 starts go-libp2p's AutoNAT v2 (client and server) on h,
// dialing back from a host of its own, private addresses allowed.
func goAutoNATv2(t *testing.T, h lphost.Host, events goEvents) *lpautonatv2.AutoNAT {
	t.Helper()
	dialer, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableMetrics(),
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}))
	if err != nil {
		t.Fatal(err)
	}
	opts := []lpautonatv2.AutoNATOption{lpautonatv2.AllowPrivateAddrs, lpautonatv2.WithServerRateLimit(100, 100, 100, 2)}
	if events != nil {
		opts = append(opts, lpautonatv2.WithMetricsTracer(events))
	}
	an, err := lpautonatv2.New(dialer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := an.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(an.Close) // closes the dialer too
	return an
}

// ourAutoNATHost is a p2pnet host listening on listen, loopback public,
// with options opts.
func ourAutoNATHost(t *testing.T, listen []string, opts ...p2pnet.Option) *p2pnet.Host {
	t.Helper()
	h, err := p2pnet.New(append([]p2pnet.Option{p2pnet.ListenAddrStrings(listen...), p2pnet.PublicCIDRs("127.0.0.0/8")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// ourAutoNATServer is a p2pnet host serving AutoNAT v1 and v2 with
// loopback public, its dial backs from a host of its own, reporting each
// request it served on served (which must have room).
func ourAutoNATServer(t *testing.T, served chan<- autonat.Served) *p2pnet.Host {
	t.Helper()
	h := ourAutoNATHost(t, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, p2pnet.DisableAutoNAT())
	dialer, err := p2pnet.New(p2pnet.ListenAddrs(), p2pnet.DisableAutoNAT())
	if err != nil {
		t.Fatal(err)
	}
	s := autonat.NewServer(h, dialer, autonat.ServerPublic(loopbackPublic), autonat.RateLimits(100, 100, 100),
		autonat.OnServed(func(s autonat.Served) { served <- s }))
	t.Cleanup(func() {
		s.Close()
		dialer.Close()
	})
	return h
}

// addrOf returns the address of addrs with the given IP and transport
// ("tcp", "quic-v1").
func addrOf(t *testing.T, addrs []ma.Multiaddr, ip, transport string) ma.Multiaddr {
	t.Helper()
	for _, a := range addrs {
		v, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil || v != ip {
			continue
		}
		last := a[len(a)-1].Protocol().Name
		if last == transport || (transport == "tcp" && a[len(a)-1].Code() == ma.P_TCP) {
			return a
		}
	}
	t.Fatalf("no %s address on %s among %v", transport, ip, addrs)
	return nil
}

// closedPort is a TCP address on 127.0.0.1 that nothing listens on: the
// port of a listener the test opened and closed.
func closedPort(t *testing.T) ma.Multiaddr {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.DisableAutoNAT())
	if err != nil {
		t.Fatal(err)
	}
	a := h.Addrs()[0]
	h.Close()
	return a
}

// TestAutoNATv2GoServer: p2pnet's client asks go-libp2p's autonatv2
// server. Our listen address is reachable (the nonce comes back over a
// connection on the address's transport, which Check verifies); a port
// nobody listens on is unreachable; our address on 127.0.0.2, another IP
// than go-libp2p observes, is reachable after we paid the dial data
// go-libp2p asked for. Then a p2pnet host with its default AutoNAT
// client learns Public from go-libp2p's server alone.
func TestAutoNATv2GoServer(t *testing.T) {
	events := make(goEvents, 16)
	g := goAutoNATHost(t, "/ip4/127.0.0.1/tcp/0")
	goAutoNATv2(t, g, events)
	us := ourAutoNATHost(t, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, p2pnet.DisableAutoNAT())
	c := autonat.NewClient(us)
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := us.Connect(ctx, peer.AddrInfo{ID: peer.ID(g.ID()), Addrs: goAddrs(g)}); err != nil {
		t.Fatal(err)
	}
	// Our end of the connection is where go-libp2p sees us (no NAT).
	for _, c := range us.Network().ConnsToPeer(peer.ID(g.ID())) {
		if ip, _ := c.LocalMultiaddr().ValueForProtocol(ma.P_IP4); ip != "127.0.0.1" {
			t.Fatalf("we connected to go-libp2p from %v; the test wants 127.0.0.1", c.LocalMultiaddr())
		}
	}
	for _, tc := range []struct {
		name      string
		addr      ma.Multiaddr
		reachable bool
		dialData  bool
	}{
		{"tcp", addrOf(t, us.Addrs(), "127.0.0.1", "tcp"), true, false},
		{"quic", addrOf(t, us.Addrs(), "127.0.0.1", "quic-v1"), true, false},
		{"closed port", closedPort(t), false, false},
		{"another IP", addrOf(t, us.Addrs(), "127.0.0.2", "tcp"), true, true},
	} {
		r, err := c.Check(ctx, peer.ID(g.ID()), tc.addr)
		if err != nil || r.Reachable != tc.reachable || !r.Addr.Equal(tc.addr) {
			t.Errorf("%s: Check(%v) = %+v, %v; want reachable %v", tc.name, tc.addr, r, err, tc.reachable)
			continue
		}
		ev := <-events
		if !ev.DialedAddr.Equal(tc.addr) || ev.DialDataRequired != tc.dialData || ev.Error != nil {
			t.Errorf("%s: go-libp2p's server: dialed %v, dial data %v, error %v; want %v, %v", tc.name, ev.DialedAddr, ev.DialDataRequired, ev.Error, tc.addr, tc.dialData)
		}
	}

	// The host's own client: Public from go-libp2p's checks.
	h := ourAutoNATHost(t, []string{"/ip4/127.0.0.1/tcp/0"})
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := h.Connect(ctx, peer.AddrInfo{ID: peer.ID(g.ID()), Addrs: goAddrs(g)}); err != nil {
		t.Fatal(err)
	}
	for r := network.ReachabilityUnknown; r != network.ReachabilityPublic; {
		select {
		case ev := <-sub.Out():
			r = ev.(event.EvtLocalReachabilityChanged).Reachability
		case <-ctx.Done():
			t.Fatalf("the host learned no Public reachability from go-libp2p (now %v)", h.Reachability())
		}
	}
}

// goAddrs returns g's listen addresses as p2pnet multiaddrs.
func goAddrs(g lphost.Host) []ma.Multiaddr {
	return slices.Clone(g.Addrs())
}

// goReachability asks, from go-libp2p's client an, about reqs. go-libp2p's
// client learns which peers serve AutoNAT v2 on a goroutine of its own
// that gives no sign when it has: the test asks again while it answers
// ErrNoPeers, on a 10 ms ticker, until ctx ends.
func goReachability(ctx context.Context, t *testing.T, an *lpautonatv2.AutoNAT, reqs ...lpautonatv2.Request) (lpautonatv2.Result, error) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := an.GetReachability(ctx, reqs)
		if !errors.Is(err, lpautonatv2.ErrNoPeers) {
			return r, err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return r, err
		}
	}
}

// TestAutoNATv2GoClient: go-libp2p's autonatv2 client asks p2pnet's
// server. go-libp2p asks a server once per two minutes, so the three
// checks go to three p2pnet servers: go-libp2p's listen address is
// Public, a port nobody listens on Private, and its address on
// 127.0.0.2 is Public after our server collected the dial data. Then a
// p2pnet host with EnableAutoNATService serves it too.
func TestAutoNATv2GoClient(t *testing.T) {
	g := goAutoNATHost(t, "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/0")
	an := goAutoNATv2(t, g, nil)
	served := make(chan autonat.Served, 16)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for range 3 {
		s := ourAutoNATServer(t, served)
		if err := g.Connect(ctx, lppeer.AddrInfo{ID: lppeer.ID(s.ID()), Addrs: s.Addrs()}); err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Network().ConnsToPeer(peer.ID(g.ID())) {
			if ip, _ := c.RemoteMultiaddr().ValueForProtocol(ma.P_IP4); ip != "127.0.0.1" {
				t.Fatalf("we see go-libp2p at %v; the test wants 127.0.0.1", c.RemoteMultiaddr())
			}
		}
	}
	for _, tc := range []struct {
		name     string
		addr     ma.Multiaddr
		want     lpnetwork.Reachability
		dialData bool
	}{
		{"listen address", addrOf(t, g.Addrs(), "127.0.0.1", "tcp"), lpnetwork.ReachabilityPublic, false},
		{"closed port", closedPort(t), lpnetwork.ReachabilityPrivate, false},
		{"another IP", addrOf(t, g.Addrs(), "127.0.0.2", "tcp"), lpnetwork.ReachabilityPublic, true},
	} {
		r, err := goReachability(ctx, t, an, lpautonatv2.Request{Addr: tc.addr, SendDialData: true})
		if err != nil || r.Reachability != tc.want || !r.Addr.Equal(tc.addr) {
			t.Errorf("%s: go-libp2p's GetReachability(%v) = %+v, %v; want %v", tc.name, tc.addr, r, err, tc.want)
			continue
		}
		s := <-served
		for s.V1 { // go-libp2p's own v1 client, should it have asked
			s = <-served
		}
		if !s.Addr.Equal(tc.addr) || (s.DialData >= autonat.MinDialData) != tc.dialData || s.Reachable != (tc.want == lpnetwork.ReachabilityPublic) {
			t.Errorf("%s: our server served %+v; want %v dialed, dial data %v", tc.name, s, tc.addr, tc.dialData)
		}
	}

	// The host option: EnableAutoNATService.
	h := ourAutoNATHost(t, []string{"/ip4/127.0.0.1/tcp/0"}, p2pnet.EnableAutoNATService(), p2pnet.DisableAutoNAT())
	g2 := goAutoNATHost(t, "/ip4/127.0.0.1/tcp/0")
	an2 := goAutoNATv2(t, g2, nil)
	if err := g2.Connect(ctx, lppeer.AddrInfo{ID: lppeer.ID(h.ID()), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, g2.Addrs(), "127.0.0.1", "tcp")
	if r, err := goReachability(ctx, t, an2, lpautonatv2.Request{Addr: addr}); err != nil || r.Reachability != lpnetwork.ReachabilityPublic {
		t.Errorf("go-libp2p's check with EnableAutoNATService: %+v, %v; want Public", r, err)
	}
}

// TestAutoNATv1GoClient: go-libp2p's AutoNAT v1 client asks p2pnet's
// v1 server. Its listen address: OK, and our server dialed that address;
// a port nobody listens on: E_DIAL_ERROR; only an address of another IP
// than the one we see it at: E_DIAL_REFUSED, nothing dialed (v1 has no
// dial data; the spec forbids such dials).
func TestAutoNATv1GoClient(t *testing.T) {
	served := make(chan autonat.Served, 16)
	s := ourAutoNATServer(t, served)
	g := goAutoNATHost(t, "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.2/tcp/0")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := g.Connect(ctx, lppeer.AddrInfo{ID: lppeer.ID(s.ID()), Addrs: s.Addrs()}); err != nil {
		t.Fatal(err)
	}
	listen, other, closed := addrOf(t, g.Addrs(), "127.0.0.1", "tcp"), addrOf(t, g.Addrs(), "127.0.0.2", "tcp"), closedPort(t)
	ask := func(addrs ...ma.Multiaddr) error {
		return lpautonat.NewAutoNATClient(g, func() []ma.Multiaddr { return addrs }, nil).DialBack(ctx, lppeer.ID(s.ID()))
	}
	if err := ask(listen); err != nil {
		t.Errorf("v1 check of go-libp2p's listen address: %v; want OK", err)
	} else if x := <-served; !x.V1 || !x.Reachable || !x.Addr.Equal(listen) {
		t.Errorf("our server served %+v; want %v reached", x, listen)
	}
	if err := ask(closed); !lpautonat.IsDialError(err) {
		t.Errorf("v1 check of a closed port: %v; want E_DIAL_ERROR", err)
	} else if x := <-served; !x.V1 || x.Reachable || !x.Addr.Equal(closed) {
		t.Errorf("our server served %+v; want %v not reached", x, closed)
	}
	if err := ask(other); !lpautonat.IsDialRefused(err) {
		t.Errorf("v1 check of another IP only: %v; want E_DIAL_REFUSED", err)
	} else if x := <-served; x.Addr != nil {
		t.Errorf("our server dialed another IP than the requester's: %+v", x)
	}
}

// TestAutoNATv1GoServer: p2pnet's v1 client asks go-libp2p's v1 server
// (EnableNATService). go-libp2p's v1 server dials only public addresses
// and has no setting for private ones, so on loopback it refuses, with
// E_DIAL_REFUSED, which our client takes as no evidence (ErrRejected);
// the namespace lab has the dials (internal/netlab).
func TestAutoNATv1GoServer(t *testing.T) {
	g, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.EnableNATService(),
		libp2p.DisableMetrics(), libp2p.ResourceManager(&lpnetwork.NullResourceManager{}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	us := ourAutoNATHost(t, []string{"/ip4/127.0.0.1/tcp/0"}, p2pnet.DisableAutoNAT())
	c := autonat.NewClient(us, autonat.ClientPublic(loopbackPublic))
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := us.Connect(ctx, peer.AddrInfo{ID: peer.ID(g.ID()), Addrs: goAddrs(g)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CheckV1(ctx, peer.ID(g.ID()), us.Addrs()[0]); !errors.Is(err, autonat.ErrRejected) {
		t.Fatalf("CheckV1 against go-libp2p on loopback: %v; want ErrRejected (E_DIAL_REFUSED)", err)
	}
}
