package upgrader_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// otherID and other2ID are security protocols only some nodes speak:
// Noise under other names.
const (
	otherID  = protocol.ID("/p2pnet/test-other/1.0.0")
	other2ID = protocol.ID("/p2pnet/test-other/2.0.0")
)

// renamed is a security transport proposed under another protocol ID.
type renamed struct {
	sec.Transport
	id protocol.ID
}

func (r renamed) ID() protocol.ID { return r.id }

// newSecNode is newNode with any of "noise", "tls", "other" and
// "other2".
func newSecNode(t testing.TB, secs ...string) *node {
	t.Helper()
	n := newNode(t, []string{"noise"}, nil, nil) // for the key
	var sts []sec.Transport
	for _, s := range secs {
		if id, ok := map[string]protocol.ID{"other": otherID, "other2": other2ID}[s]; ok {
			sts = append(sts, renamed{newSecurity(t, "noise", n.priv, []protocol.ID{yamux.ID}), id})
			continue
		}
		sts = append(sts, newSecurity(t, s, n.priv, []protocol.ID{yamux.ID}))
	}
	u, err := upgrader.New(upgrader.Config{
		Security: sts,
		Muxers:   []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.u = u
	return n
}

var (
	addrFirst  = ma.StringCast("/ip4/127.0.0.1/tcp/1001")
	addrRedial = ma.StringCast("/ip4/127.0.0.1/tcp/1002")
)

// memNet dials a listening node over in-memory pairs: each pair's far end
// is upgraded inbound by the listener, as its accept loop would.
type memNet struct {
	listener *node
	redials  atomic.Int32

	wg sync.WaitGroup
	mu sync.Mutex // guards the following
	// firstWrites holds the first bytes the dialer wrote on each pair.
	firstWrites [][]byte
	inbound     []upgraded
}

// dial makes a pair and returns the dialer's end.
func (n *memNet) dial() net.Conn {
	a, b := memconn.Pair(0)
	n.mu.Lock()
	i := len(n.firstWrites)
	n.firstWrites = append(n.firstWrites, nil)
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		c, err := n.listener.u.Upgrade(context.Background(), b, network.DirInbound, "", &network.NullScope{}, addrB, addrA, "test")
		n.mu.Lock()
		n.inbound = append(n.inbound, upgraded{c, err})
		n.mu.Unlock()
	}()
	return &recordingConn{Conn: a, record: func(b []byte) {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.firstWrites[i] == nil {
			n.firstWrites[i] = bytes.Clone(b)
		}
	}}
}

// redial is an upgrader.Redial.
func (n *memNet) redial(context.Context) (net.Conn, ma.Multiaddr, error) {
	n.redials.Add(1)
	return n.dial(), addrRedial, nil
}

// wait waits for the listener's upgrades to end and returns the ones that
// succeeded; the caller closes them.
func (n *memNet) wait() []*upgrader.Conn {
	n.wg.Wait()
	var ok []*upgrader.Conn
	for _, r := range n.inbound {
		if r.err == nil {
			ok = append(ok, r.c)
		}
	}
	return ok
}

// recordingConn reports each Write's bytes.
type recordingConn struct {
	net.Conn
	record func([]byte)
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.record(b)
	return c.Conn.Write(b)
}

// msLen is the length of a multistream-select message holding s.
func msLen(s string) int { return 1 + len(s) + 1 }

// dialVia upgrades a fresh dial from a to n's listener, with fallback.
func dialVia(ctx context.Context, a *node, n *memNet, scope network.ConnManagementScope) (*upgrader.Conn, error) {
	return a.u.UpgradeOutbound(ctx, n.dial(), n.redial, n.listener.id, scope, addrFirst, addrB, "test")
}

// checkStream opens a stream on d and reads what it writes on l's end.
func checkStream(t *testing.T, d, l *upgrader.Conn) {
	t.Helper()
	s, err := d.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	ls, err := l.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	got := make([]byte, 5)
	if _, err := io.ReadFull(ls, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
}

// TestSecurityFallback: a dialer whose first choice the listener refuses
// redials once and gets a protocol the listener has; the next dial to
// the same peer proposes that one first, lazily, without a redial.
func TestSecurityFallback(t *testing.T) {
	for _, tc := range []struct {
		name             string
		dialer, listener []string
		want             protocol.ID
		redials          int32
	}{
		{"noise,tls/tls", []string{"noise", "tls"}, []string{"tls"}, tls.ID, 1},
		{"tls,noise/noise", []string{"tls", "noise"}, []string{"noise"}, noise.ID, 1},
		// Two protocols left after the refusal: multistream-select on the
		// new connection, the listener refusing /noise there in place.
		{"other,noise,tls/tls", []string{"other", "noise", "tls"}, []string{"tls"}, tls.ID, 1},
		{"noise,tls/tls,noise", []string{"noise", "tls"}, []string{"tls", "noise"}, noise.ID, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSecNode(t, tc.dialer...)
			b := newSecNode(t, tc.listener...)
			for i, wantRedials := range []int32{tc.redials, 0} {
				n := &memNet{listener: b}
				scope := &countingScope{}
				d, err := dialVia(context.Background(), a, n, scope)
				inbound := n.wait()
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				if len(inbound) != 1 {
					t.Fatalf("dial %d: listener upgraded %d connections; want 1", i, len(inbound))
				}
				l := inbound[0]
				if got := n.redials.Load(); got != wantRedials {
					t.Errorf("dial %d: %d redials; want %d", i, got, wantRedials)
				}
				if got := d.ConnState().Security; got != tc.want {
					t.Errorf("dial %d: security %s; want %s", i, got, tc.want)
				}
				if got := l.ConnState().Security; got != tc.want {
					t.Errorf("dial %d: listener's security %s; want %s", i, got, tc.want)
				}
				wantLaddr := addrFirst
				if wantRedials > 0 {
					wantLaddr = addrRedial
				}
				if !d.LocalMultiaddr().Equal(wantLaddr) {
					t.Errorf("dial %d: local address %s; want %s", i, d.LocalMultiaddr(), wantLaddr)
				}
				if d.RemotePeer() != b.id || scope.setPeer.Load() != b.id {
					t.Errorf("dial %d: remote peer %s, scope peer %v; want %s", i, d.RemotePeer(), scope.setPeer.Load(), b.id)
				}
				// Every connection's first write carried a lazy proposal
				// (header, proposal and handshake bytes), except one that
				// negotiated among several protocols.
				for j, w := range n.firstWrites {
					lazy := len(w) > msLen(multistream.ProtocolID)+msLen(string(otherID))
					if wantLazy := j == 0 || len(tc.dialer) == 2; lazy != wantLazy {
						t.Errorf("dial %d, connection %d: first write of %d bytes; lazy %v, want %v", i, j, len(w), lazy, wantLazy)
					}
				}
				checkStream(t, d, l)
				d.Close()
				l.Close()
				if scope.done.Load() != 1 {
					t.Errorf("dial %d: scope ended %d times; want 1", i, scope.done.Load())
				}
			}
			// Another peer with the same protocols needs its own fallback.
			n := &memNet{listener: newSecNode(t, tc.listener...)}
			d, err := dialVia(context.Background(), a, n, &network.NullScope{})
			for _, l := range n.wait() {
				l.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
			if got := n.redials.Load(); got != tc.redials {
				t.Errorf("dial to another peer: %d redials; want %d", got, tc.redials)
			}
		})
	}
}

// TestSecurityFallbackForgets: a peer that took our second choice and
// later refuses it is dialed with a fallback again.
func TestSecurityFallbackForgets(t *testing.T) {
	a := newSecNode(t, "noise", "tls")
	tlsOnly := newSecNode(t, "tls")
	// The same identity, now speaking only Noise.
	noiseOnly := newSecNode(t, "noise")
	noiseOnly.id, noiseOnly.priv = tlsOnly.id, tlsOnly.priv
	st := newSecurity(t, "noise", tlsOnly.priv, []protocol.ID{yamux.ID})
	var err error
	noiseOnly.u, err = upgrader.New(upgrader.Config{Security: []sec.Transport{st}, Muxers: []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		listener *node
		want     protocol.ID
		redials  int32
	}{
		{tlsOnly, tls.ID, 1},
		{noiseOnly, noise.ID, 1}, // proposes /tls/1.0.0 first, refused
		{noiseOnly, noise.ID, 0}, // back to our first choice
	} {
		n := &memNet{listener: step.listener}
		d, err := dialVia(context.Background(), a, n, &network.NullScope{})
		for _, l := range n.wait() {
			l.Close()
		}
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if got := d.ConnState().Security; got != step.want {
			t.Errorf("dial %d: security %s; want %s", i, got, step.want)
		}
		if got := n.redials.Load(); got != step.redials {
			t.Errorf("dial %d: %d redials; want %d", i, got, step.redials)
		}
		d.Close()
	}
}

// TestSecurityAllRefused: when the listener refuses every protocol, the
// dial fails with an error that names them and matches
// multistream.ErrNotSupported, having closed every connection and ended
// the scope.
func TestSecurityAllRefused(t *testing.T) {
	for _, tc := range []struct {
		name             string
		dialer, listener []string
		redials          int32
		offered          string
	}{
		{"noise/tls", []string{"noise"}, []string{"tls"}, 0, "/noise"},
		{"noise,tls/other", []string{"noise", "tls"}, []string{"other"}, 1, "/noise, /tls/1.0.0"},
		{"tls,noise/other", []string{"tls", "noise"}, []string{"other"}, 1, "/tls/1.0.0, /noise"},
		// The listener refuses the two left in place, on the new
		// connection.
		{"noise,tls,other/other2", []string{"noise", "tls", "other"}, []string{"other2"}, 1, "/noise, /tls/1.0.0, " + string(otherID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newSecNode(t, tc.dialer...)
			n := &memNet{listener: newSecNode(t, tc.listener...)}
			scope := &countingScope{}
			d, err := dialVia(context.Background(), a, n, scope)
			if inbound := n.wait(); len(inbound) != 0 {
				t.Errorf("the listener upgraded %d connections", len(inbound))
			}
			if err == nil {
				d.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, multistream.ErrNotSupported) {
				t.Errorf("error %v; want ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), "offered "+tc.offered+":") {
				t.Errorf("error %q does not say it offered %s", err, tc.offered)
			}
			var nse *multistream.NotSupportedError
			if !errors.As(err, &nse) || len(nse.Protocols) != len(tc.dialer) {
				t.Errorf("error %v does not list the %d protocols offered", err, len(tc.dialer))
			}
			var ue *upgrader.UpgradeError
			if !errors.As(err, &ue) || ue.Direction != network.DirOutbound {
				t.Errorf("error %v is not an outbound UpgradeError", err)
			}
			if got := n.redials.Load(); got != tc.redials {
				t.Errorf("%d redials; want %d", got, tc.redials)
			}
			if scope.done.Load() != 1 {
				t.Errorf("scope ended %d times; want 1", scope.done.Load())
			}
		})
	}
}

// TestSecurityFallbackRedialFails: the redial's error is reported with
// what was refused, and everything is released.
func TestSecurityFallbackRedialFails(t *testing.T) {
	a := newSecNode(t, "noise", "tls")
	n := &memNet{listener: newSecNode(t, "tls")}
	errRedial := errors.New("no route to host")
	scope := &countingScope{}
	redials := 0
	_, err := a.u.UpgradeOutbound(context.Background(), n.dial(), func(context.Context) (net.Conn, ma.Multiaddr, error) {
		redials++
		return nil, nil, errRedial
	}, n.listener.id, scope, addrFirst, addrB, "test")
	n.wait()
	if !errors.Is(err, errRedial) {
		t.Errorf("error %v; want the redial's", err)
	}
	if errors.Is(err, multistream.ErrNotSupported) {
		t.Errorf("error %v claims every protocol was refused", err)
	}
	if !strings.Contains(err.Error(), "refused /noise") {
		t.Errorf("error %q does not say what was refused", err)
	}
	if redials != 1 || scope.done.Load() != 1 {
		t.Errorf("%d redials, scope ended %d times; want 1 and 1", redials, scope.done.Load())
	}
}

// TestSecurityFallbackContext: the context bounds the redial and the
// handshake on the new connection, exactly, whether it is cancelled or
// its deadline passes.
func TestSecurityFallbackContext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline bool // else cancelled
		inRedial bool // else during the handshake on the new connection
	}{
		{"deadline/redial", true, true},
		{"deadline/handshake", true, false},
		{"cancel/redial", false, true},
		{"cancel/handshake", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := newSecNode(t, "noise", "tls")
				n := &memNet{listener: newSecNode(t, "tls")}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				want := error(context.Canceled)
				if tc.deadline {
					ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					want = context.DeadlineExceeded
				} else {
					time.AfterFunc(5*time.Second, cancel)
				}
				var silent sync.WaitGroup
				defer silent.Wait()
				redial := func(ctx context.Context) (net.Conn, ma.Multiaddr, error) {
					if tc.inRedial {
						<-ctx.Done()
						return nil, nil, ctx.Err()
					}
					// A peer that reads and never answers.
					c, s := memconn.Pair(0)
					silent.Go(func() { io.Copy(io.Discard, s); s.Close() })
					return c, addrRedial, nil
				}
				scope := &countingScope{}
				start := time.Now()
				_, err := a.u.UpgradeOutbound(ctx, n.dial(), redial, n.listener.id, scope, addrFirst, addrB, "test")
				n.wait()
				if !errors.Is(err, want) {
					t.Errorf("error %v; want %v", err, want)
				}
				if d := time.Since(start); d != 5*time.Second {
					t.Errorf("gave up after %v; want 5s", d)
				}
				if scope.done.Load() != 1 {
					t.Errorf("scope ended %d times; want 1", scope.done.Load())
				}
			})
		})
	}
}

// TestUpgradeOutboundNoRedial: without a redial function, a refusal of
// the first choice ends the dial.
func TestUpgradeOutboundNoRedial(t *testing.T) {
	a := newSecNode(t, "noise", "tls")
	n := &memNet{listener: newSecNode(t, "tls")}
	_, err := a.u.UpgradeOutbound(context.Background(), n.dial(), nil, n.listener.id, &network.NullScope{}, addrFirst, addrB, "test")
	n.wait()
	if !errors.Is(err, multistream.ErrNotSupported) || !strings.Contains(err.Error(), "offered /noise:") {
		t.Errorf("error %v; want /noise refused", err)
	}
}
