package quic_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/attack"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"

	quicgo "github.com/quic-go/quic-go"
)

// floodSources are the addresses the tests' Initials come from.
var floodSources = []netip.Addr{
	netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"),
	netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.5"),
}

// floodInitials is how many Initials each flood of these tests sends:
// more than the Retry threshold, fewer than quic-go's own default of 128.
const floodInitials = 40

// floodRetransmit is how long the flood's clients wait for an answer
// before they send their Initial again, as real clients do after their
// probe timeout (quic-go's first is twice its initial RTT of 100 ms). The
// listener's Retries and refusals are stateless and best effort: quic-go
// queues at most 8 Retries and 4 CONNECTION_REFUSED packets for sending
// and drops the Initials it would answer beyond that, which happens on a
// loaded machine whenever its sending goroutine waits for a CPU.
const floodRetransmit = 200 * time.Millisecond

// floodListener sends n Initials that never complete to l, each from its
// own client, and waits until the listener has answered every client
// (with a Retry, its handshake packets or a refusal), retransmitting the
// Initials it dropped. The handshakes it started last until the
// listener's handshake timeout.
func floodListener(t *testing.T, l *quic.Listener, n int64) attack.QUICFloodStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a bound on a hang
	defer cancel()
	f, err := attack.StartQUICFlood(ctx, attack.QUICFloodConfig{
		Target:         l.Addr().(*net.UDPAddr).AddrPort(),
		Sources:        floodSources,
		PortsPerSource: 16,
		Rate:           400,
		Count:          n,
		Duration:       10 * time.Second,
		Retransmit:     floodRetransmit,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.WaitFor(ctx, func(s attack.QUICFloodStats) bool {
		return s.Sent == n && s.Retried+s.Answered == n
	}); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	t.Logf("flood of %d Initials: %+v", n, st)
	return st
}

// TestRetryThreshold: an attacker sends Initials and never completes a
// handshake. Once DefaultRetryThreshold handshakes from unverified
// addresses are in progress, every further Initial is answered with a
// Retry, which keeps no state; a well-behaved client still connects,
// after a Retry of its own.
func TestRetryThreshold(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	st := floodListener(t, l, floodInitials)
	const threshold = quic.DefaultRetryThreshold
	if st.Answered != threshold || st.Retried != floodInitials-threshold {
		t.Errorf("%d Initials started handshakes and %d got a Retry; want %d and %d",
			st.Answered, st.Retried, threshold, floodInitials-threshold)
	}
	d, s := connect(t, a, l, b.id)
	d.Close()
	s.Close()
	// The well-behaved client's ClientHello may take two Initials, each
	// answered with a Retry.
	if hs := b.tr.HandshakeStats(); hs.Retries <= floodInitials-threshold {
		t.Errorf("%d Retries; want more than %d: the well-behaved client's too", hs.Retries, floodInitials-threshold)
	}
}

// TestHalfOpenHandshakesOutsideRcmgr: handshakes in progress hold nothing
// in the resource manager, so a QUIC flood cannot fill the transient
// scope that TCP's handshakes need too. The transport bounds them itself.
func TestHalfOpenHandshakesOutsideRcmgr(t *testing.T) {
	b := newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	floodListener(t, l, floodInitials)
	if n := b.rcmgr.open(); n != 0 {
		t.Errorf("%d connection scopes open for half-open handshakes; want 0", n)
	}
}

// TestHandshakeBudget: beyond WithMaxHandshakes handshakes in progress,
// new clients are refused at once, with CONNECTION_REFUSED.
func TestHandshakeBudget(t *testing.T) {
	const budget = 16
	a := newNode(t)
	b := newNode(t, quic.WithRetryThreshold(floodInitials), quic.WithMaxHandshakes(budget))
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	st := floodListener(t, l, floodInitials)
	if st.Retried != 0 {
		t.Errorf("%d Retries below the threshold", st.Retried)
	}
	hs := b.tr.HandshakeStats()
	t.Logf("listener: %+v", hs)
	// A retransmitted Initial of a refused client is refused again; one of
	// a client whose handshake began goes to its connection.
	if hs.InProgress != budget || hs.Unverified != budget ||
		hs.RefusedBudget < floodInitials-budget || hs.RefusedBudget > uint64(floodInitials-budget+st.Resent) {
		t.Errorf("listener counts %+v; want %d handshakes in progress, all unverified, %d Initials refused (and up to %d retransmits)",
			hs, budget, floodInitials-budget, st.Resent)
	}
	if n := b.rcmgr.open(); n != 0 {
		t.Errorf("%d connection scopes open for half-open handshakes; want 0", n)
	}
	_, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	if !errors.Is(err, quic.ErrRefused) || !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Errorf("dial to a listener with no handshake to spare: %v", err)
	}
}

// TestRefusalReachesDialer: when the listener's resource manager refuses
// a connection, the dialer learns it at once, with an error matching
// quic.ErrRefused and network.ErrResourceLimitExceeded: before the
// handshake as QUIC's CONNECTION_REFUSED (which carries no reason), after
// it (the manager took the connection when the client's Initial came, and
// not when the handshake completed, or refused its peer) as application
// error 0x1001 whose reason is the resource manager's error.
func TestRefusalReachesDialer(t *testing.T) {
	a, b := newNode(t), newNode(t, quic.WithHandshakeTimeout(time.Second))
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")

	b.rcmgr.refuse.Store(true)
	start := time.Now()
	_, err := a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
	te, _ := errors.AsType[*quicgo.TransportError](err)
	if !errors.Is(err, network.ErrResourceLimitExceeded) || te == nil || te.ErrorCode != quicgo.ConnectionRefused || !te.Remote {
		t.Errorf("dial refused by the listener's resource manager: %v", err)
	}
	if !errors.Is(err, quic.ErrRefused) {
		t.Errorf("dial refused by the listener's resource manager: %v does not match quic.ErrRefused", err)
	}
	t.Logf("refused before the handshake in %v: %v", time.Since(start), err)
	b.rcmgr.refuse.Store(false)

	refusedAfter := func(what string, arm func()) {
		t.Helper()
		// A late Initial of the refused dial above (its ClientHello spans
		// two) may reach the listener after the refusal was lifted and
		// take the question armed for this dial's Initial; this dial is
		// then refused before its handshake. Arm again and retry.
		var c transport.CapableConn
		var err error
		for range 3 {
			arm()
			c, err = a.tr.Dial(context.Background(), l.Multiaddr(), b.id)
			if te, _ := errors.AsType[*quicgo.TransportError](err); te == nil || te.ErrorCode != quicgo.ConnectionRefused {
				break
			}
			t.Logf("refused before the handshake, retrying: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.AcceptStream()
		ae, _ := errors.AsType[*quicgo.ApplicationError](err)
		if !errors.Is(err, quic.ErrRefused) || !errors.Is(err, network.ErrResourceLimitExceeded) || ae == nil || ae.ErrorCode != 0x1001 || !ae.Remote ||
			!strings.Contains(ae.ErrorMessage, network.ErrResourceLimitExceeded.Error()) ||
			!strings.Contains(ae.ErrorMessage, "refused for the test") {
			t.Errorf("connection %s: %v", what, err)
		}
		t.Logf("refused after the handshake (%s): %v", what, err)
	}
	refusedAfter("refused when the handshake completed", func() {
		b.rcmgr.refuseFrom.Store(b.rcmgr.calls.Load() + 2) // the question at the Initial passes
	})
	b.rcmgr.refuseFrom.Store(0)
	b.rcmgr.refusePeer.Store(true)
	refusedAfter("whose peer the listener refused", func() {})
	b.rcmgr.refusePeer.Store(false)
	// The first refusal counts once per Initial of the ClientHello.
	if hs := b.tr.HandshakeStats(); hs.RefusedLimits < 3 || hs.InProgress != 0 {
		t.Errorf("listener: %+v; want 3 refusals by the resource manager or more, no handshake in progress", hs)
	}
	b.rcmgr.waitReleased(t)
	a.rcmgr.waitReleased(t)
}
