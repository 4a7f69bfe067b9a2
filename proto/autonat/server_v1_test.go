package autonat

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// v1Pair is a client host connected to a server host whose v1 dial
// backs are faked: they connect when reach is true, and are recorded.
type v1Pair struct {
	a, b   *fakehost.Host
	client *Client
	server *Server

	mu     sync.Mutex // guards the following
	reach  bool
	dialed [][]ma.Multiaddr
}

func newV1Pair(t *testing.T, reach bool, sopts ...ServerOption) *v1Pair {
	p := &v1Pair{a: fakehost.New(t), b: fakehost.New(t), reach: reach}
	fakehost.Connect(p.a, p.b, clientAddr, serverAddr)
	p.server = NewServer(p.b, nil, append([]ServerOption{ServerPublic(lab)}, sopts...)...)
	p.server.canDial = func(ma.Multiaddr) bool { return true }
	p.server.dialV1 = func(ctx context.Context, _ peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.dialed = append(p.dialed, addrs)
		if !p.reach {
			return nil, errors.New("no route")
		}
		return addrs[len(addrs)-1], nil
	}
	p.client = NewClient(p.a, ClientPublic(lab), Intervals(time.Hour, time.Hour))
	t.Cleanup(func() {
		p.client.Close()
		p.server.Close()
		synctest.Wait()
		p.b.CheckScopes()
		p.a.CheckScopes()
	})
	return p
}

// ask sends req raw on a v1 stream and returns the response, or the
// error reading it.
func (p *v1Pair) ask(t *testing.T, req []byte) (*V1Message, error) {
	t.Helper()
	str, err := p.a.NewStream(t.Context(), p.b.ID(), V1ID)
	if err != nil {
		t.Fatal(err)
	}
	defer str.Close()
	if _, err := str.Write(req); err != nil {
		return nil, err
	}
	str.CloseWrite()
	var m V1Message
	if err := ReadMessage(str, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func frame(m codec) []byte {
	var b writeBuf
	WriteMessage(&b, m)
	return b
}

type writeBuf []byte

func (w *writeBuf) Write(b []byte) (int, error) { *w = append(*w, b...); return len(b), nil }

func dialOf(id []byte, addrs ...ma.Multiaddr) *V1Message {
	pi := &V1PeerInfo{ID: id}
	for _, a := range addrs {
		pi.Addrs = append(pi.Addrs, a.Bytes())
	}
	return &V1Message{Type: V1TypeDial, Dial: &V1Dial{Peer: pi}}
}

func TestV1CheckReachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, true)
		r, err := p.client.CheckV1(t.Context(), p.b.ID(), clientAddr)
		if err != nil || !r.Reachable || !r.Addr.Equal(clientAddr) || r.Server != p.b.ID() {
			t.Fatalf("CheckV1 = %+v, %v; want reachable", r, err)
		}
		if len(p.dialed) != 1 || len(p.dialed[0]) != 1 || !p.dialed[0][0].Equal(clientAddr) {
			t.Fatalf("dialed %v, want [[%v]]", p.dialed, clientAddr)
		}
	})
}

func TestV1CheckUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, false)
		r, err := p.client.CheckV1(t.Context(), p.b.ID(), clientAddr)
		if err != nil || r.Reachable || !r.Addr.Equal(clientAddr) {
			t.Fatalf("CheckV1 = %+v, %v; want unreachable", r, err)
		}
	})
}

// TestV1ServerDialsOnlyObservedIP sends addresses of another IP, a
// private one, bytes that are no address, and ours twice (once with a
// /p2p suffix): only ours is dialed, once. Then a request with no
// address of the observed IP is refused without a dial.
func TestV1ServerDialsOnlyObservedIP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, true)
		other := ma.StringCast("/ip4/203.0.113.99/tcp/4001")
		withID := clientAddr.Encapsulate(ma.StringCast("/p2p/" + p.a.ID().String()))
		req := dialOf([]byte(p.a.ID()), other, ma.StringCast("/ip4/10.0.0.7/tcp/4001"), withID, clientAddr)
		req.Dial.Peer.Addrs = append([][]byte{{0xff, 0xff}}, req.Dial.Peer.Addrs...)
		m, err := p.ask(t, frame(req))
		if err != nil || m.Type != V1TypeDialResponse || m.DialResponse == nil || m.DialResponse.Status != V1OK {
			t.Fatalf("response %+v, %v; want OK", m, err)
		}
		if got, _ := ma.NewMultiaddrBytes(m.DialResponse.Addr); !got.Equal(clientAddr) {
			t.Fatalf("OK for %v, want %v", got, clientAddr)
		}
		if len(p.dialed) != 1 || len(p.dialed[0]) != 1 || !p.dialed[0][0].Equal(clientAddr) {
			t.Fatalf("dialed %v, want only %v", p.dialed, clientAddr)
		}
		if _, err := p.client.CheckV1(t.Context(), p.b.ID(), other); !errors.Is(err, ErrRejected) {
			t.Fatalf("CheckV1 of another IP: %v, want ErrRejected (E_DIAL_REFUSED)", err)
		}
		if len(p.dialed) != 1 {
			t.Fatalf("the server dialed another IP: %v", p.dialed)
		}
	})
}

// TestV1ServerAddrBound checks that at most MaxV1Addrs addresses are
// dialed.
func TestV1ServerAddrBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, true)
		var addrs []ma.Multiaddr
		for i := range 3 * MaxV1Addrs {
			addrs = append(addrs, ma.StringCast("/ip4/203.0.113.7/tcp/"+strconv.Itoa(5000+i)))
		}
		m, err := p.ask(t, frame(dialOf(nil, addrs...)))
		if err != nil || m.DialResponse == nil || m.DialResponse.Status != V1OK {
			t.Fatalf("response %+v, %v", m, err)
		}
		if len(p.dialed) != 1 || !slices.EqualFunc(p.dialed[0], addrs[:MaxV1Addrs], ma.Multiaddr.Equal) {
			t.Fatalf("dialed %v, want the first %d", p.dialed, MaxV1Addrs)
		}
	})
}

// TestV1ServerBadRequests: requests the spec calls bad get E_BAD_REQUEST;
// what is not a DIAL message at all gets the stream reset. Nothing is
// dialed, and every scope gives its memory back (the pair's cleanup).
func TestV1ServerBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, true)
		other := fakehost.New(t)
		for name, req := range map[string]*V1Message{
			"no peer info":    {Type: V1TypeDial, Dial: &V1Dial{}},
			"no dial":         {Type: V1TypeDial},
			"another peer id": dialOf([]byte(other.ID()), clientAddr),
			"peer id garbage": dialOf([]byte{1, 2, 3}, clientAddr),
		} {
			m, err := p.ask(t, frame(req))
			if err != nil || m.DialResponse == nil || m.DialResponse.Status != V1BadRequest {
				t.Errorf("%s: %+v, %v; want E_BAD_REQUEST", name, m, err)
			}
		}
		for name, raw := range map[string][]byte{
			"a dial response":  frame(&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{}}),
			"an unknown type":  frame(&V1Message{Type: 7}),
			"a truncated body": {0x0a, 0x08, 0x00},
			"an oversized one": {0x81, 0x80, 0x01},
			"a broken field":   {0x03, 0x12, 0x05, 0x0a},
		} {
			_, err := p.ask(t, raw)
			if err == nil || errors.Is(err, io.EOF) {
				t.Errorf("%s: read %v, want the stream reset", name, err)
			}
		}
		synctest.Wait()
		for _, s := range p.b.Inbound() {
			if s.Protocol() == V1ID && s.MemScope().Service() != ServiceName {
				t.Errorf("v1 stream in service %q, want %q", s.MemScope().Service(), ServiceName)
			}
		}
		if len(p.dialed) != 0 {
			t.Fatalf("bad requests were dialed: %v", p.dialed)
		}
	})
}

// TestV1ServerMemoryLimit: a stream whose scope cannot reserve a
// message's memory is reset before anything is read.
func TestV1ServerMemoryLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, true)
		p.b.SetMemLimit(MaxMessageSize - 1)
		if _, err := p.ask(t, frame(dialOf(nil, clientAddr))); err == nil {
			t.Fatal("a stream over the memory limit was served")
		}
		if len(p.dialed) != 0 {
			t.Fatalf("dialed %v", p.dialed)
		}
	})
}

// TestV1ServerRefusesRelayed: a request over a limited connection, or
// one from a relayed address, is refused (the spec: the requester's IP
// cannot be known there).
func TestV1ServerRefusesRelayed(t *testing.T) {
	for _, limited := range []bool{true, false} {
		t.Run(map[bool]string{true: "limited", false: "circuit"}[limited], func(t *testing.T) { testV1ServerRefusesRelayed(t, limited) })
	}
}

func testV1ServerRefusesRelayed(t *testing.T, limited bool) {
	synctest.Test(t, func(t *testing.T) {
		a, b := fakehost.New(t), fakehost.New(t)
		if limited {
			fakehost.ConnectLimited(a, b, clientAddr, serverAddr)
		} else {
			fakehost.Connect(a, b, ma.StringCast("/ip4/203.0.113.7/tcp/4001/p2p/"+b.ID().String()+"/p2p-circuit"), serverAddr)
		}
		s := NewServer(b, nil, ServerPublic(lab))
		s.canDial = func(ma.Multiaddr) bool { return true }
		s.dialV1 = func(context.Context, peer.ID, []ma.Multiaddr) (ma.Multiaddr, error) {
			t.Error("dialed over a limited connection")
			return nil, errors.New("no")
		}
		defer s.Close()
		c := NewClient(a, ClientPublic(lab), Intervals(time.Hour, time.Hour))
		defer c.Close()
		ctx := network.WithAllowLimitedConn(t.Context(), "test")
		if _, err := c.CheckV1(ctx, b.ID(), clientAddr); !errors.Is(err, ErrRejected) {
			t.Fatalf("CheckV1 over a limited connection: %v, want ErrRejected", err)
		}
	})
}

// TestV1ClientBadResponses: a response of the wrong type or an OK for
// another address is discarded; refusals are not evidence.
func TestV1ClientBadResponses(t *testing.T) {
	for name, tc := range map[string]struct {
		resp *V1Message
		want error
	}{
		"wrong type":       {&V1Message{Type: V1TypeDial, Dial: &V1Dial{}}, ErrBadResponse},
		"no body":          {&V1Message{Type: V1TypeDialResponse}, ErrBadResponse},
		"OK for another":   {&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Addr: serverAddr.Bytes()}}, ErrBadResponse},
		"OK without addr":  {&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{}}, ErrBadResponse},
		"unknown status":   {&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: 42}}, ErrBadResponse},
		"E_DIAL_REFUSED":   {&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1DialRefused}}, ErrRejected},
		"E_BAD_REQUEST":    {&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1BadRequest}}, ErrRejected},
		"E_INTERNAL_ERROR": {&V1Message{Type: V1TypeDialResponse, DialResponse: &V1DialResponse{Status: V1InternalError}}, ErrRejected},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := fakehost.New(t), fakehost.New(t)
				fakehost.Connect(a, b, clientAddr, serverAddr)
				b.SetStreamHandler(V1ID, func(s network.Stream) {
					var req V1Message
					ReadMessage(s, &req)
					WriteMessage(s, tc.resp)
					s.Close()
				})
				c := NewClient(a, ClientPublic(lab), Intervals(time.Hour, time.Hour))
				defer c.Close()
				if _, err := c.CheckV1(t.Context(), b.ID(), clientAddr); !errors.Is(err, tc.want) {
					t.Fatalf("CheckV1: %v, want %v", err, tc.want)
				}
				synctest.Wait()
				a.CheckScopes()
			})
		})
	}
}

// TestRateLimitsShared: v1 and v2 requests count against one limit.
func TestRateLimitsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0, RateLimits(100, 2, 10))
		p.server.dialV1 = func(_ context.Context, _ peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) {
			return addrs[0], nil
		}
		if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); err != nil {
			t.Fatal(err)
		}
		if _, err := p.client.CheckV1(t.Context(), p.b.ID(), clientAddr); err != nil {
			t.Fatal(err)
		}
		if _, err := p.client.CheckV1(t.Context(), p.b.ID(), clientAddr); !errors.Is(err, ErrRejected) {
			t.Fatalf("third request in a minute (v1): %v, want ErrRejected", err)
		}
		if _, err := p.client.Check(t.Context(), p.b.ID(), clientAddr); !errors.Is(err, ErrRejected) {
			t.Fatalf("fourth request in a minute (v2): %v, want ErrRejected", err)
		}
		time.Sleep(time.Minute)
		if _, err := p.client.CheckV1(t.Context(), p.b.ID(), clientAddr); err != nil {
			t.Fatalf("v1 request a minute later: %v", err)
		}
	})
}

// TestServerGlobalLimit: the global limit holds across peers.
func TestServerGlobalLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := fakehost.New(t)
		s := NewServer(b, nil, ServerPublic(lab), RateLimits(2, 10, 10))
		s.canDial = func(ma.Multiaddr) bool { return true }
		s.dialV1 = func(_ context.Context, _ peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) { return addrs[0], nil }
		defer s.Close()
		var errs []error
		for range 3 {
			a := fakehost.New(t)
			fakehost.Connect(a, b, clientAddr, serverAddr)
			c := NewClient(a, ClientPublic(lab), Intervals(time.Hour, time.Hour))
			_, err := c.CheckV1(t.Context(), b.ID(), clientAddr)
			errs = append(errs, err)
			c.Close()
		}
		if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], ErrRejected) {
			t.Fatalf("three peers' requests with a global limit of 2: %v", errs)
		}
	})
}

// blockingDialer is a Dialer whose dials hang until their context ends.
type blockingDialer struct {
	*fakehost.Host
	net blockingNet
}

type blockingNet struct{ network.Network }

func (blockingNet) DialPeer(ctx context.Context, _ peer.ID) (network.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (d *blockingDialer) Network() network.Network { return d.net }

// TestDialBackTimeout: a dial back to an address that never answers
// gives up after the DialBackTimeout, in v2 (E_DIAL_ERROR) and v1
// (E_DIAL_ERROR) alike; the default is DefaultDialBackTimeout.
func TestDialBackTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, 2 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			a, b := fakehost.New(t), fakehost.New(t)
			fakehost.Connect(a, b, clientAddr, serverAddr)
			d := &blockingDialer{Host: fakehost.New(t)}
			d.net = blockingNet{d.Host.Network()}
			opts := []ServerOption{ServerPublic(lab)}
			want := DefaultDialBackTimeout
			if timeout != 0 {
				opts, want = append(opts, DialBackTimeout(timeout)), timeout
			}
			s := NewServer(b, d, opts...)
			s.canDial = func(ma.Multiaddr) bool { return true }
			defer s.Close()
			c := NewClient(a, ClientPublic(lab), Intervals(time.Hour, time.Hour))
			defer c.Close()
			for name, check := range map[string]func(context.Context, peer.ID, ma.Multiaddr) (Result, error){"v2": c.Check, "v1": c.CheckV1} {
				start := time.Now()
				r, err := check(t.Context(), b.ID(), clientAddr)
				if err != nil || r.Reachable {
					t.Fatalf("%s: %+v, %v; want unreachable", name, r, err)
				}
				if took := time.Since(start); took != want {
					t.Fatalf("%s: the dial back gave up after %v, want %v", name, took, want)
				}
			}
		})
	}
}

// TestClientFallsBackToV1: with only a v1 server connected, the client's
// loop asks it and learns Private from three E_DIAL_ERRORs; once a v2
// server connects, it asks that one instead.
func TestClientFallsBackToV1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newV1Pair(t, false)
		p.client.Close()
		p.a.Peerstore().AddProtocols(p.b.ID(), V1ID)
		c := NewClient(p.a, ClientPublic(lab), Intervals(2*time.Second, time.Hour),
			Candidates(func() []ma.Multiaddr { return []ma.Multiaddr{clientAddr} }))
		p.client = c
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if c.Reachability() != network.ReachabilityPrivate {
			t.Fatalf("reachability %v after v1 E_DIAL_ERRORs, want Private", c.Reachability())
		}
		if got := p.b.InboundCount(V1ID); got != 3 {
			t.Fatalf("%d v1 requests, want 3", got)
		}
		// A v2 server: preferred from now on.
		v2 := fakehost.New(t)
		s2 := NewServer(v2, nil, ServerPublic(lab))
		s2.canDial = func(ma.Multiaddr) bool { return true }
		s2.dialBack = func(context.Context, peer.ID, ma.Multiaddr, uint64) DialStatus { return DialError }
		defer s2.Close()
		p.a.Peerstore().AddProtocols(v2.ID(), DialRequestID)
		fakehost.Connect(p.a, v2, clientAddr, ma.StringCast("/ip4/198.51.100.9/tcp/4001"))
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if got := p.b.InboundCount(V1ID); got != 3 {
			t.Fatalf("%d v1 requests with a v2 server connected, want still 3", got)
		}
		if got := v2.InboundCount(DialRequestID); got == 0 {
			t.Fatal("the v2 server was not asked")
		}
	})
}

// TestOnServed: the hook tells what each admitted request cost and
// found: the dial data of a v2 request for another IP, the address a v1
// request connected to.
func TestOnServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var served []Served
		p := newPair(t, true, 0, OnServed(func(s Served) {
			mu.Lock()
			defer mu.Unlock()
			served = append(served, s)
		}))
		p.server.dialV1 = func(_ context.Context, _ peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) {
			return addrs[0], nil
		}
		other := ma.StringCast("/ip4/203.0.113.99/tcp/4001")
		if _, err := p.client.Check(t.Context(), p.b.ID(), other); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the hook runs after the answer
		if _, err := p.client.CheckV1(t.Context(), p.b.ID(), clientAddr); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(served) != 2 {
			t.Fatalf("served %+v, want 2 requests", served)
		}
		if s := served[0]; s.V1 || !s.Addr.Equal(other) || s.DialData < MinDialData || s.DialData > MaxDialData+MaxDataChunk || !s.Reachable || s.Peer != p.a.ID() {
			t.Errorf("v2 request: %+v; want %v reached after %d..%d bytes of dial data", s, other, MinDialData, MaxDialData)
		}
		if s := served[1]; !s.V1 || !s.Addr.Equal(clientAddr) || s.DialData != 0 || !s.Reachable {
			t.Errorf("v1 request: %+v; want %v reached", s, clientAddr)
		}
	})
}

// TestServerBackToBack: a client that asks again as soon as it has an
// answer is not refused as having a request in flight: the server gives
// the slot back before it answers, in v2 and v1. The hook that runs
// after the first answer holds that request's goroutine until the
// second request was answered.
func TestServerBackToBack(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			gate := make(chan struct{})
			var first sync.Once
			p := newPair(t, true, 0, OnServed(func(Served) { first.Do(func() { <-gate }) }))
			p.server.dialV1 = func(_ context.Context, _ peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) {
				return addrs[0], nil
			}
			check := p.client.Check
			if v1 {
				check = p.client.CheckV1
			}
			for i := range 2 {
				if _, err := check(t.Context(), p.b.ID(), clientAddr); err != nil {
					t.Errorf("v1 %v: check %d: %v", v1, i, err)
				}
			}
			close(gate)
		})
	}
}

// TestCheckDialBackErrorAfterNonce: E_DIAL_BACK_ERROR after the nonce
// came over the address's transport is a success (the server dialed us);
// without the nonce it is no evidence.
func TestCheckDialBackErrorAfterNonce(t *testing.T) {
	for _, nonceDelta := range []uint64{0, 1} {
		synctest.Test(t, func(t *testing.T) {
			p := newPair(t, true, nonceDelta)
			inner := p.server.dialBack
			p.server.dialBack = func(ctx context.Context, id peer.ID, addr ma.Multiaddr, nonce uint64) DialStatus {
				inner(ctx, id, addr, nonce)
				return DialBackError
			}
			r, err := p.client.Check(t.Context(), p.b.ID(), clientAddr)
			if nonceDelta == 0 && (err != nil || !r.Reachable) {
				t.Errorf("E_DIAL_BACK_ERROR after the nonce: %+v, %v; want reachable", r, err)
			}
			if nonceDelta != 0 && !errors.Is(err, ErrRejected) {
				t.Errorf("E_DIAL_BACK_ERROR without the nonce: %+v, %v; want ErrRejected", r, err)
			}
		})
	}
}

// TestServerBadRequests (v2): what is not a dial request, or does not
// decode, gets the stream reset; nothing is dialed and every scope gives
// its memory back (the pair's cleanup checks the v1 pair's hosts; this
// one checks its own).
func TestServerBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, true, 0)
		for name, raw := range map[string][]byte{
			"a dial response":     frame(&Message{DialResponse: &DialResponse{Status: ResponseOK}}),
			"dial data first":     frame(&Message{DialDataResponse: &DialDataResponse{Data: []byte{1}}}),
			"an empty message":    {0x00},
			"a truncated message": {0x0a, 0x0a, 0x01},
			"an oversized one":    {0x81, 0x80, 0x01},
		} {
			str, err := p.a.NewStream(t.Context(), p.b.ID(), DialRequestID)
			if err != nil {
				t.Fatal(err)
			}
			str.Write(raw)
			str.CloseWrite()
			var m Message
			if err := ReadMessage(str, &m); err == nil || errors.Is(err, io.EOF) {
				t.Errorf("%s: read %+v, %v; want the stream reset", name, m, err)
			}
			str.Close()
		}
		// Dial data that is not dial data, in the middle of paying.
		str, err := p.a.NewStream(t.Context(), p.b.ID(), DialRequestID)
		if err != nil {
			t.Fatal(err)
		}
		other := ma.StringCast("/ip4/203.0.113.99/tcp/4001")
		WriteMessage(str, &Message{DialRequest: &DialRequest{Addrs: [][]byte{other.Bytes()}, Nonce: 1}})
		var m Message
		if err := ReadMessage(str, &m); err != nil || m.DialDataRequest == nil {
			t.Fatalf("want a dial data request, got %+v, %v", m, err)
		}
		WriteMessage(str, &Message{DialRequest: &DialRequest{Nonce: 2}})
		if err := ReadMessage(str, &m); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("a dial request as dial data: read %+v, %v; want the stream reset", m, err)
		}
		str.Close()
		synctest.Wait()
		if p.dials != 0 {
			t.Errorf("%d dial backs for bad requests", p.dials)
		}
		p.b.CheckScopes()
		p.a.CheckScopes()
	})
}
