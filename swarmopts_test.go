package p2pnet_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/swarm"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// randomPeer returns a peer ID nobody holds the key of.
func randomPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := ic.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// silentListener accepts TCP connections on loopback and never answers,
// so that a dial to it waits in its security negotiation until a timeout
// ends it. It returns the listener's address.
func silentListener(t *testing.T) ma.Multiaddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	a, err := manet.FromNetAddr(l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDialTimeoutOptions: DialPeerTimeout bounds a dial as a whole,
// DialTimeout each address (loopback counts as local), and a timeout the
// context sets wins over DialPeerTimeout. The dial goes to a listener that
// never answers, so only the timeout under test can end it: the others
// are an hour, and the defaults (5 s for a local address, 60 s for the
// whole dial) are far above the one under test. Exact durations are the
// swarm's tests' business (TestDialTimeouts, under synctest); here the
// point is that the options reach the swarm.
func TestDialTimeoutOptions(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name string
		opts []p2pnet.Option
		ctx  func(context.Context) context.Context
	}{
		{"DialPeerTimeout", []p2pnet.Option{p2pnet.DialPeerTimeout(timeout), p2pnet.DialTimeout(time.Hour, time.Hour)}, nil},
		{"DialTimeout local", []p2pnet.Option{p2pnet.DialTimeout(time.Hour, timeout)}, nil},
		{"context beats DialPeerTimeout", []p2pnet.Option{p2pnet.DialPeerTimeout(time.Hour), p2pnet.DialTimeout(time.Hour, time.Hour)},
			func(ctx context.Context) context.Context { return network.WithDialPeerTimeout(ctx, timeout) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.opts...)
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			start := time.Now()
			err := h.Connect(ctx, peer.AddrInfo{ID: randomPeer(t), Addrs: []ma.Multiaddr{silentListener(t)}})
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Connect to a silent listener: %v; want context.DeadlineExceeded", err)
			}
			if took < timeout || took >= swarm.DefaultDialTimeoutLocal {
				t.Errorf("Connect failed after %v; want %v (the default would be %v or more)", took, timeout, swarm.DefaultDialTimeoutLocal)
			}
		})
	}
}

// TestDialBackoffOption: by default an address that refused a dial is in
// backoff for the next one; DialBackoff(0, 0, 0) dials it again.
func TestDialBackoffOption(t *testing.T) {
	// A port nothing listens on refuses at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusing, err := manet.FromNetAddr(l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	for _, tt := range []struct {
		name        string
		opts        []p2pnet.Option
		wantBackoff bool
	}{
		{"default", nil, true},
		{"hour", []p2pnet.Option{p2pnet.DialBackoff(time.Hour, 0, time.Hour)}, true},
		{"off", []p2pnet.Option{p2pnet.DialBackoff(0, 0, 0)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, tt.opts...)
			pi := peer.AddrInfo{ID: randomPeer(t), Addrs: []ma.Multiaddr{refusing}}
			if err := h.Connect(t.Context(), pi); err == nil || errors.Is(err, swarm.ErrDialBackoff) {
				t.Fatalf("first dial: %v; want a refusal", err)
			}
			err := h.Connect(t.Context(), pi)
			if err == nil {
				t.Fatal("second dial succeeded")
			}
			if got := errors.Is(err, swarm.ErrDialBackoff); got != tt.wantBackoff {
				t.Errorf("second dial: %v; in backoff %v, want %v", err, got, tt.wantBackoff)
			}
		})
	}
}

// TestBlackHoleDetectionOptions: the options reach the swarm's filters.
func TestBlackHoleDetectionOptions(t *testing.T) {
	status := func(h *p2pnet.Host) (udp, ipv6 swarm.BlackHoleStatus) {
		return h.Network().(*swarm.Swarm).BlackHoleStatus()
	}
	udp, ipv6 := status(newHost(t))
	if !udp.Enabled || udp.Window != swarm.DefaultBlackHoleWindow || !ipv6.Enabled || ipv6.Window != swarm.DefaultBlackHoleWindow {
		t.Errorf("default filters: UDP %+v, IPv6 %+v", udp, ipv6)
	}
	udp, ipv6 = status(newHost(t, p2pnet.UDPBlackHoleDetection(false, 0, 0), p2pnet.IPv6BlackHoleDetection(true, 10, 2)))
	if udp.Enabled {
		t.Errorf("UDP filter %+v; want it disabled", udp)
	}
	if !ipv6.Enabled || ipv6.Window != 10 || ipv6.State != swarm.BlackHoleProbing {
		t.Errorf("IPv6 filter %+v; want enabled with a window of 10", ipv6)
	}
}

// TestSwarmOptionsErrors: New refuses out-of-range dial settings.
func TestSwarmOptionsErrors(t *testing.T) {
	for name, o := range map[string]p2pnet.Option{
		"DialPeerTimeout zero":         p2pnet.DialPeerTimeout(0),
		"DialTimeout negative public":  p2pnet.DialTimeout(-time.Second, time.Second),
		"DialTimeout zero local":       p2pnet.DialTimeout(time.Second, 0),
		"DialBackoff base above max":   p2pnet.DialBackoff(time.Minute, 0, time.Second),
		"DialBackoff negative coef":    p2pnet.DialBackoff(0, -time.Second, time.Second),
		"UDP black hole min above n":   p2pnet.UDPBlackHoleDetection(true, 5, 6),
		"IPv6 black hole empty window": p2pnet.IPv6BlackHoleDetection(true, 0, 0),
	} {
		if h, err := p2pnet.New(p2pnet.ListenAddrStrings(), o); err == nil {
			h.Close()
			t.Errorf("%s accepted", name)
		}
	}
}
