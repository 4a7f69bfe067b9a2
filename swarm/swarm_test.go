package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/testtransport"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// echo is a stream handler that echoes until EOF.
func echo(s network.Stream) {
	if _, err := io.Copy(s, s); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// roundTrip writes msg on s and reads it back.
func roundTrip(t *testing.T, s network.Stream, msg string) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(buf) != msg {
		t.Fatalf("read %q, want %q", buf, msg)
	}
}

func TestStreamsBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		a.s.SetStreamHandler(echo)
		b.s.SetStreamHandler(echo)
		c := connect(t, a, b)
		if c.Stat().Direction != network.DirOutbound || c.RemotePeer() != b.id || c.LocalPeer() != a.id {
			t.Errorf("connection: %v %+v", c, c.Stat())
		}
		for _, tc := range []struct {
			from, to *node
		}{{a, b}, {b, a}} {
			s, err := tc.from.s.NewStream(t.Context(), tc.to.id)
			if err != nil {
				t.Fatal(err)
			}
			if s.Stat().Direction != network.DirOutbound || s.Conn().RemotePeer() != tc.to.id {
				t.Errorf("stream: %+v", s.Stat())
			}
			roundTrip(t, s, "hello")
			if err := s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if rest, err := io.ReadAll(s); err != nil || len(rest) != 0 {
				t.Fatalf("after CloseWrite: %q, %v", rest, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(b.tpt.DialLog()); n != 0 {
			t.Errorf("b dialed %d times instead of using a's connection", n)
		}
		synctest.Wait()
		for _, n := range []*node{a, b} {
			for _, c := range n.s.Conns() {
				if streams := c.GetStreams(); len(streams) != 0 || c.Stat().NumStreams != 0 {
					t.Errorf("streams left on %v: %v", c, streams)
				}
			}
		}
	})
}

func TestStreamIDsAndStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		got := make(chan network.Stream, 1)
		b.s.SetStreamHandler(func(s network.Stream) { got <- s })
		c := connect(t, a, b)
		s1, err := c.NewStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s2, err := c.NewStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if s1.ID() == s2.ID() || !strings.HasPrefix(s1.ID(), c.ID()+"-") {
			t.Errorf("stream IDs %q and %q on connection %q", s1.ID(), s2.ID(), c.ID())
		}
		if n := c.Stat().NumStreams; n != 2 || len(c.GetStreams()) != 2 {
			t.Errorf("NumStreams %d, want 2", n)
		}
		in := <-got
		if in.Stat().Direction != network.DirInbound || in.Conn().Stat().Direction != network.DirInbound {
			t.Errorf("inbound stream: %+v on %+v", in.Stat(), in.Conn().Stat())
		}
		if st := c.ConnState(); st.Transport != "memory" {
			t.Errorf("ConnState: %+v", st)
		}
		if c.Scope() == nil || s1.Scope() == nil || c.RemotePublicKey() == nil {
			t.Errorf("missing scope or key")
		}
		<-got
		for _, s := range b.s.Conns()[0].GetStreams() {
			s.Reset()
		}
		s1.Reset()
		s2.Close()
		if n := c.Stat().NumStreams; n != 0 {
			t.Errorf("NumStreams %d after closing, want 0", n)
		}
	})
}

func TestNotificationOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		var log eventLog
		b.s.Notify(&network.NotifyBundle{
			ListenF: func(_ network.Network, addr ma.Multiaddr) { log.add("listen") },
			ConnectedF: func(_ network.Network, c network.Conn) {
				// A slow notifiee (slower than a's): the inbound stream
				// a opens at once must still wait for it.
				time.Sleep(3 * time.Second)
				log.add("connected %s", c.ID())
			},
			DisconnectedF: func(_ network.Network, c network.Conn) { log.add("disconnected %s", c.ID()) },
		})
		handled := make(chan struct{})
		b.s.SetStreamHandler(func(s network.Stream) {
			log.add("stream")
			s.Close()
			close(handled)
		})
		var aConnected time.Time
		a.s.Notify(&network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) {
			time.Sleep(2 * time.Second)
			aConnected = time.Now()
		}})

		start := time.Now()
		a.learn(b.id, b.listen(t))
		dc, err := a.s.DialPeer(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		c := dc.(*Conn)
		// DialPeer returns after a's Connected notifications.
		if d := time.Since(start); d != 2*time.Second || !aConnected.Equal(time.Now()) {
			t.Errorf("DialPeer returned after %v, want 2s", d)
		}
		s, err := a.s.NewStream(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		<-handled
		s.Close()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		bc := "?"
		if evs := log.get(); len(evs) > 1 {
			bc = strings.TrimPrefix(evs[1], "connected ")
		}
		want := []string{"listen", "connected " + bc, "stream", "disconnected " + bc}
		if got := log.get(); !slices.Equal(got, want) {
			t.Errorf("events:\n got %q\nwant %q", got, want)
		}
	})
}

func TestNotifieeCallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		b.s.SetStreamHandler(echo)
		var log eventLog
		var self network.Notifiee
		self = &network.NotifyBundle{
			ConnectedF: func(n network.Network, c network.Conn) {
				n.StopNotify(self)
				n.Notify(self)
				log.add("conns %d %d %v", len(n.Conns()), len(n.ConnsToPeer(c.RemotePeer())), n.Connectedness(c.RemotePeer()))
				s, err := n.NewStream(t.Context(), c.RemotePeer())
				if err != nil {
					t.Error(err)
					return
				}
				roundTrip(t, s, "from a notifiee")
				s.Close()
				if _, err := n.DialPeer(t.Context(), c.RemotePeer()); err != nil {
					t.Error(err)
				}
			},
			DisconnectedF: func(n network.Network, c network.Conn) {
				log.add("disconnected, conns %d", len(n.Conns()))
				if err := n.ClosePeer(c.RemotePeer()); err != nil {
					t.Error(err)
				}
			},
		}
		a.s.Notify(self)
		// The second Connected closes the connection from the notifiee.
		b.s.Notify(&network.NotifyBundle{ConnectedF: func(n network.Network, c network.Conn) {}})
		c := connect(t, a, b)
		c.Close()
		synctest.Wait()
		want := []string{"conns 1 1 Connected", "disconnected, conns 0"}
		if got := log.get(); !slices.Equal(got, want) {
			t.Errorf("events:\n got %q\nwant %q", got, want)
		}
	})
}

func TestCloseFromConnectedNotifiee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		var log eventLog
		b.s.Notify(&network.NotifyBundle{
			ConnectedF:    func(n network.Network, c network.Conn) { log.add("connected"); c.Close() },
			DisconnectedF: func(n network.Network, c network.Conn) { log.add("disconnected") },
		})
		connect(t, a, b)
		synctest.Wait()
		if got, want := log.get(), []string{"connected", "disconnected"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		if len(a.s.Conns())+len(b.s.Conns()) != 0 {
			t.Errorf("connections left")
		}
	})
}

func TestInboundStreamOverLimitIsReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		rm := &fakeRcmgr{}
		a, b := newNode(t, tn), newNode(t, tn, WithResourceManager(rm))
		b.s.SetStreamHandler(echo)
		connect(t, a, b)
		s1, err := a.s.NewStream(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s1, "one")

		rm.set(func(r *fakeRcmgr) { r.refuseInbound = true })
		s2, err := a.s.NewStream(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Errorf("refused stream: read got %v, want ErrReset", err)
		}
		s2.Reset()
		rm.set(func(r *fakeRcmgr) { r.refuseInbound = false })

		roundTrip(t, s1, "two")
		s3, err := a.s.NewStream(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s3, "three")
		s1.Close()
		s3.Close()
		synctest.Wait()
		if open, double := rm.counts(); open != 0 || double != 0 {
			t.Errorf("%d stream scopes still open, %d ended twice", open, double)
		}
	})
}

func TestOutboundStreamOverLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		rm := &fakeRcmgr{refuseOutbound: true}
		a, b := newNode(t, tn, WithResourceManager(rm)), newNode(t, tn)
		c := connect(t, a, b)
		if _, err := a.s.NewStream(t.Context(), b.id); !errors.Is(err, network.ErrResourceLimitExceeded) {
			t.Fatalf("got %v, want ErrResourceLimitExceeded", err)
		}
		if n := c.Stat().NumStreams; n != 0 {
			t.Errorf("%d streams", n)
		}
	})
}

func TestSetProtocol(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		rm := &fakeRcmgr{refuseProto: "/refused/1"}
		a, b := newNode(t, tn, WithResourceManager(rm)), newNode(t, tn)
		connect(t, a, b)
		s, err := a.s.NewStream(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetProtocol("/refused/1"); !errors.Is(err, network.ErrResourceLimitExceeded) || s.Protocol() != "" {
			t.Errorf("refused SetProtocol: %v, protocol %q", err, s.Protocol())
		}
		const p = protocol.ID("/ok/1")
		if err := s.SetProtocol(p); err != nil || s.Protocol() != p || s.Scope().(*fakeStreamScope).proto != p {
			t.Errorf("SetProtocol: %v, protocol %q", err, s.Protocol())
		}
		s.Reset()
		s.Close()
		if open, double := rm.counts(); open != 0 || double != 0 {
			t.Errorf("%d stream scopes still open, %d ended twice", open, double)
		}
	})
}

func TestNewStreamTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		rm := &fakeRcmgr{}
		a, b := newNode(t, tn, WithResourceManager(rm)), newNode(t, tn)
		b.listen(t)
		addr := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		a.learn(b.id, addr)
		a.tpt.SetBehaviour(addr, testtransport.Behaviour{BlockOpenStream: true})

		start := time.Now()
		if _, err := a.s.NewStream(context.Background(), b.id); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != DefaultNewStreamTimeout {
			t.Errorf("NewStream gave up after %v, want %v", d, DefaultNewStreamTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start = time.Now()
		if _, err := a.s.NewStream(ctx, b.id); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("NewStream gave up after %v, want 3s", d)
		}
		if open, _ := rm.counts(); open != 0 {
			t.Errorf("%d stream scopes leaked", open)
		}
	})
}

func TestNewStreamNoDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		a.learn(b.id, b.listen(t))
		ctx := network.WithNoDial(t.Context(), "test")
		if _, err := a.s.NewStream(ctx, b.id); !errors.Is(err, network.ErrNoConn) {
			t.Fatalf("got %v, want ErrNoConn", err)
		}
		if n := len(a.tpt.DialLog()); n != 0 {
			t.Errorf("%d dials under WithNoDial", n)
		}
		if _, err := a.s.DialPeer(t.Context(), b.id); err != nil {
			t.Fatal(err)
		}
		s, err := a.s.NewStream(ctx, b.id)
		if err != nil {
			t.Fatalf("existing connection under WithNoDial: %v", err)
		}
		s.Reset()
	})
}

func TestLimitedConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		relayTpt := a.addRelayTransport(t, tn)
		b.s.SetStreamHandler(echo)
		b.listen(t)
		_, relayID := newKey(t)
		relay := ma.StringCast("/ip4/1.2.3.4/tcp/1/p2p/" + relayID.String() + "/p2p-circuit")
		direct := ma.StringCast("/ip4/1.2.3.4/tcp/2")
		relayTpt.SetBehaviour(relay, testtransport.Behaviour{Limited: true})
		a.learn(b.id, relay)

		lc, err := a.s.DialPeer(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // let b's side register the inbound connection
		if !lc.Stat().Limited || a.s.Connectedness(b.id) != network.Limited || b.s.Connectedness(a.id) != network.Limited {
			t.Fatalf("limited connection: %+v, connectedness %v", lc.Stat(), a.s.Connectedness(b.id))
		}
		if _, err := lc.NewStream(t.Context()); !errors.Is(err, network.ErrLimitedConn) {
			t.Errorf("Conn.NewStream on a limited connection: %v, want ErrLimitedConn", err)
		}
		allow := network.WithAllowLimitedConn(t.Context(), "test")
		s, err := lc.NewStream(allow)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "limited")
		s.Close()
		if s, err = a.s.NewStream(allow, b.id); err != nil {
			t.Fatal(err)
		}
		s.Close()

		start := time.Now()
		if _, err := a.s.NewStream(network.WithNoDial(t.Context(), "test"), b.id); !errors.Is(err, network.ErrLimitedConn) {
			t.Errorf("WithNoDial: %v, want ErrLimitedConn", err)
		}
		if _, err := a.s.NewStream(network.WithDialPeerTimeout(t.Context(), 2*time.Second), b.id); !errors.Is(err, network.ErrLimitedConn) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting for a direct connection: %v, want ErrLimitedConn", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("gave up after %v, want 2s", d)
		}

		// A direct connection made meanwhile (as by hole punching) ends
		// the wait.
		a.learn(b.id, direct)
		dialErr := make(chan error, 1)
		go func() {
			time.Sleep(time.Second)
			_, err := a.s.DialPeer(network.WithForceDirectDial(t.Context(), "test"), b.id)
			dialErr <- err
		}()
		start = time.Now()
		s, err = a.s.NewStream(t.Context(), b.id)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != time.Second || s.Conn().Stat().Limited {
			t.Errorf("got a stream after %v on %+v, want 1s on the direct connection", d, s.Conn().Stat())
		}
		roundTrip(t, s, "direct")
		s.Close()
		if err := <-dialErr; err != nil {
			t.Fatal(err)
		}
		if a.s.Connectedness(b.id) != network.Connected || len(a.s.ConnsToPeer(b.id)) != 2 {
			t.Errorf("connectedness %v with %d connections", a.s.Connectedness(b.id), len(a.s.ConnsToPeer(b.id)))
		}
		if err := a.s.ClosePeer(b.id); err != nil {
			t.Fatal(err)
		}
		if a.s.Connectedness(b.id) != network.NotConnected || len(a.s.Peers()) != 0 {
			t.Errorf("after ClosePeer: %v, peers %v", a.s.Connectedness(b.id), a.s.Peers())
		}
	})
}

func TestBestConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		relayTpt := a.addRelayTransport(t, tn)
		b.listen(t)
		_, relayID := newKey(t)
		relay := ma.StringCast("/ip4/1.2.3.4/tcp/1/p2p/" + relayID.String() + "/p2p-circuit")
		relayLimited := ma.StringCast("/ip4/1.2.3.4/tcp/2/p2p/" + relayID.String() + "/p2p-circuit")
		direct := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		directLimited := ma.StringCast("/ip4/1.2.3.4/tcp/2")
		relayTpt.SetBehaviour(relayLimited, testtransport.Behaviour{Limited: true})
		a.tpt.SetBehaviour(directLimited, testtransport.Behaviour{Limited: true})

		add := func(addr ma.Multiaddr) *Conn {
			t.Helper()
			tpt := a.tpt
			if isRelayAddr(addr) {
				tpt = relayTpt
			}
			tc, err := tpt.Dial(t.Context(), addr, b.id)
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.s.addConn(tc, network.DirOutbound)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		check := func(want *Conn, why string) {
			t.Helper()
			if got := a.s.bestConn(b.id); got != want {
				t.Errorf("%s: got %v, want %v", why, got, want)
			}
		}
		c1 := add(relayLimited)
		check(c1, "only one")
		c2 := add(directLimited)
		check(c2, "direct over relayed")
		c3 := add(relay)
		check(c3, "unlimited over limited")
		if got := a.s.bestAcceptableConn(network.WithForceDirectDial(t.Context(), "test"), b.id); got != nil {
			t.Errorf("WithForceDirectDial accepted the relayed %v", got)
		}
		c4 := add(direct)
		check(c4, "direct unlimited over relayed unlimited")
		c5 := add(direct)
		check(c5, "newest on a tie")
		s, err := c4.NewStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		check(c4, "more streams")
		if got, err := a.s.DialPeer(t.Context(), b.id); err != nil || got != c4 {
			t.Errorf("DialPeer returned %v, %v; want the best connection", got, err)
		}
		s.Reset()
		c5.Close()
		c4.Close()
		check(c3, "after closing the direct ones")
	})
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b, c := newNode(t, tn), newNode(t, tn), newNode(t, tn)
		var log eventLog
		a.s.Notify(&network.NotifyBundle{
			ListenCloseF:  func(network.Network, ma.Multiaddr) { log.add("listen close") },
			DisconnectedF: func(network.Network, network.Conn) { log.add("disconnected") },
		})
		a.listen(t)
		handlerDone := make(chan error, 1)
		a.s.SetStreamHandler(func(s network.Stream) {
			_, err := s.Read(make([]byte, 1))
			handlerDone <- err
			s.Reset()
		})
		connect(t, a, b)
		s, err := b.s.NewStream(t.Context(), a.id)
		if err != nil {
			t.Fatal(err)
		}
		blocked := ma.StringCast("/ip4/1.2.3.4/tcp/1")
		a.learn(c.id, blocked)
		a.tpt.SetBehaviour(blocked, testtransport.Behaviour{Block: make(chan struct{})})
		dialErr := make(chan error, 1)
		go func() {
			_, err := a.s.DialPeer(t.Context(), c.id)
			dialErr <- err
		}()
		synctest.Wait()

		if err := a.s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-dialErr; !errors.Is(err, ErrSwarmClosed) {
			t.Errorf("pending dial: %v, want ErrSwarmClosed", err)
		}
		select {
		case err := <-handlerDone:
			if err == nil {
				t.Errorf("the handler's read succeeded")
			}
		default:
			t.Errorf("Close returned before the stream handler")
		}
		// The listener's and the connection's goroutines report in any
		// order.
		got := log.get()
		slices.Sort(got)
		if want := []string{"disconnected", "listen close"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		s.Reset()
		if err := a.s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if _, err := a.s.DialPeer(t.Context(), b.id); !errors.Is(err, ErrSwarmClosed) {
			t.Errorf("DialPeer after Close: %v", err)
		}
		if err := a.s.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/1")); !errors.Is(err, ErrSwarmClosed) {
			t.Errorf("Listen after Close: %v", err)
		}
		if err := a.s.AddTransport(c.tpt); !errors.Is(err, ErrSwarmClosed) {
			t.Errorf("AddTransport after Close: %v", err)
		}
		if len(a.s.Conns()) != 0 || len(a.s.ListenAddresses()) != 0 {
			t.Errorf("connections or listeners left")
		}
	})
}

// swarmGoroutines counts the goroutines running code of this package or
// of the test transport; unlike runtime.NumGoroutine it ignores
// goroutines of earlier tests that are still ending.
func swarmGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "p2pnet/swarm.") || strings.Contains(g, "p2pnet/internal/testtransport.") {
			count++
		}
	}
	return count
}

func TestGoroutinesPerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn), newNode(t, tn)
		addr := b.listen(t)
		synctest.Wait()
		before, beforeAll := swarmGoroutines(), runtime.NumGoroutine()
		const n = 100
		for range n {
			tc, err := a.tpt.Dial(t.Context(), addr, b.id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.s.addConn(tc, network.DirOutbound); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if len(a.s.Conns()) != n || len(b.s.Conns()) != n {
			t.Fatalf("%d and %d connections, want %d", len(a.s.Conns()), len(b.s.Conns()), n)
		}
		perConn := float64(swarmGoroutines()-before) / (2 * n)
		t.Logf("swarm goroutines per idle connection, per side: %v (runtime.NumGoroutine: %v)",
			perConn, float64(runtime.NumGoroutine()-beforeAll)/(2*n))
		if perConn != 1 {
			t.Errorf("%v goroutines per idle connection and side, want 1", perConn)
		}
	})
}

func TestListen(t *testing.T) {
	tn := testtransport.NewNetwork()
	a := newNode(t, tn)
	var log eventLog
	a.s.Notify(&network.NotifyBundle{ListenF: func(_ network.Network, addr ma.Multiaddr) { log.add("listen %s", addr) }})
	bad1, bad2 := ma.StringCast("/ip4/127.0.0.1/udp/1/webrtc-direct"), ma.StringCast("/unix/tmp/x")
	err := a.s.Listen(bad1, bad2)
	if !errors.Is(err, ErrNoTransport) || !strings.Contains(err.Error(), bad1.String()) || !strings.Contains(err.Error(), bad2.String()) {
		t.Errorf("got %v, want ErrNoTransport naming both addresses", err)
	}
	good := ma.StringCast("/ip4/0.0.0.0/tcp/4001")
	if err := a.s.Listen(bad1, good); err != nil {
		t.Errorf("one good address: %v", err)
	}
	if got := a.s.ListenAddresses(); len(got) != 1 || !got[0].Equal(good) {
		t.Errorf("ListenAddresses: %v", got)
	}
	if got := log.get(); !slices.Equal(got, []string{"listen " + good.String()}) {
		t.Errorf("events %q", got)
	}
	ifaddrs, err := a.s.InterfaceListenAddresses()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ifaddrs, func(x ma.Multiaddr) bool { return x.Equal(ma.StringCast("/ip4/127.0.0.1/tcp/4001")) }) {
		t.Errorf("InterfaceListenAddresses has no loopback address: %v", ifaddrs)
	}
	if slices.ContainsFunc(ifaddrs, func(x ma.Multiaddr) bool { return x.Equal(good) }) {
		t.Errorf("InterfaceListenAddresses kept the unspecified address: %v", ifaddrs)
	}
	if a.s.CanDial(a.id, ma.StringCast("/ip4/127.0.0.2/tcp/4001")) {
		t.Errorf("CanDial of ourselves")
	}
	_, other := newKey(t)
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"/ip4/1.2.3.4/tcp/1", true},
		{"/ip4/1.2.3.4/udp/1/quic-v1", true},
		{"/ip4/1.2.3.4/tcp/1/p2p/" + other.String(), true},
		{"/ip4/127.0.0.1/tcp/4001", false}, // ours
		{"/ip4/0.0.0.0/tcp/1", false},
		{"/ip6/fe80::1/tcp/1", false},
		{"/ip4/1.2.3.4/udp/1/webrtc-direct", false},
		{"/ip4/1.2.3.4/tcp/1/p2p/" + a.id.String(), false}, // another peer's
	} {
		if got := a.s.CanDial(other, ma.StringCast(tc.addr)); got != tc.want {
			t.Errorf("CanDial(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestTransportChoice(t *testing.T) {
	tn := testtransport.NewNetwork()
	priv, id := newKey(t)
	s, err := New(id, peerstore.New())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mk := func(codes ...int) *testtransport.Transport {
		tpt, err := testtransport.New(tn, priv, codes...)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddTransport(tpt); err != nil {
			t.Fatal(err)
		}
		return tpt
	}
	tcp, quic, relay := mk(ma.P_TCP), mk(ma.P_QUIC_V1), mk(ma.P_CIRCUIT)
	if tpt, err := testtransport.New(tn, priv, ma.P_TCP); err != nil || !errors.Is(s.AddTransport(tpt), ErrTransportExists) {
		t.Errorf("a second TCP transport was accepted")
	}
	for _, tc := range []struct {
		addr string
		want *testtransport.Transport
	}{
		{"/ip4/1.2.3.4/tcp/1", tcp},
		{"/ip4/1.2.3.4/tcp/1/ws", tcp},
		{"/ip4/1.2.3.4/udp/1/quic-v1", quic},
		{"/ip4/1.2.3.4/udp/1/quic-v1/p2p/" + id.String() + "/p2p-circuit", relay},
		{"/ip4/1.2.3.4/tcp/1/p2p/" + id.String() + "/p2p-circuit", relay},
		{"/ip4/1.2.3.4/udp/1", nil},
	} {
		got := s.transportFor(ma.StringCast(tc.addr))
		if (tc.want == nil && got != nil) || (tc.want != nil && got != tc.want) {
			t.Errorf("transportFor(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestOptions(t *testing.T) {
	_, id := newKey(t)
	for i, o := range []Option{
		WithResourceManager(nil), WithDialRanker(nil), WithDialTimeout(0, time.Second),
		WithBackoff(time.Second, 0, 0), WithMaxDials(0, 1),
	} {
		if _, err := New(id, peerstore.New(), o); !errors.Is(err, errBadOption) {
			t.Errorf("option %d: got %v, want errBadOption", i, err)
		}
	}
	if _, err := New("", peerstore.New()); err == nil {
		t.Errorf("New accepted an empty peer ID")
	}
	s, err := New(id, peerstore.New())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.LocalPeer() != id || s.Peerstore() == nil || s.ResourceManager() == nil {
		t.Errorf("accessors")
	}
	if _, ok := s.ResourceManager().(*network.NullResourceManager); !ok {
		t.Errorf("default resource manager %T", s.ResourceManager())
	}
	_ = fmt.Sprint(s)
}
