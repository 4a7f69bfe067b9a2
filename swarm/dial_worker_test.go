package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/testtransport"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

var (
	errBoom = errors.New("boom")
	errA    = errors.New("error A")
	errB    = errors.New("error B")
	errC    = errors.New("error C")
)

// dialLogOffsets returns the address and start time (relative to start)
// of every dial of tpt.
func dialLogOffsets(tpt *testtransport.Transport, start time.Time) []string {
	var out []string
	for _, d := range tpt.DialLog() {
		out = append(out, fmt.Sprintf("%s@%v", d.Addr, d.At.Sub(start)))
	}
	return out
}

func TestDialDedupConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		b.listen(t)
		// first fails at 300ms; second, due at 250ms, connects at 350ms.
		first, second := ma.StringCast("/ip4/1.2.3.4/tcp/1"), ma.StringCast("/ip4/1.2.3.4/tcp/2")
		a.learn(b.id, first, second)
		a.tpt.SetBehaviour(first, testtransport.Behaviour{Delay: 300 * ms, Err: errBoom})
		a.tpt.SetBehaviour(second, testtransport.Behaviour{Delay: 100 * ms})

		start := time.Now()
		conns := make([]network.Conn, 10)
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				c, err := a.s.DialPeer(t.Context(), b.id)
				if err != nil {
					t.Error(err)
				}
				conns[i] = c
			})
		}
		wg.Wait()
		if d := time.Since(start); d != 350*ms {
			t.Errorf("the dials took %v, want 350ms", d)
		}
		for _, addr := range []ma.Multiaddr{first, second} {
			if n := a.tpt.Dials(addr); n != 1 {
				t.Errorf("%d dials of %s, want 1", n, addr)
			}
		}
		for i, c := range conns {
			if c != conns[0] {
				t.Errorf("caller %d got another connection", i)
			}
		}
		if n := len(a.s.ConnsToPeer(b.id)); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
}

func TestDialCancelledCallerDoesNotCancelOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		b.listen(t)
		addr := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		a.learn(b.id, addr)
		release := make(chan struct{})
		a.tpt.SetBehaviour(addr, testtransport.Behaviour{Block: release})

		ctx1, cancel1 := context.WithCancel(t.Context())
		err1 := make(chan error, 1)
		go func() {
			_, err := a.s.DialPeer(ctx1, b.id)
			err1 <- err
		}()
		// The first caller starts the dial.
		synctest.Wait()
		conn2 := make(chan network.Conn, 1)
		go func() {
			c, err := a.s.DialPeer(t.Context(), b.id)
			if err != nil {
				t.Error(err)
			}
			conn2 <- c
		}()
		synctest.Wait()
		cancel1()
		if err := <-err1; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller got %v, want context.Canceled", err)
		}
		synctest.Wait()
		close(release)
		if c := <-conn2; c == nil || c.RemotePeer() != b.id {
			t.Fatalf("the other caller got %v", c)
		}
		if n := a.tpt.Dials(addr); n != 1 {
			t.Errorf("%d dials, want 1", n)
		}
	})
}

func TestDialWorkerStopsWhenNoCallerWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		b.listen(t)
		first, second := ma.StringCast("/ip4/1.2.3.4/tcp/1"), ma.StringCast("/ip4/1.2.3.4/tcp/2")
		a.learn(b.id, first, second)
		a.tpt.SetBehaviour(first, testtransport.Behaviour{Delay: time.Hour})

		ctx, cancel := context.WithTimeout(t.Context(), 100*ms)
		defer cancel()
		if _, err := a.s.DialPeer(ctx, b.id); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := a.tpt.Dials(second); n != 0 {
			t.Errorf("%s was dialed after the last caller left", second)
		}
		if conns := a.s.Conns(); len(conns) != 0 {
			t.Errorf("connections after the last caller left: %v", conns)
		}
	})
}

func TestDialOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		all := addrs("/ip4/1.2.3.4/tcp/1", "/ip6/2600::1/tcp/1", "/ip4/1.2.3.4/udp/1/quic-v1", "/ip6/2600::1/udp/1/quic-v1")
		a.learn(b.id, all...)
		release := make(chan struct{})
		for _, addr := range all {
			a.tpt.SetBehaviour(addr, testtransport.Behaviour{Block: release, Err: errBoom})
		}

		start := time.Now()
		done := make(chan error, 1)
		go func() {
			_, err := a.s.DialPeer(t.Context(), b.id)
			done <- err
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		want := []string{
			"/ip6/2600::1/udp/1/quic-v1@0s",
			"/ip4/1.2.3.4/udp/1/quic-v1@250ms",
			"/ip6/2600::1/tcp/1@500ms",
			"/ip4/1.2.3.4/tcp/1@750ms",
		}
		if got := dialLogOffsets(a.tpt, start); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("dials:\n got %v\nwant %v", got, want)
		}
		close(release)
		err := <-done
		var derr *DialError
		if !errors.As(err, &derr) || len(derr.Addrs) != 4 || !errors.Is(err, ErrAllDialsFailed) || !errors.Is(err, errBoom) {
			t.Fatalf("got %v, want a DialError of the 4 addresses", err)
		}
	})
}

func TestDialNextBatchWhenNothingInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		// Scheduled at 0, 250ms and 500ms; each fails after 10ms.
		all := addrs("/ip4/1.2.3.4/udp/1/quic-v1", "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/2")
		a.learn(b.id, all...)
		for _, addr := range all {
			a.tpt.SetBehaviour(addr, testtransport.Behaviour{Delay: 10 * ms, Err: errBoom})
		}
		start := time.Now()
		if _, err := a.s.DialPeer(t.Context(), b.id); !errors.Is(err, errBoom) {
			t.Fatalf("got %v, want errBoom", err)
		}
		if d := time.Since(start); d != 30*ms {
			t.Errorf("DialPeer took %v, want 30ms", d)
		}
		want := "/ip4/1.2.3.4/udp/1/quic-v1@0s /ip4/1.2.3.4/tcp/1@10ms /ip4/1.2.3.4/tcp/2@20ms"
		if got := strings.Join(dialLogOffsets(a.tpt, start), " "); got != want {
			t.Errorf("dials:\n got %s\nwant %s", got, want)
		}
	})
}

func TestDialSimultaneousConnectHasNoDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		all := addrs("/ip4/1.2.3.4/udp/1/quic-v1", "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/2")
		a.learn(b.id, all...)
		for _, addr := range all {
			a.tpt.SetBehaviour(addr, testtransport.Behaviour{Delay: time.Second, Err: errBoom})
		}
		start := time.Now()
		ctx := network.WithSimultaneousConnect(t.Context(), true, "test")
		if _, err := a.s.DialPeer(ctx, b.id); !errors.Is(err, errBoom) {
			t.Fatalf("got %v, want errBoom", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("DialPeer took %v, want 1s", d)
		}
		for _, d := range a.tpt.DialLog() {
			if !d.At.Equal(start) {
				t.Errorf("%s dialed at %v, want 0", d.Addr, d.At.Sub(start))
			}
		}
	})
}

func TestDialBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		addr := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		a.learn(b.id, addr)
		a.tpt.SetBehaviour(addr, testtransport.Behaviour{Err: errBoom})
		dials := 0
		// dialFails dials and checks the address was dialed and failed.
		dialFails := func(ctx context.Context) {
			t.Helper()
			if _, err := a.s.DialPeer(ctx, b.id); !errors.Is(err, errBoom) {
				t.Fatalf("got %v, want errBoom", err)
			}
			dials++
			if n := a.tpt.Dials(addr); n != dials {
				t.Fatalf("%d dials, want %d", n, dials)
			}
		}
		// backedOff dials and checks the address was not dialed.
		backedOff := func() {
			t.Helper()
			_, err := a.s.DialPeer(t.Context(), b.id)
			if !errors.Is(err, ErrDialBackoff) || !errors.Is(err, network.ErrNoRemoteAddrs) {
				t.Fatalf("got %v, want ErrDialBackoff", err)
			}
			if n := a.tpt.Dials(addr); n != dials {
				t.Fatalf("%d dials, want %d", n, dials)
			}
		}

		dialFails(t.Context())
		for _, d := range []time.Duration{5 * time.Second, 6 * time.Second, 9 * time.Second} {
			time.Sleep(d - time.Nanosecond)
			backedOff()
			time.Sleep(time.Nanosecond)
			dialFails(t.Context())
		}
		// Now in backoff for 14s; WithForceDirectDial ignores it.
		backedOff()
		dialFails(network.WithForceDirectDial(t.Context(), "test"))

		// A successful dial clears the backoff.
		b.listen(t)
		a.tpt.SetBehaviour(addr, testtransport.Behaviour{})
		if _, err := a.s.DialPeer(network.WithForceDirectDial(t.Context(), "test"), b.id); err != nil {
			t.Fatal(err)
		}
		dials++
		if err := a.s.ClosePeer(b.id); err != nil {
			t.Fatal(err)
		}
		a.tpt.SetBehaviour(addr, testtransport.Behaviour{Err: errBoom})
		dialFails(t.Context())
		// And the next failure starts again at 5s.
		time.Sleep(5*time.Second - time.Nanosecond)
		backedOff()
		time.Sleep(time.Nanosecond)
		dialFails(t.Context())
	})
}

func TestDialTimeouts(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		addr string
		ctx  func(context.Context) context.Context
		want time.Duration
	}{
		{"public address", nil, "/ip4/1.2.3.4/tcp/1", nil, 15 * time.Second},
		{"private address", nil, "/ip4/192.168.1.1/tcp/1", nil, 5 * time.Second},
		{"configured", []Option{WithDialTimeout(2*time.Second, time.Second)}, "/ip4/1.2.3.4/tcp/1", nil, 2 * time.Second},
		{"DialPeer timeout first", nil, "/ip4/1.2.3.4/tcp/1", func(ctx context.Context) context.Context {
			return network.WithDialPeerTimeout(ctx, 3*time.Second)
		}, 3 * time.Second},
		{"DialPeer timeout configured", []Option{WithDialPeerTimeout(4 * time.Second)}, "/ip4/1.2.3.4/tcp/1", nil, 4 * time.Second},
		{"context beats configured DialPeer timeout", []Option{WithDialPeerTimeout(4 * time.Second)}, "/ip4/1.2.3.4/tcp/1", func(ctx context.Context) context.Context {
			return network.WithDialPeerTimeout(ctx, 3*time.Second)
		}, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tn := testtransport.NewNetwork()
				a, b := newNode(t, tn, tt.opts...), newNode(t, tn)
				addr := ma.StringCast(tt.addr)
				a.learn(b.id, addr)
				a.tpt.SetBehaviour(addr, testtransport.Behaviour{Block: make(chan struct{})})
				ctx := t.Context()
				if tt.ctx != nil {
					ctx = tt.ctx(ctx)
				}
				start := time.Now()
				_, err := a.s.DialPeer(ctx, b.id)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, want context.DeadlineExceeded", err)
				}
				if d := time.Since(start); d != tt.want {
					t.Errorf("DialPeer failed after %v, want %v", d, tt.want)
				}
			})
		})
	}
}

func TestDialErrorListsEveryAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		all := addrs("/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/2", "/ip4/1.2.3.4/tcp/3", "/ip4/1.2.3.4/udp/1/webrtc-direct")
		a.learn(b.id, all...)
		for i, e := range []error{errA, errB, errC} {
			a.tpt.SetBehaviour(all[i], testtransport.Behaviour{Err: e})
		}
		_, err := a.s.DialPeer(t.Context(), b.id)
		var derr *DialError
		if !errors.As(err, &derr) {
			t.Fatalf("got %T %v, want a *DialError", err, err)
		}
		if derr.Peer != b.id || len(derr.Addrs) != 4 {
			t.Fatalf("got %+v", derr)
		}
		for _, e := range []error{errA, errB, errC, ErrNoTransport, ErrAllDialsFailed} {
			if !errors.Is(err, e) {
				t.Errorf("errors.Is(err, %v) is false", e)
			}
		}
		for _, addr := range all {
			if !strings.Contains(err.Error(), addr.String()) {
				t.Errorf("the message does not name %s:\n%s", addr, err)
			}
		}
		var aerr *AddrError
		if !errors.As(err, &aerr) {
			t.Errorf("errors.As finds no *AddrError")
		}
	})
}

func TestDialRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		own := a.listen(t)

		if _, err := a.s.DialPeer(t.Context(), a.id); !errors.Is(err, ErrDialToSelf) {
			t.Errorf("dial self: got %v, want ErrDialToSelf", err)
		}
		if _, err := a.s.DialPeer(t.Context(), peer.ID("bad")); err == nil {
			t.Errorf("dial of an invalid peer ID succeeded")
		}
		if _, err := a.s.DialPeer(t.Context(), b.id); !errors.Is(err, network.ErrNoRemoteAddrs) {
			t.Errorf("no addresses: got %v, want ErrNoRemoteAddrs", err)
		}
		a.learn(b.id, own, ma.StringCast("/ip4/0.0.0.0/tcp/1"), ma.StringCast("/ip6/fe80::1/tcp/1"))
		_, err := a.s.DialPeer(t.Context(), b.id)
		if !errors.Is(err, ErrNoGoodAddresses) || !errors.Is(err, network.ErrNoRemoteAddrs) || !errors.Is(err, ErrDialToSelf) {
			t.Errorf("undialable addresses: got %v", err)
		}
		if n := len(a.tpt.DialLog()); n != 0 {
			t.Errorf("%d dials of undialable addresses", n)
		}
	})
}

func TestDialWrongPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b, c := newNode(t, tn), newNode(t, tn), newNode(t, tn)
		c.listen(t)
		addr := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		a.learn(b.id, addr)
		a.tpt.SetBehaviour(addr, testtransport.Behaviour{Peer: c.id})
		if _, err := a.s.DialPeer(t.Context(), b.id); !errors.Is(err, ErrWrongPeer) {
			t.Fatalf("got %v, want ErrWrongPeer", err)
		}
		synctest.Wait()
		if n := len(a.s.Conns()) + len(c.s.Conns()); n != 0 {
			t.Errorf("%d connections left open", n)
		}
	})
}

func TestDialLimits(t *testing.T) {
	t.Run("per peer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tn := testtransport.NewNetwork()
			a, b := newNode(t, tn), newNode(t, tn)
			var all []ma.Multiaddr
			for i := range 10 {
				all = append(all, ma.StringCast(fmt.Sprintf("/ip4/1.2.3.4/tcp/%d", i+1)))
			}
			a.learn(b.id, all...)
			release := make(chan struct{})
			for i, addr := range all {
				b := testtransport.Behaviour{Block: release, Err: errBoom}
				if i < 2 {
					b = testtransport.Behaviour{Delay: time.Duration(i+1) * time.Second, Err: errBoom}
				}
				a.tpt.SetBehaviour(addr, b)
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := a.s.DialPeer(network.WithSimultaneousConnect(t.Context(), true, "test"), b.id)
				done <- err
			}()
			synctest.Wait()
			if n := len(a.tpt.DialLog()); n != DefaultMaxDialsPerPeer {
				t.Fatalf("%d dials in flight, want %d", n, DefaultMaxDialsPerPeer)
			}
			time.Sleep(3 * time.Second)
			synctest.Wait()
			log := a.tpt.DialLog()
			if len(log) != 10 || log[8].At.Sub(start) != time.Second || log[9].At.Sub(start) != 2*time.Second {
				t.Fatalf("dials: %v", dialLogOffsets(a.tpt, start))
			}
			close(release)
			if err := <-done; !errors.Is(err, errBoom) {
				t.Fatalf("got %v", err)
			}
		})
	})
	t.Run("file descriptors", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tn := testtransport.NewNetwork()
			a := newNode(t, tn, WithMaxDials(8, 2))
			b, c := newNode(t, tn), newNode(t, tn)
			release := make(chan struct{})
			quic := ma.StringCast("/ip4/1.2.3.5/udp/1/quic-v1")
			for i, p := range []peer.ID{b.id, c.id} {
				tcp := addrs(fmt.Sprintf("/ip4/1.2.3.%d/tcp/1", i), fmt.Sprintf("/ip4/1.2.3.%d/tcp/2", i))
				a.learn(p, tcp...)
				for _, addr := range tcp {
					a.tpt.SetBehaviour(addr, testtransport.Behaviour{Block: release, Err: errBoom})
				}
			}
			a.learn(c.id, quic)
			a.tpt.SetBehaviour(quic, testtransport.Behaviour{Block: release, Err: errBoom})
			var wg sync.WaitGroup
			for _, p := range []peer.ID{b.id, c.id} {
				wg.Go(func() {
					_, err := a.s.DialPeer(network.WithSimultaneousConnect(t.Context(), true, "test"), p)
					if !errors.Is(err, errBoom) {
						t.Errorf("got %v", err)
					}
				})
			}
			synctest.Wait()
			if n := len(a.tpt.DialLog()); n != 3 {
				t.Errorf("%d dials running, want 2 TCP and 1 QUIC: %v", n, a.tpt.DialLog())
			}
			if a.tpt.Dials(quic) != 1 {
				t.Errorf("the QUIC dial waited for a file descriptor")
			}
			close(release)
			wg.Wait()
			if n := len(a.tpt.DialLog()); n != 5 {
				t.Errorf("%d dials in all, want 5", n)
			}
		})
	})
}

// fakeResolver resolves /dns4/example.com to fixed addresses.
type fakeResolver struct {
	res []ma.Multiaddr
}

func (r *fakeResolver) ResolveDNSAddr(ctx context.Context, p peer.ID, maddr ma.Multiaddr, recursion, limit int) ([]ma.Multiaddr, error) {
	return nil, errors.New("no dnsaddr here")
}

func (r *fakeResolver) ResolveDNSComponent(ctx context.Context, maddr ma.Multiaddr, limit int) ([]ma.Multiaddr, error) {
	return r.res[:min(limit, len(r.res))], nil
}

func TestDialResolvesAndCleansAddresses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		_, bid := newKey(t)
		good := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		res := &fakeResolver{res: []ma.Multiaddr{
			good.Encapsulate(ma.StringCast("/p2p/" + bid.String())),
			good,
			ma.StringCast("/ip4/0.0.0.0/tcp/1"),
			ma.StringCast("/ip6/fe80::1/tcp/1"),
		}}
		a := newNode(t, tn, WithMultiaddrResolver(res))
		a.learn(bid, ma.StringCast("/dns4/example.com/tcp/1"), ma.StringCast("/dnsaddr/example.com"))
		a.tpt.SetBehaviour(good, testtransport.Behaviour{Err: errBoom})
		_, err := a.s.DialPeer(t.Context(), bid)
		if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "no dnsaddr here") {
			t.Fatalf("got %v", err)
		}
		if log := a.tpt.DialLog(); len(log) != 1 || !log[0].Addr.Equal(good) {
			t.Fatalf("dials: %v, want one of %s", log, good)
		}
	})
}

// chainResolver answers /dnsaddr with /dns4 records and /dns4 with IPs.
type chainResolver struct {
	dnsaddr, dns []ma.Multiaddr
}

func (r *chainResolver) ResolveDNSAddr(ctx context.Context, p peer.ID, maddr ma.Multiaddr, recursion, limit int) ([]ma.Multiaddr, error) {
	return r.dnsaddr[:min(limit, len(r.dnsaddr))], nil
}

func (r *chainResolver) ResolveDNSComponent(ctx context.Context, maddr ma.Multiaddr, limit int) ([]ma.Multiaddr, error) {
	return r.dns[:min(limit, len(r.dns))], nil
}

// TestDialResolvesDNSInDNSAddr: a /dnsaddr record naming a /dns4 host is
// resolved down to IP addresses before dialing.
func TestDialResolvesDNSInDNSAddr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		_, bid := newKey(t)
		ip := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		res := &chainResolver{
			dnsaddr: []ma.Multiaddr{ma.StringCast("/dns4/node.example.com/tcp/1/p2p/" + bid.String())},
			dns:     []ma.Multiaddr{ip.Encapsulate(ma.StringCast("/p2p/" + bid.String()))},
		}
		a := newNode(t, tn, WithMultiaddrResolver(res))
		a.learn(bid, ma.StringCast("/dnsaddr/example.com"))
		a.tpt.SetBehaviour(ip, testtransport.Behaviour{Err: errBoom})
		if _, err := a.s.DialPeer(t.Context(), bid); !errors.Is(err, errBoom) {
			t.Fatalf("got %v", err)
		}
		if log := a.tpt.DialLog(); len(log) != 1 || !log[0].Addr.Equal(ip) {
			t.Fatalf("dials: %v, want one of %s", log, ip)
		}
	})
}
