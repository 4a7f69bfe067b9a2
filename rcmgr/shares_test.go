package rcmgr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
)

// sharesMachines are the budgets the default-limit tests try: the
// smallest (128 MiB), and 1, 4 and 16 GiB.
var sharesMachines = []int64{0, 1 << 30, 4 << 30, 16 << 30}

// inboundPeer opens an inbound connection from endpoint and names its
// peer p; the test ends it.
func inboundPeer(t *testing.T, m *Manager, p peer.ID, endpoint string) network.ConnManagementScope {
	t.Helper()
	c, err := m.OpenConnection(network.DirInbound, true, addr(t, endpoint))
	if err != nil {
		t.Fatalf("connection of %s from %s: %v", p, endpoint, err)
	}
	t.Cleanup(c.Done)
	if err := c.SetPeer(p); err != nil {
		t.Fatalf("SetPeer %s: %v", p, err)
	}
	return c
}

// unnegotiatedUntilRefused opens inbound streams of p that never name a
// protocol until the manager refuses one, and returns how many it
// admitted and the refusal. The test ends the streams.
func unnegotiatedUntilRefused(t *testing.T, m *Manager, p peer.ID, most int) (int, error) {
	t.Helper()
	for n := 0; n < most; n++ {
		st, err := m.OpenStream(p, network.DirInbound)
		if err != nil {
			return n, err
		}
		t.Cleanup(st.Done)
	}
	return most, nil
}

// TestDefaultsLeaveRoomAfterEightPeers: with the default limits of every
// machine size, eight peers from eight addresses that each open inbound
// streams and never name a protocol, as many as they are let, leave at
// least a quarter of the transient scope's inbound streams to the others,
// and a ninth peer still opens streams.
func TestDefaultsLeaveRoomAfterEightPeers(t *testing.T) {
	for _, budget := range sharesMachines {
		t.Run(fmt.Sprintf("%dMiB", max(budget, minMemoryBudget)>>20), func(t *testing.T) {
			l := ScaledDefaultLimits(max(budget, minMemoryBudget), 4096)
			m := newTestManager(t, l)
			pool := l.Transient.StreamsInbound
			held := 0
			for i := range 8 {
				p := testPeer(t, i)
				inboundPeer(t, m, p, fmt.Sprintf("/ip4/203.0.113.%d/tcp/4001", i+1))
				n, err := unnegotiatedUntilRefused(t, m, p, pool+1)
				if !errors.Is(err, network.ErrResourceLimitExceeded) {
					t.Fatalf("attacker %d: %d streams, then %v; want a refusal", i, n, err)
				}
				held += n
			}
			if room := pool - held; room < pool/4 {
				t.Fatalf("8 attackers hold %d of the transient scope's %d inbound streams; want at least %d left", held, pool, pool/4)
			}
			newcomer := testPeer(t, 100)
			inboundPeer(t, m, newcomer, "/ip4/198.51.100.7/tcp/4001")
			if n, err := unnegotiatedUntilRefused(t, m, newcomer, pool/16); n != pool/16 {
				t.Fatalf("a ninth peer got %d streams (%v); want %d", n, err, pool/16)
			}
			checkInvariants(t, m)
		})
	}
}

// TestSourceCannotFillTransientConns: with the default limits, and the
// per-IP limits out of the way, one address cannot hold more than an
// eighth of the transient scope's inbound connections, and eight
// addresses at their share leave room for a ninth.
func TestSourceCannotFillTransientConns(t *testing.T) {
	for _, budget := range sharesMachines {
		t.Run(fmt.Sprintf("%dMiB", max(budget, minMemoryBudget)>>20), func(t *testing.T) {
			l := ScaledDefaultLimits(max(budget, minMemoryBudget), 4096)
			m := newTestManager(t, l, WithConnLimitsPerIP([]SubnetLimit{}, []SubnetLimit{}))
			pool := l.Transient.ConnsInbound
			share := max(pool/8, 1)
			open := func(src string) (int, error) {
				for n := 0; n <= pool; n++ {
					c, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/"+src+"/tcp/4001"))
					if err != nil {
						return n, err
					}
					t.Cleanup(c.Done)
				}
				return pool + 1, nil
			}
			for i := range 7 {
				n, err := open(fmt.Sprintf("203.0.113.%d", i+1))
				if n != share || !errors.Is(err, network.ErrResourceLimitExceeded) {
					t.Fatalf("address %d: %d transient connections, then %v; want %d, then a refusal", i+1, n, err, share)
				}
			}
			if n, _ := open("198.51.100.7"); n < share {
				t.Fatalf("an eighth address got %d transient connections; want %d", n, share)
			}
			checkInvariants(t, m)
		})
	}
}

// TestPeersOfOneSourceShare: peers that come from one address share that
// address's part of the transient scope's streams: eight identities (as
// many connections as the per-IP limit lets one address have) get no more
// than a burst and a share between them.
func TestPeersOfOneSourceShare(t *testing.T) {
	l := ScaledDefaultLimits(1<<30, 4096)
	m := newTestManager(t, l)
	pool := l.Transient.StreamsInbound
	held := 0
	for i := range 8 {
		p := testPeer(t, i)
		inboundPeer(t, m, p, fmt.Sprintf("/ip4/203.0.113.9/tcp/%d", 4001+i))
		n, _ := unnegotiatedUntilRefused(t, m, p, pool+1)
		held += n
	}
	if most := pool/4 + pool/16; held > most {
		t.Fatalf("8 peers of one address hold %d of %d inbound transient streams; want at most %d", held, pool, most)
	}
	checkInvariants(t, m)
}

// sharesLimits are unlimited limits with small shares, for exact tests.
func sharesLimits(sh Shares) Limits {
	l := UnlimitedLimits()
	l.Shares = sh
	return l
}

// mustRefuse fails t unless err is a refusal by the limit origin with
// exactly the message want.
func mustRefuse(t *testing.T, what string, err error, origin, want string) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, network.ErrResourceLimitExceeded) || le.Origin != origin {
		t.Fatalf("%s: %v; want a refusal by %s", what, err, origin)
	}
	if err.Error() != want {
		t.Fatalf("%s: %q; want %q", what, err.Error(), want)
	}
}

// TestUnnegotiatedStreamCaps: the caps on unnegotiated inbound streams
// per connection, peer and source, each exactly, past the burst; naming
// the protocol or ending a stream gives its place back; outbound streams
// are not capped.
func TestUnnegotiatedStreamCaps(t *testing.T) {
	m := newTestManager(t, sharesLimits(Shares{
		UnnegotiatedStreamsPerConn:   3,
		UnnegotiatedStreamsPerPeer:   4,
		UnnegotiatedStreamsPerSource: 6,
		UnnegotiatedStreamsBurst:     8,
	}))
	a, b, c := testPeer(t, 1), testPeer(t, 2), testPeer(t, 3)
	ca := inboundPeer(t, m, a, "/ip4/203.0.113.1/tcp/1")
	open := func(p peer.ID) (network.StreamManagementScope, error) {
		st, err := m.OpenStream(p, network.DirInbound)
		if err == nil {
			t.Cleanup(st.Done)
		}
		return st, err
	}

	// The burst: a's first 8 streams fit, though a has one connection
	// and its cap is 3.
	var as []network.StreamManagementScope
	for i := range 8 {
		st, err := open(a)
		if err != nil {
			t.Fatalf("stream %d of the burst: %v", i+1, err)
		}
		as = append(as, st)
	}
	_, err := open(a)
	mustRefuse(t, "a's 9th stream", err, "Shares.UnnegotiatedStreamsPerConn",
		"conn 1: cannot reserve inbound stream: 8 of 3 in use (limit from Shares.UnnegotiatedStreamsPerConn)")
	if ca.(*connScope).unnegotiated != 8 {
		t.Fatalf("a's connection counts %d unnegotiated streams; want 8", ca.(*connScope).unnegotiated)
	}

	// b has two connections from 203.0.113.2: the manager cannot tell
	// which one a stream comes on, so the peer's cap applies.
	cb1 := inboundPeer(t, m, b, "/ip4/203.0.113.2/tcp/1")
	cb2 := inboundPeer(t, m, b, "/ip4/203.0.113.2/tcp/2")
	var bs []network.StreamManagementScope
	for i := range 4 {
		st, err := open(b)
		if err != nil {
			t.Fatalf("b's stream %d: %v", i+1, err)
		}
		bs = append(bs, st)
	}
	_, err = open(b)
	mustRefuse(t, "b's 5th stream", err, "Shares.UnnegotiatedStreamsPerPeer",
		"peer "+b.String()+": cannot reserve inbound stream: 4 of 4 in use (limit from Shares.UnnegotiatedStreamsPerPeer)")
	// Once the host says which connection they came on, the
	// connection's cap applies.
	for i, st := range bs[:3] {
		if err := AttachConn(st, cb1); err != nil {
			t.Fatalf("attaching b's stream %d to its first connection: %v", i+1, err)
		}
	}
	err = AttachConn(bs[3], cb1)
	mustRefuse(t, "b's 4th stream on its first connection", err, "Shares.UnnegotiatedStreamsPerConn",
		cb1.(*connScope).name()+": cannot reserve inbound stream: 3 of 3 in use (limit from Shares.UnnegotiatedStreamsPerConn)")
	if err := AttachConn(bs[3], cb2); err != nil {
		t.Fatalf("attaching b's 4th stream to its second connection: %v", err)
	}

	// c comes from b's address, which holds 4 of its 6.
	inboundPeer(t, m, c, "/ip4/203.0.113.2/tcp/3")
	for i := range 2 {
		if _, err := open(c); err != nil {
			t.Fatalf("c's stream %d: %v", i+1, err)
		}
	}
	_, err = open(c)
	mustRefuse(t, "c's 3rd stream", err, "Shares.UnnegotiatedStreamsPerSource",
		"ip 203.0.113.2/32: cannot reserve inbound stream: 6 of 6 in use (limit from Shares.UnnegotiatedStreamsPerSource)")

	// Outbound streams are the node's own: not capped.
	for range 10 {
		if _, err := m.OpenStream(a, network.DirOutbound); err != nil {
			t.Fatalf("an outbound stream: %v", err)
		}
	}

	// Naming a protocol, or ending, gives the place back: a holds 8,
	// then 2, and may open one more.
	if err := as[0].SetProtocol("/p/1"); err != nil {
		t.Fatal(err)
	}
	for _, st := range as[1:6] {
		st.Done()
	}
	if _, err := open(a); err != nil {
		t.Fatalf("a's stream once it holds 2: %v", err)
	}
	_, err = open(a)
	mustRefuse(t, "a's stream once it holds 3", err, "Shares.UnnegotiatedStreamsPerConn",
		"conn 1: cannot reserve inbound stream: 3 of 3 in use (limit from Shares.UnnegotiatedStreamsPerConn)")

	snap := m.Snapshot()
	wantSources := []SourceSnapshot{
		{Source: netip.MustParsePrefix("203.0.113.1/32"), UnnegotiatedStreams: 3},
		{Source: netip.MustParsePrefix("203.0.113.2/32"), UnnegotiatedStreams: 6},
	}
	if !reflect.DeepEqual(snap.Sources, wantSources) {
		t.Errorf("sources %+v; want %+v", snap.Sources, wantSources)
	}
	wantRefusals := []LimitRefusalCount{
		{Limit: "Shares.UnnegotiatedStreamsPerConn", Kind: KindConn, Resource: ResourceStreamsInbound, Count: 3},
		{Limit: "Shares.UnnegotiatedStreamsPerPeer", Kind: KindPeer, Resource: ResourceStreamsInbound, Count: 1},
		{Limit: "Shares.UnnegotiatedStreamsPerSource", Kind: KindIP, Resource: ResourceStreamsInbound, Count: 1},
	}
	if !reflect.DeepEqual(snap.RefusalsByLimit, wantRefusals) {
		t.Errorf("refusals by limit %+v; want %+v", snap.RefusalsByLimit, wantRefusals)
	}
	if got := m.RefusalsByLimit(); !reflect.DeepEqual(got, wantRefusals) {
		t.Errorf("RefusalsByLimit %+v; want %+v", got, wantRefusals)
	}
	checkInvariants(t, m)
}

// TestStreamCountsAgainstPeerFromTheStart: an inbound stream counts
// against its peer's limits while it has not named its protocol, so the
// peer's limit bounds what it holds of the transient scope.
func TestStreamCountsAgainstPeerFromTheStart(t *testing.T) {
	l := UnlimitedLimits()
	l.PeerDefault.StreamsInbound = 2
	m := newTestManager(t, l)
	p := testPeer(t, 1)
	n, err := unnegotiatedUntilRefused(t, m, p, 10)
	mustRefuse(t, "the peer's third stream", err, "PeerDefault",
		"peer "+p.String()+": cannot reserve inbound stream: 2 of 2 in use (limit from PeerDefault)")
	if n != 2 {
		t.Fatalf("%d streams; want 2", n)
	}
}

// TestTransientConnsPerSource: a source's share of transient
// connections, exactly; SetPeer and Done free a slot; outbound and
// allowlisted connections do not count; loopback addresses count, each
// on its own, only without the exemption; IPv6 addresses group by /56
// unless told otherwise.
func TestTransientConnsPerSource(t *testing.T) {
	open := func(t *testing.T, m *Manager, dir network.Direction, a string) (network.ConnManagementScope, error) {
		c, err := m.OpenConnection(dir, true, addr(t, a))
		if err == nil {
			t.Cleanup(c.Done)
		}
		return c, err
	}
	t.Run("ipv4", func(t *testing.T) {
		m := newTestManager(t, sharesLimits(Shares{TransientConnsPerSource: 2}), WithAllowlist(addr(t, "/ip4/198.51.100.0/ipcidr/24")))
		c1, _ := open(t, m, network.DirInbound, "/ip4/203.0.113.1/tcp/1")
		c2, _ := open(t, m, network.DirInbound, "/ip4/203.0.113.1/tcp/2")
		_, err := open(t, m, network.DirInbound, "/ip4/203.0.113.1/tcp/3")
		mustRefuse(t, "a third transient connection", err, "Shares.TransientConnsPerSource",
			"ip 203.0.113.1/32: cannot reserve inbound connection: 2 of 2 in use (limit from Shares.TransientConnsPerSource)")
		for _, a := range []struct {
			dir network.Direction
			a   string
		}{
			{network.DirOutbound, "/ip4/203.0.113.1/tcp/4"},
			{network.DirInbound, "/ip4/203.0.113.2/tcp/1"},
			{network.DirInbound, "/ip4/198.51.100.7/tcp/1"},
			{network.DirInbound, "/ip4/198.51.100.7/tcp/2"},
			{network.DirInbound, "/ip4/198.51.100.7/tcp/3"},
			{network.DirInbound, "/ip4/127.0.0.1/tcp/1"},
			{network.DirInbound, "/ip4/127.0.0.1/tcp/2"},
			{network.DirInbound, "/ip4/127.0.0.1/tcp/3"},
		} {
			if _, err := open(t, m, a.dir, a.a); err != nil {
				t.Fatalf("%s %s: %v", a.dir, a.a, err)
			}
		}
		if err := c1.SetPeer(testPeer(t, 1)); err != nil {
			t.Fatal(err)
		}
		c3, err := open(t, m, network.DirInbound, "/ip4/203.0.113.1/tcp/3")
		if err != nil {
			t.Fatalf("once one connection named its peer: %v", err)
		}
		c2.Done()
		if _, err := open(t, m, network.DirInbound, "/ip4/203.0.113.1/tcp/5"); err != nil {
			t.Fatalf("once one connection ended: %v", err)
		}
		_, err = open(t, m, network.DirInbound, "/ip4/203.0.113.1/tcp/6")
		mustRefuse(t, "a third transient connection again", err, "Shares.TransientConnsPerSource",
			"ip 203.0.113.1/32: cannot reserve inbound connection: 2 of 2 in use (limit from Shares.TransientConnsPerSource)")
		c3.Done()
		checkInvariants(t, m)
	})
	t.Run("loopback", func(t *testing.T) {
		m := newTestManager(t, sharesLimits(Shares{TransientConnsPerSource: 1}), WithLoopbackExempt(false))
		for _, a := range []string{"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.2/tcp/1", "/ip6/::1/tcp/1"} {
			if _, err := open(t, m, network.DirInbound, a); err != nil {
				t.Fatalf("%s: %v", a, err)
			}
		}
		_, err := open(t, m, network.DirInbound, "/ip4/127.0.0.2/udp/1/quic-v1")
		mustRefuse(t, "a second transient connection from 127.0.0.2", err, "Shares.TransientConnsPerSource",
			"ip 127.0.0.2/32: cannot reserve inbound connection: 1 of 1 in use (limit from Shares.TransientConnsPerSource)")
		_, err = open(t, m, network.DirInbound, "/ip6/::1/udp/1/quic-v1")
		mustRefuse(t, "a second transient connection from ::1", err, "Shares.TransientConnsPerSource",
			"ip ::/56: cannot reserve inbound connection: 1 of 1 in use (limit from Shares.TransientConnsPerSource)")
	})
	t.Run("ipv6", func(t *testing.T) {
		for _, c := range []struct {
			prefix int
			want   string // the refusal of the second connection, or ""
		}{
			{0, "ip 2001:db8:0:100::/56: cannot reserve inbound connection: 1 of 1 in use (limit from Shares.TransientConnsPerSource)"},
			{64, ""},
		} {
			m := newTestManager(t, sharesLimits(Shares{TransientConnsPerSource: 1, IPv6Prefix: c.prefix}))
			if _, err := open(t, m, network.DirInbound, "/ip6/2001:db8:0:101::1/tcp/1"); err != nil {
				t.Fatal(err)
			}
			_, err := open(t, m, network.DirInbound, "/ip6/2001:db8:0:102::1/tcp/1")
			if c.want == "" {
				if err != nil {
					t.Fatalf("prefix %d: another /64 of the /56: %v", c.prefix, err)
				}
				continue
			}
			mustRefuse(t, "another /64 of the /56", err, "Shares.TransientConnsPerSource", c.want)
		}
	})
}

// TestSharesReleased: everything the shares counted is given back when
// the connections and streams end.
func TestSharesReleased(t *testing.T) {
	m, err := New(ScaledDefaultLimits(1<<30, 1024), WithRefusalLog(nil, 0), WithLoopbackExempt(false))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var done []func()
	for i := range 4 {
		p := testPeer(t, i)
		c, err := m.OpenConnection(network.DirInbound, true, addr(t, fmt.Sprintf("/ip4/127.0.0.%d/tcp/1", 2+i%2)))
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, c.Done)
		if i%2 == 0 {
			if err := c.SetPeer(p); err != nil {
				t.Fatal(err)
			}
		}
		for range 40 {
			if st, err := m.OpenStream(p, network.DirInbound); err == nil {
				done = append(done, st.Done)
				AttachConn(st, c)
			}
		}
	}
	if len(m.Snapshot().Sources) == 0 {
		t.Fatal("no source holds anything")
	}
	for _, d := range done {
		d()
	}
	if s := m.Snapshot().Sources; len(s) != 0 {
		t.Fatalf("sources still hold %+v", s)
	}
	checkEmpty(t, m)
}

// TestAttachConnIgnoresOthers: AttachConn does nothing with scopes that
// are not a Manager's, or of another Manager or peer.
func TestAttachConnIgnoresOthers(t *testing.T) {
	m := newTestManager(t, sharesLimits(Shares{UnnegotiatedStreamsPerConn: 1}))
	other := newTestManager(t, sharesLimits(Shares{UnnegotiatedStreamsPerConn: 1}))
	p := testPeer(t, 1)
	c := inboundPeer(t, m, p, "/ip4/203.0.113.1/tcp/1")
	oc := inboundPeer(t, other, p, "/ip4/203.0.113.1/tcp/1")
	q := inboundPeer(t, m, testPeer(t, 2), "/ip4/203.0.113.2/tcp/1")
	st, err := m.OpenStream(p, network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Done()
	for _, cs := range []network.ConnScope{&network.NullScope{}, oc, q} {
		if err := AttachConn(st, cs); err != nil {
			t.Fatalf("AttachConn with %T: %v", cs, err)
		}
	}
	if err := AttachConn(&network.NullScope{}, c); err != nil {
		t.Fatal(err)
	}
	if c.(*connScope).unnegotiated != 1 || q.(*connScope).unnegotiated != 0 {
		t.Fatal("AttachConn moved a stream to a connection of another peer")
	}
}

// TestSharesJSON: the shares in a limit file: every field written,
// "unlimited" for a cap of 0, any field set on its own, and clear errors.
func TestSharesJSON(t *testing.T) {
	b, err := json.Marshal(fixedDefaults().Shares)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"IPv4Prefix":32,"IPv6Prefix":56,"TransientConnsPerSource":6,"UnnegotiatedStreamsPerConn":16,"UnnegotiatedStreamsPerPeer":16,"UnnegotiatedStreamsPerSource":16,"UnnegotiatedStreamsBurst":64}`; string(b) != want {
		t.Errorf("default shares written as\n%s\nwant\n%s", b, want)
	}
	b, _ = json.Marshal(Shares{})
	if want := `{"IPv4Prefix":0,"IPv6Prefix":0,"TransientConnsPerSource":"unlimited","UnnegotiatedStreamsPerConn":"unlimited","UnnegotiatedStreamsPerPeer":"unlimited","UnnegotiatedStreamsPerSource":"unlimited","UnnegotiatedStreamsBurst":"unlimited"}`; string(b) != want {
		t.Errorf("zero shares written as\n%s\nwant\n%s", b, want)
	}

	in := `{"Shares": {"UnnegotiatedStreamsPerPeer": 5, "TransientConnsPerSource": "unlimited", "IPv6Prefix": 48,
		"UnnegotiatedStreamsBurst": "default", "UnnegotiatedStreamsPerConn": null, "UnnegotiatedStreamsPerSource": 0}}`
	got, err := ParseLimits(strings.NewReader(in), fixedDefaults())
	if err != nil {
		t.Fatal(err)
	}
	want := fixedDefaults()
	want.Shares.UnnegotiatedStreamsPerPeer = 5
	want.Shares.TransientConnsPerSource = 0
	want.Shares.IPv6Prefix = 48
	want.Shares.UnnegotiatedStreamsPerSource = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got.Shares, want.Shares)
	}

	for in, want := range map[string]string{
		`{"Shares": {"PerPeer": 1}}`:                             `rcmgr: invalid limits: Shares: unknown field "PerPeer" (known fields: IPv4Prefix, IPv6Prefix, TransientConnsPerSource, UnnegotiatedStreamsPerConn, UnnegotiatedStreamsPerPeer, UnnegotiatedStreamsPerSource, UnnegotiatedStreamsBurst)`,
		`{"Shares": {"IPv4Prefix": 33}}`:                         `rcmgr: invalid limits: Shares: IPv4Prefix: want a prefix length from 0 to 32 or "default", not 33`,
		`{"Shares": {"IPv6Prefix": "unlimited"}}`:                `rcmgr: invalid limits: Shares: IPv6Prefix: want a prefix length from 0 to 128 or "default", not "unlimited"`,
		`{"Shares": {"UnnegotiatedStreamsBurst": -1}}`:           `rcmgr: invalid limits: Shares: UnnegotiatedStreamsBurst: want a whole number, "unlimited" or "default", not -1`,
		`{"Shares": {"UnnegotiatedStreamsPerConn": "blockAll"}}`: `rcmgr: invalid limits: Shares: UnnegotiatedStreamsPerConn: want a whole number, "unlimited" or "default", not "blockAll"`,
		`{"Shares": 3}`: `rcmgr: invalid limits: Shares: want a JSON object, not 3`,
	} {
		_, err := ParseLimits(strings.NewReader(in), fixedDefaults())
		if !errors.Is(err, ErrInvalidLimits) || err.Error() != want {
			t.Errorf("%s:\n got %v\nwant %s", in, err, want)
		}
	}
	bad := fixedDefaults()
	bad.Shares.IPv4Prefix = 40
	if _, err := New(bad); !errors.Is(err, ErrInvalidLimits) {
		t.Errorf("New with an IPv4 prefix of 40: %v", err)
	}
	bad = fixedDefaults()
	bad.Shares.UnnegotiatedStreamsPerPeer = -1
	if err := bad.Validate(); err == nil || err.Error() != "rcmgr: invalid limits: Shares.UnnegotiatedStreamsPerPeer is negative (-1)" {
		t.Errorf("Validate with a negative cap: %v", err)
	}
}
