package identify

import (
	"errors"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	addrA = "/ip4/127.0.0.1/tcp/1001"
	addrB = "/ip4/127.0.0.1/tcp/1002"
	echo  = protocol.ID("/echo/1.0.0")
)

// newNode returns a host with an ECDSA key (not inlined in its peer ID)
// running a started identify service.
func newNode(t *testing.T, name string, opts ...Option) (*fakeHost, *Service) {
	t.Helper()
	h := newFakeHost(t, ic.ECDSA)
	h.SetStreamHandler(echo, func(s network.Stream) { s.Reset() })
	svc, err := NewService(h, append([]Option{UserAgent("agent/" + name)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	svc.Start()
	t.Cleanup(func() { svc.Close() })
	return h, svc
}

// sameAddrs reports whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []ma.Multiaddr) bool {
	cmp := func(x, y ma.Multiaddr) int { return x.Compare(y) }
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.EqualFunc(a, b, ma.Multiaddr.Equal)
}

func addrs(ss ...string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

// checkKnows checks that the peerstore of h holds what p announced.
func checkKnows(t *testing.T, h, p *fakeHost, agent string, want []ma.Multiaddr) {
	t.Helper()
	protos, err := h.Peerstore().GetProtocols(p.ID())
	if err != nil || !slices.Equal(protos, p.Protocols()) {
		t.Errorf("protocols of %s: %v, %v; want %v", p.ID(), protos, err, p.Protocols())
	}
	if got := h.Peerstore().Addrs(p.ID()); !sameAddrs(got, want) {
		t.Errorf("addresses of %s: %v, want %v", p.ID(), got, want)
	}
	if k := h.Peerstore().PubKey(p.ID()); k == nil || !k.Equals(p.PrivKey().GetPublic()) {
		t.Errorf("public key of %s not stored", p.ID())
	}
	if v, err := h.Peerstore().Get(p.ID(), AgentVersionKey); v != agent {
		t.Errorf("agent version of %s: %v, %v; want %q", p.ID(), v, err, agent)
	}
	if v, err := h.Peerstore().Get(p.ID(), ProtocolVersionKey); v != DefaultProtocolVersion {
		t.Errorf("protocol version of %s: %v, %v", p.ID(), v, err)
	}
}

// checkKnowsNothing checks that the peerstore of h holds nothing p could
// have announced.
func checkKnowsNothing(t *testing.T, h *fakeHost, p peer.ID) {
	t.Helper()
	if protos, _ := h.Peerstore().GetProtocols(p); len(protos) != 0 {
		t.Errorf("protocols stored: %v", protos)
	}
	if a := h.Peerstore().Addrs(p); len(a) != 0 {
		t.Errorf("addresses stored: %v", a)
	}
	if v, err := h.Peerstore().Get(p, AgentVersionKey); !errors.Is(err, peerstore.ErrNotFound) {
		t.Errorf("agent version stored: %v", v)
	}
	if k := h.Peerstore().PubKey(p); k != nil {
		t.Errorf("public key stored")
	}
}

func TestIdentifyExchange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, sb := newNode(t, "b")
		a.SetAddrs("/ip4/127.0.0.1/tcp/1001", "/ip4/10.0.0.1/tcp/1001")
		b.SetAddrs("/ip4/127.0.0.1/tcp/1002", "/ip6/::1/udp/1002/quic-v1", "/ip4/1.2.3.4/tcp/1002")
		ab, ba := connect(a, b, addrA, addrB)
		waitA, waitB := sa.IdentifyWait(ab), sb.IdentifyWait(ba)
		<-waitA
		<-waitB
		// A second wait after the end is over at once, and starts no
		// second identify (b's count below).
		select {
		case <-sa.IdentifyWait(ab):
		default:
			t.Error("a second IdentifyWait after identify ended returned an open channel")
		}
		synctest.Wait()
		if n := b.InboundCount(ID); n != 1 {
			t.Errorf("b answered %d identify requests, want 1", n)
		}
		checkKnows(t, a, b, "agent/b", b.Addrs())
		checkKnows(t, b, a, "agent/a", a.Addrs())
		if got := sa.ObservedAddrs(); !sameAddrs(got, addrs(addrA)) {
			t.Errorf("a observed as %v, want %s", got, addrA)
		}
		if got := sb.ObservedAddrs(); !sameAddrs(got, addrs(addrB)) {
			t.Errorf("b observed as %v, want %s", got, addrB)
		}

		// The addresses last while connected, and RecentlyConnectedAddrTTL
		// after the last connection closes.
		time.Sleep(24 * time.Hour)
		if got := a.Peerstore().Addrs(b.ID()); len(got) != 3 {
			t.Fatalf("addresses expired while connected: %v", got)
		}
		ab.Disconnect()
		time.Sleep(peerstore.RecentlyConnectedAddrTTL - time.Nanosecond)
		if got := a.Peerstore().Addrs(b.ID()); len(got) != 3 {
			t.Fatalf("addresses expired early: %v", got)
		}
		time.Sleep(time.Nanosecond)
		if got := a.Peerstore().Addrs(b.ID()); len(got) != 0 {
			t.Fatalf("addresses outlived RecentlyConnectedAddrTTL: %v", got)
		}
		if got := sa.ObservedAddrs(); len(got) != 0 {
			t.Errorf("observed addresses of closed connections kept: %v", got)
		}
		sa.mu.Lock()
		n := len(sa.peers)
		sa.mu.Unlock()
		if n != 0 {
			t.Errorf("state of closed connections kept")
		}
		if sa.IdentifyWait(ab) != closedChan {
			t.Error("IdentifyWait on a closed connection did not return at once")
		}
		synctest.Wait()
		a.CheckScopes()
		b.CheckScopes()
	})
}

func TestIdentifyKeepsAddrsWhileAnotherConnLives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, _ := newNode(t, "b")
		b.SetAddrs("/ip4/127.0.0.1/tcp/1002")
		ab1, _ := connect(a, b, addrA, addrB)
		ab2, _ := connect(a, b, addrA, addrB)
		ab3, _ := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab1)
		<-sa.IdentifyWait(ab2)
		<-sa.IdentifyWait(ab3)
		ab1.Disconnect() // the oldest, then the newest: both ends of the peer's list
		ab3.Disconnect()
		time.Sleep(24 * time.Hour)
		if got := a.Peerstore().Addrs(b.ID()); len(got) != 1 {
			t.Fatalf("addresses lost while a connection remains: %v", got)
		}
		sa.mu.Lock()
		left := sa.entryLocked(ab2) != nil && sa.entryLocked(ab1) == nil && sa.entryLocked(ab3) == nil
		sa.mu.Unlock()
		if !left {
			t.Fatal("the service forgot the wrong connections")
		}
		ab2.Disconnect()
		synctest.Wait()
		sa.mu.Lock()
		n := len(sa.peers)
		sa.mu.Unlock()
		if n != 0 {
			t.Error("the peer is kept after its last connection closed")
		}
	})
}

func TestIdentifyReplacesOldAddrsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, _ := newNode(t, "b")
		user := ma.StringCast("/ip4/5.5.5.5/tcp/5")
		a.Peerstore().AddAddr(b.ID(), user, peerstore.TempAddrTTL)
		b.SetAddrs("/ip4/127.0.0.1/tcp/1")
		ab, _ := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		b.SetAddrs("/ip4/127.0.0.1/tcp/2")
		ab2, _ := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab2)
		if got := a.Peerstore().Addrs(b.ID()); !sameAddrs(got, []ma.Multiaddr{user, ma.StringCast("/ip4/127.0.0.1/tcp/2")}) {
			t.Fatalf("addresses %v: want the new identified one and the user's", got)
		}
	})
}

// respond serves ID on h with a handler that writes b and closes.
func respond(h *fakeHost, b []byte) {
	h.SetStreamHandler(ID, func(s network.Stream) {
		s.Write(b)
		s.Close()
	})
}

func TestIdentifyIgnoresWrongKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(t *testing.T) []byte
	}{
		{"another peer's key", func(t *testing.T) []byte {
			_, pub, _ := ic.GenerateEd25519Key(nil)
			kb, err := ic.MarshalPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}},
		{"garbage", func(*testing.T) []byte { return []byte{8, 1, 18, 3, 1, 2, 3} }},
		{"empty", func(*testing.T) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, sa := newNode(t, "a")
				b := newFakeHost(t, ic.ECDSA)
				m := &message{present: hasPublicKey | hasProtocols | hasAgentVersion | hasListenAddrs,
					publicKey: tc.key(t), protocols: []protocol.ID{"/x/1.0.0"}, agentVersion: "liar",
					listenAddrs: addrs("/ip4/127.0.0.1/tcp/9")}
				respond(b, m.appendDelimited(nil))
				ab, _ := connect(a, b, addrA, addrB)
				<-sa.IdentifyWait(ab)
				checkKnowsNothing(t, a, b.ID())
			})
		})
	}
}

func TestIdentifyAcceptsNoKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b := newFakeHost(t, ic.ECDSA)
		m := &message{present: hasProtocols, protocols: []protocol.ID{"/x/1.0.0"}}
		respond(b, m.appendDelimited(nil))
		ab, _ := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		protos, _ := a.Peerstore().GetProtocols(b.ID())
		if !slices.Equal(protos, []protocol.ID{"/x/1.0.0"}) {
			t.Fatalf("protocols %v", protos)
		}
		// A full answer without versions clears them.
		if v, err := a.Peerstore().Get(b.ID(), AgentVersionKey); v != "" || err != nil {
			t.Fatalf("agent version %q, %v; want empty", v, err)
		}
	})
}

func TestIdentifyLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []byte
		want error
	}{
		{"one MiB message", frame(make([]byte, 1<<20)), ErrMessageTooLarge},
		{"one MiB in small messages", func() []byte {
			var b []byte
			m := &message{present: hasAgentVersion, agentVersion: strings.Repeat("x", 1000)}
			for len(b) < 1<<20 {
				b = m.appendDelimited(b)
			}
			return b
		}(), ErrTooManyMessages},
		{"truncated", sampleMessage().appendDelimited(nil)[:20], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, sa := newNode(t, "a")
				b := newFakeHost(t, ic.ECDSA)
				respond(b, tc.send)
				ab, _ := connect(a, b, addrA, addrB)
				start := time.Now()
				<-sa.IdentifyWait(ab)
				if d := time.Since(start); d != 0 {
					t.Errorf("identify took %v", d)
				}
				checkKnowsNothing(t, a, b.ID())
				// The same bytes, read directly, fail as they should.
				if _, err := decode(t, tc.send); !errors.Is(err, tc.want) {
					t.Errorf("decoding: %v, want %v", err, tc.want)
				}
				synctest.Wait()
				a.CheckScopes()
			})
		})
	}
}

func TestIdentifyTimeout(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want time.Duration
	}{
		{nil, DefaultTimeout},
		{[]Option{Timeout(1500 * time.Millisecond)}, 1500 * time.Millisecond},
	} {
		synctest.Test(t, func(t *testing.T) {
			a, sa := newNode(t, "a", tc.opts...)
			b := newFakeHost(t, ic.ECDSA)
			release := make(chan struct{})
			defer close(release)
			b.SetStreamHandler(ID, func(s network.Stream) {
				<-release // never answers
				s.Reset()
			})
			ab, _ := connect(a, b, addrA, addrB)
			start := time.Now()
			<-sa.IdentifyWait(ab)
			if d := time.Since(start); d != tc.want {
				t.Errorf("identify gave up after %v, want %v", d, tc.want)
			}
			checkKnowsNothing(t, a, b.ID())
		})
	}
}

func TestIdentifyRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b := newFakeHost(t, ic.ECDSA)
		ab, _ := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		checkKnowsNothing(t, a, b.ID())
	})
}

func TestIdentifyWaitStartsIdentify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFakeHost(t, ic.ECDSA)
		b, _ := newNode(t, "b")
		ab, _ := connect(a, b, addrA, addrB) // before a's service watches
		sa, err := NewService(a)
		if err != nil {
			t.Fatal(err)
		}
		if sa.IdentifyWait(ab) != closedChan {
			t.Error("IdentifyWait before Start did not return at once")
		}
		sa.Start()
		sa.Start() // twice is fine
		<-sa.IdentifyWait(ab)
		checkKnows(t, a, b, "agent/b", nil)
		sa.Close()
		if sa.IdentifyWait(ab) != closedChan {
			t.Error("IdentifyWait after Close did not return at once")
		}
		sa.Start() // after Close: nothing
		if a.NumNotifiees() != 0 || slices.Contains(a.Protocols(), ID) {
			t.Error("Start after Close registered again")
		}
	})
}

func TestCloseAbortsIdentify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b := newFakeHost(t, ic.ECDSA)
		release := make(chan struct{})
		defer close(release)
		b.SetStreamHandler(ID, func(s network.Stream) {
			<-release // never answers
			s.Reset()
		})
		ab, _ := connect(a, b, addrA, addrB)
		wait := sa.IdentifyWait(ab)
		synctest.Wait()
		select {
		case <-wait:
			t.Fatal("identify ended before Close")
		default:
		}
		start := time.Now()
		sa.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v", d)
		}
		select {
		case <-wait:
		default:
			t.Fatal("IdentifyWait channel still open after Close")
		}
		if a.NumNotifiees() != 0 {
			t.Error("still notified after Close")
		}
		if p := a.Protocols(); slices.Contains(p, ID) || slices.Contains(p, IDPush) {
			t.Errorf("handlers left after Close: %v", p)
		}
		sa.Close() // twice is fine
	})
}

// openPush opens an identify/push stream from c to its peer, negotiated.
func openPush(t *testing.T, c *fakeConn) network.Stream {
	t.Helper()
	s, err := c.NewStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := multistream.SelectProtoOrFail(IDPush, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCloseResetsHandlerStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, _ := newNode(t, "b")
		ab, ba := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		s := openPush(t, ba) // and send nothing
		synctest.Wait()
		start := time.Now()
		sa.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close took %v", d)
		}
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("push stream after Close: %v, want ErrReset", err)
		}
	})
}

func TestPushUpdatesPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, sb := newNode(t, "b")
		b.SetAddrs("/ip4/127.0.0.1/tcp/1")
		ab, ba := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		synctest.Wait()

		b.SetStreamHandler("/new/1.0.0", func(s network.Stream) { s.Reset() })
		b.SetAddrs("/ip4/127.0.0.1/tcp/2")
		sb.Push()
		synctest.Wait()
		checkKnows(t, a, b, "agent/b", addrs("/ip4/127.0.0.1/tcp/2"))
		if n := a.InboundCount(IDPush); n != 1 {
			t.Fatalf("a received %d pushes, want 1", n)
		}

		// Nothing changed: no push.
		opened := ba.Opened()
		sb.Push()
		sb.Push()
		synctest.Wait()
		if n := ba.Opened(); n != opened {
			t.Fatalf("%d streams opened for pushes with nothing new", n-opened)
		}
		synctest.Wait()
		a.CheckScopes()
		b.CheckScopes()
	})
}

func TestPushSkipsPeersWithoutPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		a.RemoveStreamHandler(IDPush)
		b, sb := newNode(t, "b")
		ab, ba := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		synctest.Wait()
		opened := ba.Opened()
		b.SetStreamHandler("/new/1.0.0", func(s network.Stream) { s.Reset() })
		sb.Push()
		synctest.Wait()
		if n := ba.Opened(); n != opened {
			t.Fatalf("%d pushes sent to a peer without identify/push", n-opened)
		}
	})
}

func TestPushRefusedMarksPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFakeHost(t, ic.ECDSA) // serves nothing; b learns nothing
		b, sb := newNode(t, "b")
		_, ba := connect(a, b, addrA, addrB)
		<-sb.IdentifyWait(ba)
		b.SetStreamHandler("/new/1.0.0", func(s network.Stream) { s.Reset() })
		sb.Push()
		synctest.Wait()
		if n := ba.Opened(); n != 2 {
			t.Fatalf("%d streams opened, want an identify and a push", n)
		}
		b.SetStreamHandler("/newer/1.0.0", func(s network.Stream) { s.Reset() })
		sb.Push()
		synctest.Wait()
		if n := ba.Opened(); n != 2 {
			t.Fatalf("pushed again to a peer that refused identify/push")
		}
	})
}

// sendPush pushes the messages b from c and waits for the peer to close.
func sendPush(t *testing.T, c *fakeConn, b []byte) error {
	t.Helper()
	s := openPush(t, c)
	defer s.Close()
	s.Write(b)
	s.CloseWrite()
	_, err := io.ReadAll(s)
	return err
}

func TestPushPartialUpdate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, _ := newNode(t, "b")
		b.SetAddrs("/ip4/127.0.0.1/tcp/1")
		ab, ba := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		synctest.Wait()

		m := &message{present: hasAgentVersion | hasObservedAddr, agentVersion: "b/2",
			observedAddr: ma.StringCast("/ip4/127.0.0.1/tcp/7777")}
		if err := sendPush(t, ba, m.appendDelimited(nil)); err != nil {
			t.Fatal(err)
		}
		checkKnows(t, a, b, "b/2", b.Addrs())
		if got := sa.ObservedAddrs(); !sameAddrs(got, addrs("/ip4/127.0.0.1/tcp/7777")) {
			t.Errorf("observed %v after the push", got)
		}

		// An observed address with our /p2p/ID (or anyone's) appended is
		// stored without it. (Wait: the service takes one push per
		// connection at a time, and the last one's handler may still be
		// finishing.)
		synctest.Wait()
		m = &message{present: hasObservedAddr,
			observedAddr: ma.StringCast("/ip4/127.0.0.1/tcp/7778/p2p/" + a.ID().String())}
		if err := sendPush(t, ba, m.appendDelimited(nil)); err != nil {
			t.Fatal(err)
		}
		if got := sa.ObservedAddrs(); !sameAddrs(got, addrs("/ip4/127.0.0.1/tcp/7778")) {
			t.Errorf("observed %v after a push of an address with /p2p/", got)
		}

		synctest.Wait()
		m = &message{present: hasProtocols, protocols: []protocol.ID{"/only/1.0.0"}}
		if err := sendPush(t, ba, m.appendDelimited(nil)); err != nil {
			t.Fatal(err)
		}
		if protos, _ := a.Peerstore().GetProtocols(b.ID()); !slices.Equal(protos, []protocol.ID{"/only/1.0.0"}) {
			t.Errorf("protocols after the push: %v", protos)
		}
		if v, _ := a.Peerstore().Get(b.ID(), AgentVersionKey); v != "b/2" {
			t.Errorf("agent version after a push without it: %v", v)
		}

		// A push with a wrong key changes nothing.
		synctest.Wait()
		_, pub, _ := ic.GenerateEd25519Key(nil)
		kb, _ := ic.MarshalPublicKey(pub)
		m = &message{present: hasPublicKey | hasAgentVersion, publicKey: kb, agentVersion: "evil"}
		sendPush(t, ba, m.appendDelimited(nil))
		if v, _ := a.Peerstore().Get(b.ID(), AgentVersionKey); v != "b/2" {
			t.Errorf("agent version after a push with a wrong key: %v", v)
		}

		// A malformed push changes nothing and is reset.
		if err := sendPush(t, ba, frame(make([]byte, 1<<20))); !errors.Is(err, network.ErrReset) {
			t.Errorf("oversized push: %v, want ErrReset", err)
		}
		synctest.Wait()
		a.CheckScopes()
	})
}

func TestPushOneAtATimePerConn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, _ := newNode(t, "b")
		ab, ba := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		first := openPush(t, ba) // sends nothing yet
		defer first.Close()
		synctest.Wait()
		m := &message{present: hasAgentVersion, agentVersion: "b/3"}
		if err := sendPush(t, ba, m.appendDelimited(nil)); !errors.Is(err, network.ErrReset) {
			t.Fatalf("second concurrent push: %v, want ErrReset", err)
		}
		first.Write(m.appendDelimited(nil))
		first.CloseWrite()
		if _, err := io.ReadAll(first); err != nil {
			t.Fatal(err)
		}
		if v, _ := a.Peerstore().Get(b.ID(), AgentVersionKey); v != "b/3" {
			t.Errorf("agent version %v after the first push", v)
		}
		if err := sendPush(t, ba, m.appendDelimited(nil)); err != nil {
			t.Fatalf("push after the first ended: %v", err)
		}
	})
}

func TestAddrScopeFiltering(t *testing.T) {
	all := []string{"/ip4/127.0.0.1/tcp/1", "/ip4/192.168.1.2/tcp/1", "/ip4/1.1.1.1/tcp/1"}
	for _, tc := range []struct {
		name         string
		aAddr, bAddr string
		want         []string
	}{
		{"loopback", "/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/1", all},
		{"private", "/ip4/192.168.1.3/tcp/2", "/ip4/192.168.1.2/tcp/1", all[1:]},
		{"public", "/ip4/8.8.4.4/tcp/2", "/ip4/1.1.1.1/tcp/1", all[2:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, sa := newNode(t, "a")
				b, sb := newNode(t, "b")
				b.SetAddrs(all...)
				ab, ba := connect(a, b, tc.aAddr, tc.bAddr)
				<-sa.IdentifyWait(ab)
				if got := a.Peerstore().Addrs(b.ID()); !sameAddrs(got, addrs(tc.want...)) {
					t.Errorf("a stored %v, want %v", got, tc.want)
				}
				// What b sends leaves out loopback addresses off loopback,
				// whatever a keeps.
				m := sb.ownMessage(ba, sb.currentSnapshot(false))
				hasLoopback := slices.ContainsFunc(m.listenAddrs, func(a ma.Multiaddr) bool {
					return a.Equal(ma.StringCast(all[0]))
				})
				if hasLoopback != (tc.name == "loopback") {
					t.Errorf("b sends %v", m.listenAddrs)
				}
			})
		})
	}
}

func TestNewServiceOptions(t *testing.T) {
	h := newFakeHost(t, ic.Ed25519)
	for _, opts := range [][]Option{
		{UserAgent(strings.Repeat("x", maxVersionLen+1))},
		{ProtocolVersion(strings.Repeat("x", maxVersionLen+1))},
		{Timeout(-time.Second)},
	} {
		if _, err := NewService(h, opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewService error = %v, want ErrInvalidOption", err)
		}
	}
	s, err := NewService(h, UserAgent(""), ProtocolVersion(""))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.cfg.userAgent != DefaultUserAgent || s.cfg.protocolVersion != DefaultProtocolVersion || s.cfg.timeout != DefaultTimeout {
		t.Errorf("defaults: %+v", s.cfg)
	}
	if !strings.HasPrefix(DefaultUserAgent, "p2pnet/") || len(DefaultUserAgent) == len("p2pnet/") {
		t.Errorf("DefaultUserAgent = %q", DefaultUserAgent)
	}
}

func TestOwnMessageWithoutKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := newNode(t, "a")
		b, sb := newNode(t, "b")
		_, ba := connect(a, b, addrA, addrB)
		b.Peerstore().RemovePeer(b.ID())
		m := sb.ownMessage(ba, sb.currentSnapshot(false))
		if m.has(hasPublicKey) {
			t.Error("a public key sent though the peerstore has none")
		}
	})
}

// TestPushRetriedAfterFailure: a push that fails on a connection still
// open (a's end resets it) is sent again pushRetryMin later, and then
// a knows b's new addresses; nothing more is sent once it got through.
func TestPushRetriedAfterFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, sa := newNode(t, "a")
		b, sb := newNode(t, "b")
		b.SetAddrs("/ip4/127.0.0.1/tcp/1")
		ab, ba := connect(a, b, addrA, addrB)
		<-sa.IdentifyWait(ab)
		synctest.Wait()
		var pushes atomic.Int32
		a.SetStreamHandler(IDPush, func(s network.Stream) {
			if pushes.Add(1) == 1 {
				s.Reset()
				return
			}
			sa.handlePush(s)
		})
		b.SetAddrs("/ip4/127.0.0.1/tcp/2")
		sb.Push()
		synctest.Wait()
		if n := pushes.Load(); n != 1 {
			t.Fatalf("%d pushes before the retry, want 1", n)
		}
		checkKnows(t, a, b, "agent/b", addrs("/ip4/127.0.0.1/tcp/1"))
		time.Sleep(pushRetryMin - time.Nanosecond)
		synctest.Wait()
		if n := pushes.Load(); n != 1 {
			t.Fatalf("retried after %v, before pushRetryMin", pushRetryMin-time.Nanosecond)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		checkKnows(t, a, b, "agent/b", addrs("/ip4/127.0.0.1/tcp/2"))
		opened := ba.Opened()
		time.Sleep(10 * pushRetryMax)
		synctest.Wait()
		if n := ba.Opened(); n != opened || pushes.Load() != 2 {
			t.Fatalf("%d more streams and %d pushes after the retry went through", n-opened, pushes.Load())
		}
	})
}
