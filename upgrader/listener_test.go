package upgrader

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// memListener is a net.Listener whose connections are memconn pairs that
// come from the addresses the test chooses.
type memListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	port   uint16 // the last source port given out
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4001} }

// dial connects from ip, from a port of its own, and returns the dialer's
// end. It returns once the accept loop has taken the connection.
func (l *memListener) dial(t *testing.T, ip string) net.Conn {
	t.Helper()
	l.port++
	c, s := memconn.Pair(0)
	from := net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), l.port))
	select {
	case l.conns <- remoteConn{Conn: s, remote: from}:
	case <-l.closed:
		t.Fatal("dialing a closed listener")
	}
	return c
}

// remoteConn is a connection whose remote address the test chose.
type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// countingManager is a resource manager that counts inbound connection
// scopes open at once and refuses beyond limit, as a transient scope
// with room for exactly the handshake slots would.
type countingManager struct {
	*network.NullResourceManager
	limit  int
	refuse netip.Addr // always refused, like an address over a limit of its own

	mu                  sync.Mutex // guards the following
	open, peak, refused int
}

func (m *countingManager) OpenConnection(_ network.Direction, _ bool, endpoint ma.Multiaddr) (network.ConnManagementScope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ip, _ := manet.ToIP(endpoint)
	if a, _ := netip.AddrFromSlice(ip); m.open >= m.limit || a.Unmap() == m.refuse {
		m.refused++
		return nil, network.ErrResourceLimitExceeded
	}
	m.open++
	m.peak = max(m.peak, m.open)
	return &countedScope{NullScope: &network.NullScope{}, m: m}, nil
}

func (m *countingManager) counts() (open, peak, refused int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open, m.peak, m.refused
}

type countedScope struct {
	*network.NullScope
	m    *countingManager
	once sync.Once
}

func (s *countedScope) Done() {
	s.once.Do(func() {
		s.m.mu.Lock()
		s.m.open--
		s.m.mu.Unlock()
	})
}

// newListenerUpgrader returns an upgrader with Noise and yamux and cfg's
// limits, and its peer ID.
func newListenerUpgrader(t *testing.T, cfg Config) (*Upgrader, peer.ID) {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := noise.New(priv, []protocol.ID{yamux.ID})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Security = []sec.Transport{st}
	cfg.Muxers = []Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u, id
}

// recorder keeps what a Listener's test hook saw.
type recorder struct {
	mu     sync.Mutex // guards events
	events []handshakeEvent
}

func (r *recorder) hook(ev handshakeEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// take returns the events since the last take of the given kinds.
func (r *recorder) take(kinds ...int) []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []netip.AddrPort
	for _, ev := range r.events {
		if slices.Contains(kinds, ev.kind) {
			out = append(out, ev.from)
		}
	}
	r.events = nil
	return out
}

// newMemTestListener listens with an upgrader configured by cfg on a
// memListener; the listener closes when the test ends.
func newMemTestListener(t *testing.T, cfg Config) (*Listener, *memListener, *recorder, peer.ID) {
	t.Helper()
	u, id := newListenerUpgrader(t, cfg)
	ml := newMemListener()
	rec := &recorder{}
	l := u.listen(ml, ma.StringCast("/ip4/127.0.0.1/tcp/4001"), "test", nil, rec.hook)
	t.Cleanup(func() { l.Close() })
	return l, ml, rec, id
}

// closedByListener reports whether the listener has closed c, the
// dialer's end of a connection, after reading whatever it sent.
func closedByListener(c net.Conn) bool {
	c.SetReadDeadline(time.Now())
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// checkOpen fails t unless exactly the connections of open are open.
func checkOpen(t *testing.T, conns map[string]net.Conn, open ...string) {
	t.Helper()
	for name, c := range conns {
		if want, got := slices.Contains(open, name), !closedByListener(c); got != want {
			t.Errorf("connection %s open: %v; want %v", name, got, want)
		}
	}
}

// checkStats fails t unless l's counters are want, InFlight and Groups
// included.
func checkStats(t *testing.T, l *Listener, want HandshakeStats) {
	t.Helper()
	if got := l.HandshakeStats(); got != want {
		t.Errorf("HandshakeStats = %+v; want %+v", got, want)
	}
}

// TestListenerGroupCap: a group of source addresses takes at most its cap
// of the handshake slots, and the others are closed at once; groups are
// IPv4 addresses (each of 127.0.0.0/8 too) and IPv6 /56s, or what the
// prefixes configured say.
func TestListenerGroupCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, ml, _, _ := newMemTestListener(t, Config{})
		var conns []net.Conn
		dial := func(ip string) net.Conn {
			c := ml.dial(t, ip)
			conns = append(conns, c)
			return c
		}
		// The default cap: 64/8.
		for i := range 12 {
			c := dial("10.0.0.1")
			synctest.Wait()
			if closed := closedByListener(c); closed != (i >= 8) {
				t.Errorf("connection %d from 10.0.0.1 closed: %v", i+1, closed)
			}
		}
		checkStats(t, l, HandshakeStats{InFlight: 8, Groups: 1, Admitted: 8, RefusedAtCap: 4})

		// 2001:db8:0:1:: and 2001:db8:0:ff:: share a /56; 2001:db8:0:100::
		// starts another.
		for range 8 {
			dial("2001:db8:0:1::1")
		}
		same, other := dial("2001:db8:0:ff::2"), dial("2001:db8:0:100::1")
		// Loopback addresses are groups of their own.
		for range 8 {
			dial("127.0.0.2")
		}
		lo3 := dial("127.0.0.3")
		synctest.Wait()
		if !closedByListener(same) || closedByListener(other) || closedByListener(lo3) {
			t.Error("IPv6 /56 or loopback groups wrong")
		}
		checkStats(t, l, HandshakeStats{InFlight: 26, Groups: 5, Admitted: 26, RefusedAtCap: 5})

		// Every handshake times out, and the listener forgets the groups.
		time.Sleep(DefaultInboundUpgradeTimeout)
		synctest.Wait()
		checkStats(t, l, HandshakeStats{Admitted: 26, RefusedAtCap: 5})
		for _, c := range conns {
			c.Close()
		}
	})
	t.Run("prefixes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, ml, _, _ := newMemTestListener(t, Config{HandshakePrefixIPv4: 24, HandshakePrefixIPv6: 48, MaxInflightPerGroup: 2})
			conns := map[string]net.Conn{
				"a": ml.dial(t, "10.0.0.1"),
				"b": ml.dial(t, "10.0.0.2"),
				"c": ml.dial(t, "10.0.0.3"), // a third from 10.0.0.0/24
				"d": ml.dial(t, "10.0.1.1"),
				"e": ml.dial(t, "2001:db8:1:1::1"),
				"f": ml.dial(t, "2001:db8:1:ff00::1"),
				"g": ml.dial(t, "2001:db8:1:ffff::1"), // a third from 2001:db8:1::/48
			}
			synctest.Wait()
			checkOpen(t, conns, "a", "b", "d", "e", "f")
			checkStats(t, l, HandshakeStats{InFlight: 5, Groups: 3, Admitted: 5, RefusedAtCap: 2})
			for _, c := range conns {
				c.Close()
			}
		})
	})
}

// TestListenerEviction: when every slot is taken, a newcomer evicts the
// oldest handshake of the most represented group (the older candidate
// when groups tie), unless its own group is as represented; an evicted
// handshake counts against its group until it would have timed out.
func TestListenerEviction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, ml, rec, _ := newMemTestListener(t, Config{MaxInflightInbound: 8, MaxInflightPerGroup: 4})
		const A, B, C, D = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"
		conns := map[string]net.Conn{}
		from := map[netip.AddrPort]string{} // which connection an event is about
		dial := func(name, ip string) {
			conns[name] = ml.dial(t, ip)
			from[netip.AddrPortFrom(netip.MustParseAddr(ip), ml.port)] = name
			time.Sleep(time.Second) // each is a second older than the next
		}
		evicted := func() []string {
			synctest.Wait()
			var names []string
			for _, ap := range rec.take(eventEvicted) {
				names = append(names, from[ap])
			}
			return names
		}
		for _, c := range []struct{ name, ip string }{
			{"a1", A}, {"a2", A}, {"a3", A}, {"b1", B}, {"b2", B}, {"b3", B}, {"b4", B}, {"c1", C},
		} {
			dial(c.name, c.ip)
		}
		if ev := evicted(); len(ev) != 0 {
			t.Fatalf("evicted %v before the pool was full", ev)
		}
		// B is the most represented: its oldest goes.
		dial("d1", D)
		if ev := evicted(); !slices.Equal(ev, []string{"b1"}) {
			t.Errorf("d1 evicted %v; want b1", ev)
		}
		// B's evicted handshake still counts: B is at its cap.
		dial("b5", B)
		// A (3) is less represented than B (4 with the evicted one).
		dial("a4", A)
		if ev := evicted(); !slices.Equal(ev, []string{"b2"}) {
			t.Errorf("a4 evicted %v; want b2", ev)
		}
		// A and B tie at 4: A's a1 is older than B's b3.
		dial("c2", C)
		if ev := evicted(); !slices.Equal(ev, []string{"a1"}) {
			t.Errorf("c2 evicted %v; want a1", ev)
		}
		dial("a5", A) // A is at its cap, a1 included
		synctest.Wait()
		checkOpen(t, conns, "a2", "a3", "a4", "b3", "b4", "c1", "c2", "d1")
		checkStats(t, l, HandshakeStats{InFlight: 8, Groups: 4, Admitted: 11, RefusedAtCap: 2, Evicted: 3})
		for _, c := range conns {
			c.Close()
		}
	})
	t.Run("own group most represented", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l, ml, _, _ := newMemTestListener(t, Config{MaxInflightInbound: 4, MaxInflightPerGroup: 4})
			conns := map[string]net.Conn{}
			for _, c := range []struct{ name, ip string }{
				{"a1", "10.0.0.1"}, {"a2", "10.0.0.1"}, {"a3", "10.0.0.1"}, {"b1", "10.0.0.2"},
				{"a4", "10.0.0.1"}, // A is the most represented: refused
				{"b2", "10.0.0.2"}, // B is less: evicts a1
				{"a5", "10.0.0.1"}, // A counts 3 with a1, more than B's 2: refused
			} {
				conns[c.name] = ml.dial(t, c.ip)
				synctest.Wait()
			}
			checkOpen(t, conns, "a2", "a3", "b1", "b2")
			checkStats(t, l, HandshakeStats{InFlight: 4, Groups: 2, Admitted: 5, RefusedFull: 2, Evicted: 1})
			for _, c := range conns {
				c.Close()
			}
		})
	})
}

// TestListenerEvictionChain: the pool is full of single handshakes from
// as many addresses, each of which reconnects at once when closed. A
// newcomer evicts the oldest; the evicted address's reconnection does
// not evict the next oldest (and so on round the pool until the
// newcomer's turn came): it is refused until the evicted handshake would
// have timed out.
func TestListenerEvictionChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 10 * time.Second
		l, ml, _, _ := newMemTestListener(t, Config{MaxInflightInbound: 4, MaxInflightPerGroup: 4, InboundUpgradeTimeout: timeout})
		conns := map[string]net.Conn{}
		start := time.Now()
		for _, c := range []struct{ name, ip string }{
			{"g1", "10.0.0.1"}, {"g2", "10.0.0.2"}, {"g3", "10.0.0.3"}, {"g4", "10.0.0.4"},
		} {
			conns[c.name] = ml.dial(t, c.ip)
			time.Sleep(time.Second)
		}
		conns["v"] = ml.dial(t, "10.0.0.100")
		synctest.Wait()
		checkOpen(t, conns, "g2", "g3", "g4", "v")
		conns["g1 again"] = ml.dial(t, "10.0.0.1")
		synctest.Wait()
		checkOpen(t, conns, "g2", "g3", "g4", "v")
		checkStats(t, l, HandshakeStats{InFlight: 4, Groups: 4, Admitted: 5, RefusedFull: 1, Evicted: 1})

		// Once g1's time would have run out, 10.0.0.1 is a newcomer like
		// any other: it evicts the oldest, g2.
		time.Sleep(time.Until(start.Add(timeout)))
		conns["g1 later"] = ml.dial(t, "10.0.0.1")
		synctest.Wait()
		checkOpen(t, conns, "g3", "g4", "v", "g1 later")
		checkStats(t, l, HandshakeStats{InFlight: 4, Groups: 4, Admitted: 6, RefusedFull: 1, Evicted: 2})
		for _, c := range conns {
			c.Close()
		}
	})
}

// TestListenerServesDuringAttack: every slot is held by silent
// connections from 8 addresses, and the resource manager has room for
// no more connections than there are slots; a well-behaved peer from
// another address connects at once: the accept loop does not wait, the
// oldest stalled handshake makes room, and its resource scope is released
// before the newcomer's is opened. Close ends every handshake and
// releases every scope.
func TestListenerServesDuringAttack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rm := &countingManager{NullResourceManager: &network.NullResourceManager{}, limit: DefaultMaxInflightInbound}
		l, ml, rec, id := newMemTestListener(t, Config{ResourceManager: rm})
		var silent []net.Conn
		for i := range DefaultMaxInflightInbound {
			silent = append(silent, ml.dial(t, netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i/8)}).String()))
		}
		synctest.Wait()
		checkStats(t, l, HandshakeStats{InFlight: 64, Groups: 8, Admitted: 64})
		first := rec.take(eventAdmitted)[0]

		client, cid := newListenerUpgrader(t, Config{})
		raw := ml.dial(t, "10.0.1.1")
		start := time.Now()
		c, err := client.Upgrade(context.Background(), raw, network.DirOutbound, id, &network.NullScope{}, ma.StringCast("/ip4/10.0.1.1/tcp/1"), l.Multiaddr(), "test")
		if err != nil {
			t.Fatalf("the well-behaved peer's upgrade: %v", err)
		}
		defer c.Close()
		ac, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer ac.Close()
		if d := time.Since(start); d != 0 {
			t.Errorf("the well-behaved peer waited %v", d)
		}
		if ac.RemotePeer() != cid {
			t.Errorf("accepted a connection from %s", ac.RemotePeer())
		}
		synctest.Wait()
		if ev := rec.take(eventEvicted); !slices.Equal(ev, []netip.AddrPort{first}) {
			t.Errorf("evicted %v; want the first handshake, from %v", ev, first)
		}
		if !closedByListener(silent[0]) || closedByListener(silent[1]) {
			t.Error("the wrong silent connection was closed")
		}
		// The newcomer's handshake ended when it was accepted.
		checkStats(t, l, HandshakeStats{InFlight: 63, Groups: 8, Admitted: 65, Evicted: 1})
		if open, peak, refused := rm.counts(); open != 64 || peak != 64 || refused != 0 {
			t.Errorf("resource manager: %d scopes open, at most %d, %d refused; want 64, 64, 0", open, peak, refused)
		}

		l.Close()
		if st := l.HandshakeStats(); st.InFlight != 0 || st.Groups != 0 {
			t.Errorf("after Close, %+v", st)
		}
		ac.Close()
		if open, _, _ := rm.counts(); open != 0 {
			t.Errorf("after Close, %d scopes are open", open)
		}
		for _, c := range silent {
			c.Close()
		}
	})
}

// TestListenerResourceManager: the resource manager has room for fewer
// connections than there are slots, and handshakes fill it; a newcomer
// from a less represented group evicts the oldest handshake of the most
// represented one, as when the slots are full, and gets its scope once
// that one has released its own. An address the manager refuses for
// reasons of its own evicts no more than a full group's worth before its
// own group counts as the most represented, and nothing while few
// handshakes hold scopes.
func TestListenerResourceManager(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rm := &countingManager{NullResourceManager: &network.NullResourceManager{}, limit: 32}
		l, ml, rec, id := newMemTestListener(t, Config{ResourceManager: rm})
		var silent []net.Conn
		for i := range 32 {
			silent = append(silent, ml.dial(t, netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + i/4)}).String()))
		}
		synctest.Wait()
		first := rec.take(eventAdmitted)[0]
		client, _ := newListenerUpgrader(t, Config{})
		raw := ml.dial(t, "10.0.1.1")
		c, err := client.Upgrade(context.Background(), raw, network.DirOutbound, id, &network.NullScope{}, ma.StringCast("/ip4/10.0.1.1/tcp/1"), l.Multiaddr(), "test")
		if err != nil {
			t.Fatalf("the well-behaved peer's upgrade: %v", err)
		}
		ac, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if ev := rec.take(eventEvicted); !slices.Equal(ev, []netip.AddrPort{first}) {
			t.Errorf("evicted %v; want the first handshake, from %v", ev, first)
		}
		checkStats(t, l, HandshakeStats{InFlight: 31, Groups: 8, Admitted: 33, Evicted: 1})
		if open, peak, refused := rm.counts(); open != 32 || peak != 32 || refused != 1 {
			t.Errorf("resource manager: %d scopes open, at most %d, %d refused; want 32, 32, 1", open, peak, refused)
		}
		c.Close()
		ac.Close()
		for _, c := range silent {
			c.Close()
		}
	})
	t.Run("refused address", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			x := netip.MustParseAddr("10.0.0.9")
			rm := &countingManager{NullResourceManager: &network.NullResourceManager{}, limit: 100, refuse: x}
			l, ml, rec, _ := newMemTestListener(t, Config{ResourceManager: rm, MaxInflightInbound: 8, MaxInflightPerGroup: 4})
			var conns []net.Conn
			dial := func(ip string) {
				conns = append(conns, ml.dial(t, ip))
				synctest.Wait()
			}
			// Few handshakes hold scopes: a refusal is nobody's fault.
			dial("10.0.0.1")
			dial(x.String())
			if ev := rec.take(eventEvicted); len(ev) != 0 {
				t.Errorf("evicted %v with the pool nearly empty", ev)
			}
			// Most slots hold scopes: 10.0.0.9 evicts while its group
			// (charged for each try that did not help it) is less
			// represented than another, then reaches its cap.
			for _, ip := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.0.2"} {
				dial(ip)
			}
			for range 6 {
				dial(x.String())
			}
			if ev := rec.take(eventEvicted); len(ev) != 4 || ev[0].Addr() != netip.MustParseAddr("10.0.0.1") {
				t.Errorf("10.0.0.9 evicted %v; want the 4 handshakes of 10.0.0.1", ev)
			}
			checkStats(t, l, HandshakeStats{InFlight: 3, Groups: 1, Admitted: 12, RefusedAtCap: 2, Evicted: 4, RefusedByManager: 5})
			for _, c := range conns {
				c.Close()
			}
		})
	})
}

// TestListenerTCP runs over loopback TCP what the other tests run in
// memory: 8 addresses of 127.0.0.0/8 open 8 silent connections each and
// hold every slot; a ninth connection from one of them is refused at
// once; a well-behaved peer from 127.0.0.100 connects and is accepted,
// and the oldest silent connection is closed for it. It waits on the
// listener's decisions, reported by its test hook.
func TestListenerTCP(t *testing.T) {
	u, id := newListenerUpgrader(t, Config{})
	nl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	laddr := ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(nl.Addr().(*net.TCPAddr).Port))
	events := make(chan handshakeEvent, 1024)
	l := u.listen(nl, laddr, "tcp", nil, func(ev handshakeEvent) { events <- ev })
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := func(kind int) netip.AddrPort {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.kind == kind {
					return ev.from
				}
			case <-ctx.Done():
				t.Fatalf("waiting for event %d: %v", kind, ctx.Err())
			}
		}
	}
	dial := func(ip string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.DialContext(ctx, "tcp4", nl.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	silent := map[netip.AddrPort]net.Conn{}
	var first netip.AddrPort
	for i := range DefaultMaxInflightInbound {
		c := dial(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i/8)}).String())
		from := next(eventAdmitted) // one at a time: the admission order is known
		if from.String() != c.LocalAddr().String() {
			t.Fatalf("admitted %v; want %v", from, c.LocalAddr())
		}
		if i == 0 {
			first = from
		}
		silent[from] = c
	}
	// The listener resets the refused connection as soon as it accepts
	// it, which may be before connect returns.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	extra, err := d.DialContext(ctx, "tcp4", nl.Addr().String())
	if from := next(eventRefusedAtCap); from.Addr() != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("refused %v; want a connection from 127.0.0.2", from)
	}
	if err == nil {
		defer extra.Close()
		if err := readToEnd(extra); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Error("the refused connection stayed open")
		}
	}

	client, _ := newListenerUpgrader(t, Config{})
	raw := dial("127.0.0.100")
	c, err := client.Upgrade(ctx, raw, network.DirOutbound, id, &network.NullScope{}, ma.StringCast("/ip4/127.0.0.100/tcp/1"), laddr, "tcp")
	if err != nil {
		t.Fatalf("the well-behaved peer's upgrade: %v", err)
	}
	defer c.Close()
	ac, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	if ev := next(eventEvicted); ev != first {
		t.Errorf("evicted %v; want the oldest, %v", ev, first)
	}
	if err := readToEnd(silent[first]); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the evicted connection stayed open")
	}
	// Accept can return before the well-behaved peer's handshake has
	// given its slot back: wait for that.
	for next(eventEnded).Addr() != netip.MustParseAddr("127.0.0.100") {
	}
	st := l.HandshakeStats()
	t.Logf("%+v", st)
	if st.Admitted != 65 || st.RefusedAtCap != 1 || st.Evicted != 1 || st.Groups != 8 {
		t.Errorf("HandshakeStats = %+v; want 65 admitted, 1 refused at the cap, 1 evicted, 8 groups", st)
	}
}

// readToEnd reads c until it fails, for at most 10 s (a bound for a
// bug, not a wait), and returns why it failed.
func readToEnd(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return err
		}
	}
}
