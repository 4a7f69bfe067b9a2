package webtransport_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/conformance"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"
	"github.com/p2pnet/p2pnet/transport/webtransport"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

// countingRcmgr counts connection scopes.
type countingRcmgr struct {
	network.NullResourceManager
	opened, done atomic.Int32
	refuse       atomic.Bool   // inbound OpenConnection fails
	released     chan struct{} // cap 1: a scope ended
	mu           sync.Mutex
	dirs         []network.Direction
	peers        []peer.ID
}

type countingScope struct {
	network.NullScope
	m    *countingRcmgr
	once sync.Once
}

func (m *countingRcmgr) OpenConnection(dir network.Direction, _ bool, _ ma.Multiaddr) (network.ConnManagementScope, error) {
	if dir == network.DirInbound && m.refuse.Load() {
		return nil, network.ErrResourceLimitExceeded
	}
	m.opened.Add(1)
	m.mu.Lock()
	m.dirs = append(m.dirs, dir)
	m.mu.Unlock()
	return &countingScope{m: m}, nil
}

func (s *countingScope) SetPeer(p peer.ID) error {
	s.m.mu.Lock()
	s.m.peers = append(s.m.peers, p)
	s.m.mu.Unlock()
	return nil
}

func (s *countingScope) Done() {
	s.once.Do(func() {
		s.m.done.Add(1)
		select {
		case s.m.released <- struct{}{}:
		default: // a notification is pending already
		}
	})
}

type node struct {
	id    peer.ID
	rcmgr *countingRcmgr
	quic  *quic.Transport
	wt    *webtransport.Transport
}

func newNode(t testing.TB, opts ...webtransport.Option) *node {
	t.Helper()
	return newNodeQUIC(t, nil, opts...)
}

// newNodeQUIC is newNode with options for its QUIC transport.
func newNodeQUIC(t testing.TB, qopts []quic.Option, opts ...webtransport.Option) *node {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	rc := &countingRcmgr{released: make(chan struct{}, 1)}
	qt, err := quic.New(priv, rc, qopts...)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := webtransport.New(priv, rc, qt, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		wt.Close()
		qt.Close()
	})
	return &node{id: id, rcmgr: rc, quic: qt, wt: wt}
}

func listen(t testing.TB, n *node, addr string) *webtransport.Listener {
	t.Helper()
	l, err := n.wt.Listen(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*webtransport.Listener)
}

// connect dials l's node from a at addr and returns both ends.
func connect(t testing.TB, a *node, l *webtransport.Listener, addr ma.Multiaddr, id peer.ID) (dialer, listener *webtransport.Conn) {
	t.Helper()
	accepted := make(chan transport.CapableConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := a.wt.Dial(context.Background(), addr, id)
	if err != nil {
		l.Close()
		<-accepted
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		c.Close()
		t.FailNow()
	}
	return c.(*webtransport.Conn), sc.(*webtransport.Conn)
}

func conformancePair(ip string) conformance.NewPair {
	return func(t *testing.T) conformance.Pair {
		// A vanished peer is noticed when the idle timeout expires.
		a, b := newNodeQUIC(t, []quic.Option{quic.WithIdleTimeout(time.Second)}), newNode(t)
		l := listen(t, b, ip+"/udp/0/quic-v1/webtransport")
		d, s := connect(t, a, l, l.Multiaddr(), b.id)
		return conformance.Pair{Dialer: d, Listener: s, Kill: func() { webtransport.KillListener(l) }}
	}
}

// TestConformance runs the behaviour suite over WebTransport sessions:
// streams are WebTransport streams on QUIC, so a writer may get ahead of
// a reader that does not read by QUIC's initial stream window, 512 KiB.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		ip  string
		big int
	}{
		{"/ip4/127.0.0.1", 16 << 20},
		{"/ip6/::1", 8 << 20},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			conformance.Run(t, conformancePair(tc.ip), conformance.Options{
				BigTransfer:       tc.big,
				ConcurrentStreams: 200,
				MaxBuffered:       512 << 10,
			})
		})
	}
}

// TestHandshake: both ends know each other after the handshake, report
// WebTransport addresses and state, and the scopes are opened in the
// right directions with the peers set, and all end when the connections
// close.
func TestHandshake(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	addr := l.Multiaddr()
	if n := countCertHashes(addr); n != 2 {
		t.Fatalf("listen address %s has %d certificate hashes, want 2 (current and next)", addr, n)
	}
	d, s := connect(t, a, l, addr, b.id)
	if d.RemotePeer() != b.id || s.RemotePeer() != a.id || d.LocalPeer() != a.id {
		t.Errorf("peers: dialer sees %s, listener sees %s", d.RemotePeer(), s.RemotePeer())
	}
	if !d.RemotePublicKey().Equals(s.RemotePublicKey()) == (a.id == b.id) {
		t.Error("public keys")
	}
	if d.ConnState().Transport != "webtransport" || s.ConnState().Transport != "webtransport" {
		t.Errorf("ConnState %+v %+v", d.ConnState(), s.ConnState())
	}
	if !d.RemoteMultiaddr().Equal(addr) {
		t.Errorf("dialer's remote %s, dialed %s", d.RemoteMultiaddr(), addr)
	}
	if !s.LocalMultiaddr().Equal(l.Multiaddr()[:4]) {
		t.Errorf("listener side's local %s", s.LocalMultiaddr())
	}
	echo(t, d, s)
	d.Close()
	s.Close()
	for _, n := range []*node{a, b} {
		waitScopes(t, n.rcmgr)
		n.rcmgr.mu.Lock()
		if len(n.rcmgr.peers) != 1 {
			t.Errorf("peers set: %v", n.rcmgr.peers)
		}
		n.rcmgr.mu.Unlock()
	}
	if a.rcmgr.dirs[0] != network.DirOutbound || b.rcmgr.dirs[0] != network.DirInbound {
		t.Errorf("directions: dialer %v, listener %v", a.rcmgr.dirs, b.rcmgr.dirs)
	}
}

// waitScopes waits for every scope to end: the remote side's scope ends
// when QUIC delivers the close.
func waitScopes(t *testing.T, m *countingRcmgr) {
	t.Helper()
	deadline := time.After(10 * time.Second) // a bound on a hang, not a synchronisation
	for m.opened.Load() != m.done.Load() {
		select {
		case <-m.released:
		case <-deadline:
			t.Fatalf("%d scopes opened, %d ended", m.opened.Load(), m.done.Load())
		}
	}
}

func countCertHashes(a ma.Multiaddr) int {
	n := 0
	for _, c := range a {
		if c.Code() == ma.P_CERTHASH {
			n++
		}
	}
	return n
}

// echo opens a stream on d, sends a message, and reads it back from s.
func echo(t *testing.T, d, s network.MuxedConn) {
	t.Helper()
	st, err := d.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	rs, err := s.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(rs, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// TestDialWrongCertHash: an address whose hash names another certificate
// is refused in the TLS handshake; the dialer's scope ends.
func TestDialWrongCertHash(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	other := listen(t, c, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	addr := append(append(ma.Multiaddr(nil), l.Multiaddr()[:4]...), other.Multiaddr()[4:]...)
	_, err := a.wt.Dial(context.Background(), addr, b.id)
	if !errors.Is(err, webtransport.ErrCertMismatch) {
		t.Fatalf("dial with another node's hashes: %v, want ErrCertMismatch", err)
	}
	waitScopes(t, a.rcmgr)
}

// TestDialWrongPeer: the Noise handshake proves the server's identity.
func TestDialWrongPeer(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	_, err := a.wt.Dial(context.Background(), l.Multiaddr(), c.id)
	if !errors.Is(err, sec.ErrPeerIDMismatch) {
		t.Fatalf("dial expecting another peer: %v", err)
	}
	waitScopes(t, a.rcmgr)
}

// TestNoiseBindsCertHashes: a dialer that expects a hash the server's
// Noise payload does not list fails the handshake, even though its TLS
// check passed (the certificate is the server's): what a browser checks
// against a relayed session.
func TestNoiseBindsCertHashes(t *testing.T) {
	a, b, c := newNode(t), newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	other := listen(t, c, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	addr := append(append(ma.Multiaddr(nil), l.Multiaddr()...), other.Multiaddr()[4:5]...)
	_, err := a.wt.Dial(context.Background(), addr, b.id)
	if !errors.Is(err, noise.ErrCertHashMismatch) {
		t.Fatalf("dial: %v, want noise.ErrCertHashMismatch", err)
	}
}

// TestCanDial: only WebTransport addresses with a hash can be dialed.
func TestCanDial(t *testing.T) {
	n := newNode(t)
	l := listen(t, n, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	for addr, want := range map[string]bool{
		l.Multiaddr().String():                      true,
		"/ip4/127.0.0.1/udp/1/quic-v1/webtransport": false,
		"/ip4/127.0.0.1/udp/1/quic-v1":              false,
		"/ip4/127.0.0.1/tcp/1":                      false,
		"/dns4/example.com/udp/1/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g": false,
	} {
		if got := n.wt.CanDial(ma.StringCast(addr)); got != want {
			t.Errorf("CanDial(%s) = %v", addr, got)
		}
	}
	if _, err := n.wt.Listen(l.Multiaddr()); !errors.Is(err, webtransport.ErrUnsupportedAddr) {
		t.Errorf("Listen with a hash: %v", err)
	}
}

// TestSharedSocket: a WebTransport listener on the port of a QUIC
// listener shares its socket; both serve their own protocol, and a QUIC
// dial and a WebTransport dial leave from the listening socket.
func TestSharedSocket(t *testing.T) {
	a, b := newNode(t), newNode(t)
	ql, err := b.quic.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ql.Close()
	l := listen(t, b, ql.Multiaddr().String()+"/webtransport")
	if l.Addr().String() != ql.Addr().String() {
		t.Fatalf("WebTransport listens on %s, QUIC on %s", l.Addr(), ql.Addr())
	}
	// a listens on both too, so its dials leave from that port.
	aql, err := a.quic.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer aql.Close()
	al := listen(t, a, aql.Multiaddr().String()+"/webtransport")

	d, s := connect(t, a, l, l.Multiaddr(), b.id)
	defer d.Close()
	defer s.Close()
	echo(t, d, s)
	if got, want := s.RemoteMultiaddr().String(), al.Multiaddr()[:4].String(); got != want {
		t.Errorf("WebTransport dial came from %s, want the listening socket %s", got, want)
	}

	accepted := make(chan transport.CapableConn, 1)
	go func() {
		c, _ := ql.Accept()
		accepted <- c
	}()
	qc, err := a.quic.Dial(context.Background(), ql.Multiaddr(), b.id)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.Close()
	qs := <-accepted
	if qs == nil {
		t.Fatal("QUIC accept failed")
	}
	defer qs.Close()
	echo(t, qc, qs)
	if qc.ConnState().Transport != "quic-v1" {
		t.Errorf("QUIC ConnState %+v", qc.ConnState())
	}

	// Closing the QUIC listener leaves WebTransport listening.
	ql.Close()
	d2, s2 := connect(t, a, l, l.Multiaddr(), b.id)
	echo(t, d2, s2)
	d2.Close()
	s2.Close()
}

// fakeClock is a clock the test moves, shared by both nodes.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestDialAcrossRotation: after the listener rotated to its next
// certificate, an address learnt before the rotation still dials (its
// second hash names the new certificate, and the Noise payload still
// lists the first), the listener announces the new pair, and an address
// naming only the replaced certificate fails.
func TestDialAcrossRotation(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	a, b := newNode(t, webtransport.WithClock(clk.now)), newNode(t, webtransport.WithClock(clk.now))
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	old := l.Multiaddr()
	// The rotation comes within a certificate's use, 14 days less two
	// hours, at a time of the node's own.
	var now ma.Multiaddr
	for waited := time.Duration(0); ; waited += time.Hour {
		if now = l.Multiaddr(); !now.Equal(old) {
			break
		}
		if waited > webtransport.CertValidity-2*time.Hour {
			t.Fatalf("no rotation in %v", waited)
		}
		clk.add(time.Hour)
	}
	if len(now) != 6 || !now[4].Equal(&old[5]) {
		t.Fatalf("after the rotation %s, before %s: the old next hash must come first", now, old)
	}
	for _, addr := range []ma.Multiaddr{old, now} {
		d, s := connect(t, a, l, addr, b.id)
		echo(t, d, s)
		d.Close()
		s.Close()
	}
	// Only the first hash, whose certificate is no longer served.
	if _, err := a.wt.Dial(context.Background(), old[:5], b.id); !errors.Is(err, webtransport.ErrCertMismatch) {
		t.Errorf("dial naming only the replaced certificate: %v", err)
	}
}

// TestHandshakeTimeout: a client that completes the QUIC handshake but
// never opens a session is closed by the listener when the handshake
// timeout expires, and its scope on the listener ends.
func TestHandshakeTimeout(t *testing.T) {
	a := newNode(t)
	b := newNode(t, webtransport.WithHandshakeTimeout(100*time.Millisecond))
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}}
	qc, err := a.quic.DialService(context.Background(), l.Multiaddr()[:3], tlsConf, &network.NullScope{})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	select {
	case <-qc.Context().Done():
	case <-time.After(10 * time.Second): // a bound on a hang
		t.Fatal("the listener did not close a connection that never opened a session")
	}
	var ae *quicgo.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || !ae.Remote || ae.ErrorMessage != "handshake timeout" {
		t.Errorf("closed with %v; want the listener's handshake timeout", err)
	}
	waitScopes(t, b.rcmgr)
}

// TestNoALPN: a client offering only a protocol nobody serves on the
// socket fails its TLS handshake.
func TestNoALPN(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}
	if qc, err := a.quic.DialService(context.Background(), l.Multiaddr()[:3], tlsConf, &network.NullScope{}); err == nil {
		qc.CloseWithError(0, "")
		t.Fatal("a handshake for an unserved ALPN succeeded")
	}
	// libp2p's ALPN is refused too: no QUIC listener shares the socket.
	if _, err := a.quic.Dial(context.Background(), l.Multiaddr()[:3], b.id); err == nil {
		t.Fatal("a libp2p QUIC dial to a WebTransport-only socket succeeded")
	}
}

// TestResourceManagerRefusal: a listener whose resource manager refuses
// inbound connections refuses the client before any handshake; the
// dialer's error says so and its scope ends.
func TestResourceManagerRefusal(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	b.rcmgr.refuse.Store(true)
	_, err := a.wt.Dial(context.Background(), l.Multiaddr(), b.id)
	if !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("dial to a refusing listener: %v", err)
	}
	waitScopes(t, a.rcmgr)
	if n := b.rcmgr.opened.Load(); n != 0 {
		t.Errorf("the listener opened %d scopes", n)
	}
}

// TestMaxHandshakes: the slot of an inbound connection in its handshakes
// is given back when they end, so established sessions do not count;
// while a client holds the only slot without opening a session, the
// next client is refused.
func TestMaxHandshakes(t *testing.T) {
	a, b := newNode(t), newNode(t, webtransport.WithMaxHandshakes(1))
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	taken := make(chan struct{}, 3)
	webtransport.SetSlotHook(l, func() { taken <- struct{}{} })
	for range 2 {
		d, s := connect(t, a, l, l.Multiaddr(), b.id)
		defer d.Close()
		defer s.Close()
	}
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}}
	stalled, err := a.quic.DialService(context.Background(), l.Multiaddr()[:3], tlsConf, &network.NullScope{})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseWithError(0, "")
	for range 3 { // the two sessions', then the stalled client's
		<-taken
	}
	c, err := a.wt.Dial(context.Background(), l.Multiaddr(), b.id)
	if err == nil {
		c.Close()
		t.Fatal("a dial succeeded while another client held the only handshake slot")
	}
	if ae, ok := errors.AsType[*quicgo.ApplicationError](err); !ok || !ae.Remote || ae.ErrorMessage != "too many handshakes" {
		t.Errorf("dial failed with %v; want the listener's refusal for too many handshakes", err)
	}
}

// refusingGater refuses at the hooks it is told to.
type refusingGater struct {
	accept, secured bool // refuse InterceptAccept, InterceptSecured
}

func (g refusingGater) InterceptPeerDial(peer.ID) bool               { return true }
func (g refusingGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (g refusingGater) InterceptAccept(network.ConnMultiaddrs) bool  { return !g.accept }
func (g refusingGater) InterceptUpgraded(network.Conn) (bool, connmgr.DisconnectReason) {
	return true, 0
}
func (g refusingGater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return !g.secured
}

// TestConnectionGater: the dialer's gater refusing the secured
// connection fails the dial with a *connmgr.GatedError; the listener's
// gater refusing at accept fails the remote's dial, and refusing once
// secured closes the session the remote has just finished; no scope
// stays open on either side.
func TestConnectionGater(t *testing.T) {
	for _, tc := range []struct {
		name           string
		dialer, server refusingGater
		hook           connmgr.Hook // of the dialer's error, or ""
	}{
		{"dialer secured", refusingGater{secured: true}, refusingGater{}, connmgr.HookSecured},
		{"listener accept", refusingGater{}, refusingGater{accept: true}, ""},
		{"listener secured", refusingGater{}, refusingGater{secured: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newNode(t, webtransport.WithConnectionGater(tc.dialer))
			b := newNode(t, webtransport.WithConnectionGater(tc.server))
			l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
			c, err := a.wt.Dial(context.Background(), l.Multiaddr(), b.id)
			if err == nil && tc.server.secured {
				// The initiator's handshake ends before the listener's
				// check: the listener then closes the session.
				if _, err := c.AcceptStream(); err == nil {
					t.Error("a stream on a connection the listener refused")
				}
				c.Close()
			} else if err == nil {
				c.Close()
				t.Fatal("the dial succeeded")
			}
			if ge, ok := errors.AsType[*connmgr.GatedError](err); tc.hook != "" && (!ok || ge.Hook != tc.hook) {
				t.Errorf("dial error %v; want a GatedError from %s", err, tc.hook)
			}
			waitScopes(t, a.rcmgr)
			waitScopes(t, b.rcmgr)
		})
	}
}
