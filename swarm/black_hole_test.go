package swarm

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/testtransport"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peerstore"

	ma "github.com/multiformats/go-multiaddr"
)

const (
	bhProbing = BlackHoleProbing
	bhAllowed = BlackHoleAllowed
	bhBlocked = BlackHoleBlocked
	bhOff     = BlackHoleState(-1) // test marker: the filter is disabled
)

func TestBlackHoleFilter(t *testing.T) {
	// A step records n outcomes ("fail", "ok") and then expects the
	// filter's state to be want, or makes n requests ("req") and expects
	// each verdict to be want.
	type step struct {
		op   string
		n    int
		want BlackHoleState
	}
	tests := []struct {
		name            string
		n, minSuccesses int
		steps           []step
	}{
		{"probing until the window is full", 100, 5, []step{
			{"req", 3, bhProbing}, {"fail", 99, bhProbing}, {"req", 300, bhProbing},
		}},
		{"N failures block, every N-th request probes", 100, 5, []step{
			{"fail", 100, bhBlocked},
			{"req", 99, bhBlocked}, {"req", 1, bhProbing},
			{"req", 99, bhBlocked}, {"req", 1, bhProbing},
			{"req", 1, bhBlocked},
		}},
		{"the probe count starts when blocked", 100, 5, []step{
			{"req", 150, bhProbing}, {"fail", 100, bhBlocked},
			{"req", 99, bhBlocked}, {"req", 1, bhProbing},
		}},
		{"a failed probe stays blocked", 100, 5, []step{
			{"fail", 100, bhBlocked}, {"req", 99, bhBlocked}, {"req", 1, bhProbing},
			{"fail", 1, bhBlocked}, {"req", 99, bhBlocked}, {"req", 1, bhProbing},
		}},
		{"a success unblocks and empties the window", 100, 5, []step{
			{"fail", 100, bhBlocked}, {"req", 10, bhBlocked},
			{"ok", 1, bhProbing}, {"req", 5, bhProbing},
			// The success is not in the new window: 100 failures block again.
			{"fail", 99, bhProbing}, {"fail", 1, bhBlocked},
			{"req", 99, bhBlocked}, {"req", 1, bhProbing},
		}},
		{"MinSuccesses in the window keep it allowed", 100, 5, []step{
			{"fail", 95, bhProbing}, {"ok", 5, bhAllowed}, {"req", 10, bhAllowed},
			// The window slides: the 5 successes stay in it for 95 more
			// failures, and the next failure pushes one out.
			{"fail", 95, bhAllowed}, {"fail", 1, bhBlocked},
		}},
		{"MinSuccesses-1 in the window block", 100, 5, []step{
			{"ok", 4, bhProbing}, {"fail", 96, bhBlocked},
		}},
		{"successes while allowed only count", 100, 5, []step{
			{"ok", 100, bhAllowed}, {"ok", 50, bhAllowed}, {"fail", 95, bhAllowed}, {"fail", 1, bhBlocked},
		}},
		{"small window", 10, 2, []step{
			{"fail", 9, bhProbing}, {"ok", 1, bhBlocked},
			{"req", 9, bhBlocked}, {"req", 1, bhProbing},
			{"ok", 1, bhProbing}, {"ok", 2, bhProbing}, {"fail", 8, bhAllowed}, {"fail", 1, bhBlocked},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newBlackHoleFilter("test", tt.n, tt.minSuccesses)
			for i, s := range tt.steps {
				switch s.op {
				case "req":
					for j := range s.n {
						if got := f.request(); got != s.want {
							t.Fatalf("step %d (%d %s): request %d got %v, want %v", i, s.n, s.op, j+1, got, s.want)
						}
					}
				case "ok", "fail":
					for range s.n {
						f.record(s.op == "ok")
					}
					if got := f.currentState(); got != s.want {
						t.Fatalf("step %d (%d %s): state %v, want %v", i, s.n, s.op, got, s.want)
					}
				default:
					t.Fatalf("bad op %q", s.op)
				}
			}
		})
	}
}

func TestBlackHoleFilterStatus(t *testing.T) {
	f := newBlackHoleFilter("test", 100, 5)
	want := BlackHoleStatus{Enabled: true, State: bhProbing, Window: 100}
	if got := f.status(); got != want {
		t.Fatalf("fresh: %+v, want %+v", got, want)
	}
	for i := range 130 {
		f.record(i%10 == 0) // 13 successes, 10 of them in the last 100
	}
	want = BlackHoleStatus{Enabled: true, State: bhAllowed, Window: 100, Outcomes: 100, Successes: 10}
	if got := f.status(); got != want {
		t.Fatalf("allowed: %+v, want %+v", got, want)
	}
	for range 100 {
		f.record(false)
	}
	want = BlackHoleStatus{Enabled: true, State: bhBlocked, Window: 100, Outcomes: 100, NextProbeIn: 100}
	if got := f.status(); got != want {
		t.Fatalf("blocked: %+v, want %+v", got, want)
	}
	for range 99 {
		f.request()
	}
	if got := f.status().NextProbeIn; got != 1 {
		t.Fatalf("after 99 requests NextProbeIn = %d, want 1", got)
	}
	f.request()
	if got := f.status().NextProbeIn; got != 100 {
		t.Fatalf("after the probe NextProbeIn = %d, want 100", got)
	}
	f.record(true)
	want = BlackHoleStatus{Enabled: true, State: bhProbing, Window: 100}
	if got := f.status(); got != want {
		t.Fatalf("unblocked: %+v, want %+v", got, want)
	}
}

// testFilter returns a filter in state st (nil for bhOff).
func testFilter(name string, st BlackHoleState) *blackHoleFilter {
	if st == bhOff {
		return nil
	}
	f := newBlackHoleFilter(name, DefaultBlackHoleWindow, DefaultBlackHoleMinSuccesses)
	if st != bhProbing {
		for range DefaultBlackHoleWindow {
			f.record(st == bhAllowed)
		}
	}
	return f
}

func TestBlackHoleDetectorFilter(t *testing.T) {
	_, relay := newKey(t)
	const (
		pubUDP4  = "/ip4/1.2.3.4/udp/1/quic-v1"
		pubTCP4  = "/ip4/1.2.3.4/tcp/1"
		pubUDP6  = "/ip6/2600::1/udp/1/quic-v1"
		pubTCP6  = "/ip6/2600::1/tcp/1"
		privUDP4 = "/ip4/192.168.1.1/udp/1/quic-v1"
		privTCP6 = "/ip6/fd00::1/tcp/1"
		loopUDP6 = "/ip6/::1/udp/1/quic-v1"
	)
	relayUDP := pubUDP4 + "/p2p/" + relay.String() + "/p2p-circuit"
	all := []string{pubUDP4, pubTCP4, pubUDP6, pubTCP6, privUDP4, privTCP6, loopUDP6, relayUDP}
	tests := []struct {
		name      string
		udp, ipv6 BlackHoleState
		refused   []string
	}{
		{"both probing", bhProbing, bhProbing, nil},
		{"both allowed", bhAllowed, bhAllowed, nil},
		{"UDP blocked", bhBlocked, bhAllowed, []string{pubUDP4, pubUDP6}},
		{"IPv6 blocked", bhAllowed, bhBlocked, []string{pubUDP6, pubTCP6}},
		{"both blocked", bhBlocked, bhBlocked, []string{pubUDP4, pubUDP6, pubTCP6}},
		{"UDP probing lets UDP over blocked IPv6 through", bhProbing, bhBlocked, []string{pubTCP6}},
		{"IPv6 probing lets IPv6 over blocked UDP through", bhBlocked, bhProbing, []string{pubUDP4}},
		{"UDP disabled", bhOff, bhBlocked, []string{pubUDP6, pubTCP6}},
		{"IPv6 disabled", bhBlocked, bhOff, []string{pubUDP4, pubUDP6}},
		{"both disabled", bhOff, bhOff, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := blackHoleDetector{udp: testFilter("UDP", tt.udp), ipv6: testFilter("IPv6", tt.ipv6)}
			for _, a := range all {
				if got, want := d.refuses(ma.StringCast(a)), slices.Contains(tt.refused, a); got != want {
					t.Errorf("refuses(%s) = %v, want %v", a, got, want)
				}
			}
			derr := &DialError{}
			kept := d.filter(addrs(all...), derr)
			var wantKept []string
			for _, a := range all {
				if !slices.Contains(tt.refused, a) {
					wantKept = append(wantKept, a)
				}
			}
			if got := addrStrings(kept); !slices.Equal(got, wantKept) {
				t.Errorf("kept\n %v\nwant\n %v", got, wantKept)
			}
			var got []string
			for _, ae := range derr.Addrs {
				got = append(got, ae.Addr.String())
				if !errors.Is(&ae, ErrDialRefusedBlackHole) {
					t.Errorf("%s refused with %v, want ErrDialRefusedBlackHole", ae.Addr, ae.Err)
				}
			}
			if !slices.Equal(got, tt.refused) {
				t.Errorf("recorded %v, want %v", got, tt.refused)
			}
		})
	}
}

func addrStrings(as []ma.Multiaddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestBlackHoleDetectorIgnoresPrivateAndRelayAddrs(t *testing.T) {
	_, relay := newKey(t)
	ignored := addrs(
		"/ip4/192.168.1.1/udp/1/quic-v1", "/ip4/127.0.0.1/udp/1/quic-v1", "/ip6/::1/udp/1/quic-v1",
		"/ip6/fd00::1/tcp/1", "/ip4/1.2.3.4/udp/1/quic-v1/p2p/"+relay.String()+"/p2p-circuit",
	)
	d := blackHoleDetector{udp: testFilter("UDP", bhProbing), ipv6: testFilter("IPv6", bhProbing)}
	for range 2 * DefaultBlackHoleWindow {
		for _, a := range ignored {
			d.record(a, false)
		}
	}
	for _, f := range []*blackHoleFilter{d.udp, d.ipv6} {
		if st := f.status(); st.State != bhProbing || st.Outcomes != 0 {
			t.Fatalf("outcomes of ignored addresses were counted: %+v", st)
		}
	}

	// Block UDP with public failures; requests with only ignored (or only
	// TCP) addresses do not count towards the next probe.
	pub := ma.StringCast("/ip4/1.2.3.4/udp/1/quic-v1")
	for range DefaultBlackHoleWindow {
		d.record(pub, false)
	}
	for i := range DefaultBlackHoleWindow - 1 {
		derr := &DialError{}
		if got := d.filter(slices.Clone(ignored), derr); len(got) != len(ignored) || len(derr.Addrs) != 0 {
			t.Fatalf("ignored addresses were filtered: kept %v, refused %v", got, derr.Addrs)
		}
		d.filter(addrs("/ip4/1.2.3.4/tcp/1"), &DialError{})
		if got := d.filter([]ma.Multiaddr{pub}, &DialError{}); len(got) != 0 {
			t.Fatalf("request %d: %s not refused", i+1, pub)
		}
	}
	if got := d.filter([]ma.Multiaddr{pub}, &DialError{}); len(got) != 1 {
		t.Fatalf("request %d was no probe", DefaultBlackHoleWindow)
	}
}

func TestBlackHoleOptions(t *testing.T) {
	_, id := newKey(t)
	for _, o := range []Option{
		WithUDPBlackHoleConfig(true, 0, 0), WithUDPBlackHoleConfig(true, 10, 0),
		WithIPv6BlackHoleConfig(true, 10, 11), WithIPv6BlackHoleConfig(true, -1, 1),
	} {
		if _, err := New(id, peerstore.New(), o); !errors.Is(err, errBadOption) {
			t.Errorf("got %v, want errBadOption", err)
		}
	}
	s, err := New(id, peerstore.New())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	udp, ipv6 := s.BlackHoleStatus()
	def := BlackHoleStatus{Enabled: true, State: bhProbing, Window: DefaultBlackHoleWindow}
	if udp != def || ipv6 != def {
		t.Errorf("defaults: %+v %+v", udp, ipv6)
	}
	s2, err := New(id, peerstore.New(), WithUDPBlackHoleConfig(false, 0, 0), WithIPv6BlackHoleConfig(true, 10, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	udp, ipv6 = s2.BlackHoleStatus()
	if udp != (BlackHoleStatus{}) || ipv6 != (BlackHoleStatus{Enabled: true, State: bhProbing, Window: 10}) {
		t.Errorf("configured: %+v %+v", udp, ipv6)
	}
	// Swarms do not share detectors.
	s.cfg.blackHoles.udp.record(false)
	if udp, _ := s2.BlackHoleStatus(); udp.Outcomes != 0 {
		t.Errorf("swarms share a detector")
	}
	for st, want := range map[BlackHoleState]string{
		bhProbing: "Probing", bhAllowed: "Allowed", bhBlocked: "Blocked", 7: "BlackHoleState(7)",
	} {
		if got := st.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// TestDialBlackHoledUDP runs a node whose network drops UDP: its QUIC
// dials hang until cancelled, and each peer connects over TCP one ranker
// step later. After DefaultBlackHoleWindow such dials the swarm stops
// dialing public UDP addresses, so connecting takes no extra step, except
// for every DefaultBlackHoleWindow-th dial request, which probes. When UDP
// works again the first probe unblocks it.
func TestDialBlackHoledUDP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b, c := newNode(t, tn), newNode(t, tn), newNode(t, tn)
		b.listen(t)
		c.listen(t)
		quic, tcp := ma.StringCast("/ip4/1.2.3.4/udp/1/quic-v1"), ma.StringCast("/ip4/1.2.3.4/tcp/1")
		quicOnly := ma.StringCast("/ip4/5.6.7.8/udp/1/quic-v1") // c's one address
		a.learn(b.id, quic, tcp)
		a.learn(c.id, quicOnly)
		blackHole := testtransport.Behaviour{Block: make(chan struct{})}
		a.tpt.SetBehaviour(quic, blackHole)
		a.tpt.SetBehaviour(quicOnly, blackHole)

		const (
			both    = "/ip4/1.2.3.4/udp/1/quic-v1@0s /ip4/1.2.3.4/tcp/1@250ms"
			tcpOnly = "/ip4/1.2.3.4/tcp/1@0s"
			udpOnly = "/ip4/1.2.3.4/udp/1/quic-v1@0s"
		)
		// dialB dials b and checks which addresses were dialed when, how
		// long it took and which address connected; then it lets every
		// dial settle and closes the connection.
		dialB := func(wantDials string, wantTook time.Duration, wantAddr ma.Multiaddr) {
			t.Helper()
			n := len(a.tpt.DialLog())
			start := time.Now()
			conn, err := a.s.DialPeer(t.Context(), b.id)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took != wantTook {
				t.Errorf("DialPeer took %v, want %v", took, wantTook)
			}
			if !conn.RemoteMultiaddr().Equal(wantAddr) {
				t.Errorf("connected to %s, want %s", conn.RemoteMultiaddr(), wantAddr)
			}
			// The hanging QUIC dial is cancelled once the caller left.
			synctest.Wait()
			if got := strings.Join(dialLogOffsets(a.tpt, start)[n:], " "); got != wantDials {
				t.Fatalf("dials:\n got %s\nwant %s", got, wantDials)
			}
			if err := a.s.ClosePeer(b.id); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		wantStatus := func(want BlackHoleStatus) {
			t.Helper()
			udp, ipv6 := a.s.BlackHoleStatus()
			if udp != want {
				t.Fatalf("UDP status %+v, want %+v", udp, want)
			}
			if ipv6 != (BlackHoleStatus{Enabled: true, State: bhProbing, Window: DefaultBlackHoleWindow}) {
				t.Fatalf("IPv6 status %+v: IPv4 dials were counted", ipv6)
			}
		}

		for range DefaultBlackHoleWindow {
			dialB(both, PublicDialStep, tcp)
		}
		wantStatus(BlackHoleStatus{Enabled: true, State: bhBlocked, Window: 100, Outcomes: 100, NextProbeIn: 100})
		if a.s.CanDial(b.id, quic) || !a.s.CanDial(b.id, tcp) {
			t.Errorf("CanDial does not follow the black hole")
		}

		for range DefaultBlackHoleWindow - 2 {
			dialB(tcpOnly, 0, tcp)
		}
		// A peer with UDP addresses only cannot be dialed, even for hole
		// punching.
		n := len(a.tpt.DialLog())
		ctx := network.WithForceDirectDial(network.WithSimultaneousConnect(t.Context(), true, "test"), "test")
		_, err := a.s.DialPeer(ctx, c.id)
		var derr *DialError
		if !errors.As(err, &derr) || !errors.Is(err, ErrDialRefusedBlackHole) || !errors.Is(err, ErrNoGoodAddresses) ||
			len(derr.Addrs) != 1 || !derr.Addrs[0].Addr.Equal(quicOnly) {
			t.Fatalf("got %v, want %s refused with ErrDialRefusedBlackHole", err, quicOnly)
		}
		if got := len(a.tpt.DialLog()); got != n {
			t.Fatalf("a refused address was dialed")
		}
		wantStatus(BlackHoleStatus{Enabled: true, State: bhBlocked, Window: 100, Outcomes: 100, NextProbeIn: 1})

		// The 100th request while blocked probes, and fails.
		dialB(both, PublicDialStep, tcp)
		wantStatus(BlackHoleStatus{Enabled: true, State: bhBlocked, Window: 100, Outcomes: 100, NextProbeIn: 100})

		// UDP works again: the next probe connects over QUIC at once and
		// unblocks.
		a.tpt.SetBehaviour(quic, testtransport.Behaviour{})
		for range DefaultBlackHoleWindow - 1 {
			dialB(tcpOnly, 0, tcp)
		}
		dialB(udpOnly, 0, quic)
		wantStatus(BlackHoleStatus{Enabled: true, State: bhProbing, Window: 100})
		if !a.s.CanDial(b.id, quic) {
			t.Errorf("CanDial refuses an unblocked address")
		}
		dialB(udpOnly, 0, quic)
		wantStatus(BlackHoleStatus{Enabled: true, State: bhProbing, Window: 100, Outcomes: 1, Successes: 1})
	})
}

// TestDialBlackHoledIPv6 checks that failed dials of public IPv6
// addresses block IPv6 and that IPv4 is dialed straight away afterwards.
func TestDialBlackHoledIPv6(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := testtransport.NewNetwork()
		a, b := newNode(t, tn, WithIPv6BlackHoleConfig(true, 10, 2)), newNode(t, tn)
		b.listen(t)
		v6, v4 := ma.StringCast("/ip6/2600::1/tcp/1"), ma.StringCast("/ip4/1.2.3.4/tcp/1")
		a.learn(b.id, v6, v4)
		// No route: IPv6 dials fail after 10ms.
		a.tpt.SetBehaviour(v6, testtransport.Behaviour{Delay: 10 * ms, Err: errBoom})
		for i := range 11 {
			start := time.Now()
			n := len(a.tpt.DialLog())
			if _, err := a.s.DialPeer(t.Context(), b.id); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			got := strings.Join(dialLogOffsets(a.tpt, start)[n:], " ")
			want := "/ip6/2600::1/tcp/1@0s /ip4/1.2.3.4/tcp/1@10ms"
			if i == 10 {
				want = "/ip4/1.2.3.4/tcp/1@0s"
			}
			if got != want {
				t.Fatalf("dial %d:\n got %s\nwant %s", i+1, got, want)
			}
			if err := a.s.ClosePeer(b.id); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if _, ipv6 := a.s.BlackHoleStatus(); ipv6.State != bhBlocked || ipv6.NextProbeIn != 9 {
			t.Errorf("IPv6 status %+v", ipv6)
		}
	})
}
