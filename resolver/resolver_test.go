package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The swarm takes a network.MultiaddrDNSResolver (swarm.WithMultiaddrResolver).
var _ network.MultiaddrDNSResolver = (*Resolver)(nil)

const (
	idA = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
	idB = "QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb"
)

func mustID(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustAddr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return m
}

func addrStrings(ms []ma.Multiaddr) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// sorted returns a sorted copy, for answers whose order the Go resolver
// chooses (it sorts addresses by RFC 6724).
func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// testCtx bounds a test that is not about timeouts, so that a bug fails
// it rather than hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newServerResolver(t *testing.T, s *dnsServer) *Resolver {
	t.Helper()
	r, err := New(WithDefaultResolver(s.resolver()))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNewDefaults(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if r.def != net.DefaultResolver {
		t.Fatalf("default BasicResolver = %v, want net.DefaultResolver", r.def)
	}
}

func TestNewInvalidOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"nil default":         WithDefaultResolver(nil),
		"empty domain":        WithDomainResolver("", net.DefaultResolver),
		"root domain":         WithDomainResolver(".", net.DefaultResolver),
		"nil domain resolver": WithDomainResolver("example.test", nil),
	} {
		if _, err := New(opt); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
}

func TestResolveDNSComponent(t *testing.T) {
	s := startDNSServer(t)
	s.addIP("both.test", "192.0.2.1", "192.0.2.2", "2001:db8::1")
	s.addIP("v4only.test", "192.0.2.3")
	r := newServerResolver(t, s)

	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/dns4/both.test/tcp/4001", []string{"/ip4/192.0.2.1/tcp/4001", "/ip4/192.0.2.2/tcp/4001"}},
		{"/dns6/both.test/udp/4001/quic-v1/p2p/" + idA, []string{"/ip6/2001:db8::1/udp/4001/quic-v1/p2p/" + idA}},
		{"/dns/both.test/tcp/1", []string{"/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.2/tcp/1", "/ip6/2001:db8::1/tcp/1"}},
		{"/dns/v4only.test/tcp/1", []string{"/ip4/192.0.2.3/tcp/1"}},
		// What precedes the component is kept.
		{"/ip4/192.0.2.9/tcp/1/p2p/" + idB + "/p2p-circuit/dns4/v4only.test/tcp/2",
			[]string{"/ip4/192.0.2.9/tcp/1/p2p/" + idB + "/p2p-circuit/ip4/192.0.2.3/tcp/2"}},
		// Only the first DNS component is resolved.
		{"/dns4/v4only.test/tcp/1/p2p/" + idB + "/p2p-circuit/dns4/both.test/tcp/2",
			[]string{"/ip4/192.0.2.3/tcp/1/p2p/" + idB + "/p2p-circuit/dns4/both.test/tcp/2"}},
		// An IP literal needs no query.
		{"/dns4/192.0.2.7/tcp/1", []string{"/ip4/192.0.2.7/tcp/1"}},
		// Addresses without a DNS component come back as they are.
		{"/ip4/192.0.2.9/tcp/1", []string{"/ip4/192.0.2.9/tcp/1"}},
		{"/dnsaddr/both.test", []string{"/dnsaddr/both.test"}},
	} {
		got, err := r.ResolveDNSComponent(testCtx(t), mustAddr(t, tc.in), 100)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if g := sorted(addrStrings(got)); !slices.Equal(g, sorted(tc.want)) {
			t.Errorf("%s: got %v, want %v", tc.in, g, tc.want)
		}
	}

	// Names are case-insensitive and may be fully qualified.
	got, err := r.ResolveDNSComponent(testCtx(t), mustAddr(t, "/dns4/V4Only.Test./tcp/1"), 100)
	if err != nil || len(got) != 1 || got[0].String() != "/ip4/192.0.2.3/tcp/1" {
		t.Errorf("mixed case FQDN: got %v, %v", got, err)
	}
}

func TestResolveDNSComponentQueriesOnlyTheFamily(t *testing.T) {
	s := startDNSServer(t)
	for _, h := range []string{"q4.test", "q6.test", "q46.test"} {
		s.addIP(h, "192.0.2.1", "2001:db8::1")
	}
	r := newServerResolver(t, s)
	for _, in := range []string{"/dns4/q4.test/tcp/1", "/dns6/q6.test/tcp/1", "/dns/q46.test/tcp/1"} {
		if _, err := r.ResolveDNSComponent(testCtx(t), mustAddr(t, in), 10); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
	}
	for _, c := range []struct {
		name    string
		a, aaaa bool
	}{{"q4.test", true, false}, {"q6.test", false, true}, {"q46.test", true, true}} {
		if got := s.count(c.name, dns.TypeA) > 0; got != c.a {
			t.Errorf("%s: A queried = %v, want %v", c.name, got, c.a)
		}
		if got := s.count(c.name, dns.TypeAAAA) > 0; got != c.aaaa {
			t.Errorf("%s: AAAA queried = %v, want %v", c.name, got, c.aaaa)
		}
	}
}

func TestResolveDNSComponentErrors(t *testing.T) {
	s := startDNSServer(t)
	s.addIP("v4only.test", "192.0.2.3")
	r := newServerResolver(t, s)

	for _, in := range []string{"/dns4/nx.test/tcp/1", "/dns/nx.test/tcp/1", "/dns6/v4only.test/tcp/1"} {
		got, err := r.ResolveDNSComponent(testCtx(t), mustAddr(t, in), 10)
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("%s: got %v, %v; want a not-found *net.DNSError", in, got, err)
		}
	}
	if s.count("nx.test", dns.TypeA) == 0 {
		t.Error("the server was never asked about nx.test")
	}

	got, err := r.ResolveDNSComponent(testCtx(t), mustAddr(t, "/dns4/v4only.test/tcp/1"), 0)
	if got != nil || err != nil {
		t.Errorf("outputLimit 0: got %v, %v; want nothing", got, err)
	}
}

func TestResolveDNSComponentTruncatesLongAnswers(t *testing.T) {
	s := startDNSServer(t)
	var ips, want []string
	for i := range 100 {
		ip := fmt.Sprintf("198.51.100.%d", i)
		ips = append(ips, ip)
		want = append(want, "/ip4/"+ip+"/tcp/1")
	}
	s.addIP("many.test", ips...)
	r := newServerResolver(t, s)

	got, err := r.ResolveDNSComponent(testCtx(t), mustAddr(t, "/dns4/many.test/tcp/1"), 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("got %d addresses, want 7: %v", len(got), got)
	}
	for _, g := range addrStrings(got) {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected address %s", g)
		}
	}
	// 100 A records do not fit in a UDP answer: the lookup went on over TCP.
	if s.tcpQueries() == 0 {
		t.Error("no query over TCP; the long answer was not exercised")
	}
}

// bootRecords is the dnsaddr zone of boot.test.
func bootRecords(longHost string) []string {
	return []string{
		"/ip4/192.0.2.1/tcp/4001/p2p/" + idA,
		"/ip6/2001:db8::1/udp/4001/quic-v1/p2p/" + idA,
		"/ip4/192.0.2.2/tcp/4001/p2p/" + idB,
		"/dns4/" + longHost + "/tcp/4001/p2p/" + idA,
		"/ip4/192.0.2.3/tcp/4001",
	}
}

func TestResolveDNSAddr(t *testing.T) {
	s := startDNSServer(t)
	// A record longer than one 255-byte TXT string: DNS splits it, the
	// resolver sees it whole.
	longHost := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." +
		strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + ".test"
	recs := bootRecords(longHost)
	s.addDNSAddr("boot.test", recs...)
	s.addTXT("_dnsaddr.boot.test", "v=spf1 -all", "dnsaddr=/garbage/1", "dnsaddr=")
	r := newServerResolver(t, s)
	a, b := mustID(t, idA), mustID(t, idB)

	for _, tc := range []struct {
		name  string
		peer  peer.ID
		in    string
		limit int
		want  []string
	}{
		{"peer A", a, "/dnsaddr/boot.test", 100, []string{recs[0], recs[1], recs[3], recs[4]}},
		{"peer B", b, "/dnsaddr/boot.test", 100, []string{recs[2], recs[4]}},
		{"any peer", "", "/dnsaddr/boot.test", 100, recs},
		{"limit", a, "/dnsaddr/boot.test", 2, []string{recs[0], recs[1]}},
		{"p2p suffix", a, "/dnsaddr/boot.test/p2p/" + idA, 100, []string{recs[0], recs[1], recs[3]}},
		{"tcp suffix", a, "/dnsaddr/boot.test/tcp/4001/p2p/" + idA, 100, []string{recs[0], recs[3]}},
		{"suffix without peer", "", "/dnsaddr/boot.test/tcp/4001", 100, []string{recs[4]}},
		{"no dnsaddr", a, "/ip4/192.0.2.9/tcp/1", 100, []string{"/ip4/192.0.2.9/tcp/1"}},
		{"dns only", a, "/dns4/boot.test/tcp/1", 100, []string{"/dns4/boot.test/tcp/1"}},
	} {
		got, err := r.ResolveDNSAddr(testCtx(t), tc.peer, mustAddr(t, tc.in), 4, tc.limit)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if g := addrStrings(got); !slices.Equal(g, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, g, tc.want)
		}
	}

	// A suffix naming another peer cannot match; no query is needed.
	before := s.count("_dnsaddr.boot.test", dns.TypeTXT)
	got, err := r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/boot.test/p2p/"+idB), 4, 100)
	if !errors.Is(err, ErrNoAddresses) {
		t.Errorf("other peer's suffix: got %v, %v; want ErrNoAddresses", got, err)
	}
	if s.count("_dnsaddr.boot.test", dns.TypeTXT) != before {
		t.Error("other peer's suffix: the TXT records were looked up")
	}
	// No record matches this suffix.
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/boot.test/udp/9"), 4, 100)
	if !errors.Is(err, ErrNoAddresses) || !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("unmatched suffix: got %v, %v; want ErrNoAddresses explained by ErrInvalidRecord", got, err)
	}
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/boot.test"), 4, 0)
	if got != nil || err != nil {
		t.Errorf("outputLimit 0: got %v, %v; want nothing", got, err)
	}
}

func TestResolveDNSAddrErrors(t *testing.T) {
	s := startDNSServer(t)
	s.addTXT("_dnsaddr.nodnsaddr.test", "hello")
	r := newServerResolver(t, s)
	a := mustID(t, idA)

	_, err := r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/nx.test"), 4, 10)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("NXDOMAIN: err = %v, want a not-found *net.DNSError", err)
	}
	_, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/nodnsaddr.test"), 4, 10)
	if !errors.Is(err, ErrNoAddresses) {
		t.Errorf("no dnsaddr records: err = %v, want ErrNoAddresses", err)
	}
	_, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/nodnsaddr.test"), 0, 10)
	if !errors.Is(err, ErrRecursionLimit) {
		t.Errorf("recursion limit 0: err = %v, want ErrRecursionLimit", err)
	}
	if n := s.count("_dnsaddr.nodnsaddr.test", dns.TypeTXT); n != 1 {
		t.Errorf("TXT queries = %d, want 1 (none with recursion limit 0)", n)
	}
}

func TestResolveDNSAddrNested(t *testing.T) {
	s := startDNSServer(t)
	s.addDNSAddr("root.test",
		"/dnsaddr/n1.test/p2p/"+idA,
		"/ip4/192.0.2.10/tcp/1/p2p/"+idA,
		"/dnsaddr/n2.test",
		"/dnsaddr/other.test/p2p/"+idB,
		"/dnsaddr/nx.test",
	)
	s.addDNSAddr("n1.test",
		"/ip4/192.0.2.11/tcp/1/p2p/"+idA,
		"/ip4/192.0.2.12/tcp/1", // does not end in /p2p/idA
	)
	s.addDNSAddr("n2.test", "/ip6/2001:db8::2/tcp/1/p2p/"+idA)
	s.addDNSAddr("other.test", "/ip4/192.0.2.13/tcp/1/p2p/"+idB)
	r := newServerResolver(t, s)

	got, err := r.ResolveDNSAddr(testCtx(t), mustID(t, idA), mustAddr(t, "/dnsaddr/root.test"), 4, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/ip4/192.0.2.10/tcp/1/p2p/" + idA, // direct records first
		"/ip4/192.0.2.11/tcp/1/p2p/" + idA,
		"/ip6/2001:db8::2/tcp/1/p2p/" + idA,
	}
	if g := addrStrings(got); !slices.Equal(g, want) {
		t.Errorf("got %v, want %v", g, want)
	}
	if n := s.count("_dnsaddr.other.test", dns.TypeTXT); n != 0 {
		t.Errorf("another peer's nested record was looked up %d times", n)
	}
	if n := s.count("_dnsaddr.nx.test", dns.TypeTXT); n == 0 {
		t.Error("the failing branch was never tried")
	}
}

func TestResolveDNSAddrCycle(t *testing.T) {
	s := startDNSServer(t)
	s.addDNSAddr("loop-a.test", "/dnsaddr/loop-b.test")
	s.addDNSAddr("loop-b.test", "/dnsaddr/LOOP-A.test.")
	s.addDNSAddr("self.test", "/dnsaddr/self.test/p2p/"+idA, "/ip4/192.0.2.20/tcp/1/p2p/"+idA)
	r := newServerResolver(t, s)
	a := mustID(t, idA)

	got, err := r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/loop-a.test"), 10, 100)
	if !errors.Is(err, ErrNoAddresses) || !errors.Is(err, ErrCycle) {
		t.Errorf("a → b → a: got %v, %v; want ErrNoAddresses and ErrCycle", got, err)
	}
	for _, name := range []string{"_dnsaddr.loop-a.test", "_dnsaddr.loop-b.test"} {
		if n := s.count(name, dns.TypeTXT); n != 1 {
			t.Errorf("%s looked up %d times, want 1", name, n)
		}
	}

	// A cycle next to a usable record drops only itself.
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/self.test"), 10, 100)
	if err != nil || len(got) != 1 || got[0].String() != "/ip4/192.0.2.20/tcp/1/p2p/"+idA {
		t.Errorf("self loop: got %v, %v", got, err)
	}
}

func TestResolveDNSAddrRecursionLimit(t *testing.T) {
	s := startDNSServer(t)
	for i := range 4 {
		s.addDNSAddr(fmt.Sprintf("chain%d.test", i), fmt.Sprintf("/dnsaddr/chain%d.test", i+1))
	}
	s.addDNSAddr("chain4.test", "/ip4/192.0.2.30/tcp/1")
	s.addDNSAddr("mixed.test", "/ip4/192.0.2.31/tcp/1", "/dnsaddr/chain0.test")
	r := newServerResolver(t, s)
	a := mustID(t, idA)

	// Five lookups deep: a limit of 4 drops the branch.
	got, err := r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/chain0.test"), 4, 100)
	if !errors.Is(err, ErrNoAddresses) || !errors.Is(err, ErrRecursionLimit) {
		t.Errorf("limit 4: got %v, %v; want ErrNoAddresses and ErrRecursionLimit", got, err)
	}
	if n := s.count("_dnsaddr.chain4.test", dns.TypeTXT); n != 0 {
		t.Errorf("the record beyond the limit was looked up %d times", n)
	}
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/chain0.test"), 5, 100)
	if err != nil || len(got) != 1 || got[0].String() != "/ip4/192.0.2.30/tcp/1" {
		t.Errorf("limit 5: got %v, %v", got, err)
	}
	// The branch beyond the limit is dropped, the rest is kept.
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/mixed.test"), 4, 100)
	if err != nil || len(got) != 1 || got[0].String() != "/ip4/192.0.2.31/tcp/1" {
		t.Errorf("mixed: got %v, %v", got, err)
	}
}

func TestResolveDNSAddrOutputLimit(t *testing.T) {
	s := startDNSServer(t)
	var big []string
	for i := range 40 {
		big = append(big, fmt.Sprintf("/ip4/198.51.100.%d/udp/4001/quic-v1/p2p/%s", i, idA))
	}
	s.addDNSAddr("big.test", big...)
	s.addDNSAddr("wide.test", "/dnsaddr/w0.test", "/ip4/192.0.2.40/tcp/1", "/dnsaddr/w1.test", "/dnsaddr/w2.test")
	var w [3][]string
	for k := range 3 {
		for i := range 5 {
			w[k] = append(w[k], fmt.Sprintf("/ip4/192.0.2.%d/tcp/1", 100+10*k+i))
		}
		s.addDNSAddr(fmt.Sprintf("w%d.test", k), w[k]...)
	}
	s.addDNSAddr("many-nested.test", "/dnsaddr/m0.test", "/dnsaddr/m1.test", "/dnsaddr/m2.test", "/dnsaddr/m3.test")
	for k := range 4 {
		s.addDNSAddr(fmt.Sprintf("m%d.test", k), fmt.Sprintf("/ip4/192.0.2.%d/tcp/1", 200+k))
	}
	r := newServerResolver(t, s)
	a := mustID(t, idA)

	// 40 records do not fit in a UDP answer; the first 5 are kept.
	got, err := r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/big.test"), 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	if g := addrStrings(got); !slices.Equal(g, big[:5]) {
		t.Errorf("big: got %v, want %v", g, big[:5])
	}
	if s.tcpQueries() == 0 {
		t.Error("no query over TCP; the long answer was not exercised")
	}

	// The direct record first, then the 6 places left shared by the
	// nested records, 2 each.
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/wide.test"), 4, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/ip4/192.0.2.40/tcp/1", w[0][0], w[0][1], w[1][0], w[1][1], w[2][0], w[2][1]}
	if g := addrStrings(got); !slices.Equal(g, want) {
		t.Errorf("wide: got %v, want %v", g, want)
	}

	// With 2 places, only 2 of 4 nested records are followed.
	got, err = r.ResolveDNSAddr(testCtx(t), a, mustAddr(t, "/dnsaddr/many-nested.test"), 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/ip4/192.0.2.200/tcp/1", "/ip4/192.0.2.201/tcp/1"}
	if g := addrStrings(got); !slices.Equal(g, want) {
		t.Errorf("many nested: got %v, want %v", g, want)
	}
	for k, wantN := range []int{1, 1, 0, 0} {
		if n := s.count(fmt.Sprintf("_dnsaddr.m%d.test", k), dns.TypeTXT); (n > 0) != (wantN > 0) {
			t.Errorf("m%d.test looked up %d times, want %d", k, n, wantN)
		}
	}
}

func TestLookupTimeout(t *testing.T) {
	s := startDNSServer(t)
	s.silence("_dnsaddr.slow.test")
	s.silence("slow.test")
	s.addDNSAddr("half-slow.test", "/ip4/192.0.2.50/tcp/1", "/dnsaddr/slow.test")
	r := newServerResolver(t, s)
	a := mustID(t, idA)

	// The Go resolver's own timeout is 5 s; the lookup must end with the
	// context, long before.
	const deadline = 200 * time.Millisecond
	for _, in := range []string{"/dnsaddr/slow.test", "/dns4/slow.test/tcp/1", "/dns/slow.test/tcp/1"} {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		start := time.Now()
		var got []ma.Multiaddr
		var err error
		if strings.HasPrefix(in, "/dnsaddr") {
			got, err = r.ResolveDNSAddr(ctx, a, mustAddr(t, in), 4, 10)
		} else {
			got, err = r.ResolveDNSComponent(ctx, mustAddr(t, in), 10)
		}
		elapsed := time.Since(start)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v, %v; want context.DeadlineExceeded", in, got, err)
		}
		if elapsed < deadline || elapsed > 4*time.Second {
			t.Errorf("%s: returned after %v, want soon after %v", in, elapsed, deadline)
		}
	}

	// A branch that times out does not take the others with it.
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	got, err := r.ResolveDNSAddr(ctx, a, mustAddr(t, "/dnsaddr/half-slow.test"), 4, 10)
	if err != nil || len(got) != 1 || got[0].String() != "/ip4/192.0.2.50/tcp/1" {
		t.Errorf("half slow: got %v, %v", got, err)
	}
}

func TestResolve(t *testing.T) {
	s := startDNSServer(t)
	s.addDNSAddr("mix.test", "/dns4/h.test/tcp/1/p2p/"+idA, "/ip4/192.0.2.51/tcp/1/p2p/"+idA, "/dns4/nx.test/tcp/1")
	s.addIP("h.test", "192.0.2.52")
	r := newServerResolver(t, s)
	a := mustID(t, idA)
	in := []ma.Multiaddr{
		mustAddr(t, "/dnsaddr/mix.test"),
		mustAddr(t, "/dns4/nx.test/tcp/2"),
		mustAddr(t, "/dnsaddr/nx.test"),
		mustAddr(t, "/ip4/192.0.2.50/tcp/1"),
		mustAddr(t, "/dns4/H.test/udp/1/quic-v1"),
	}
	want := []string{
		"/ip4/192.0.2.52/tcp/1/p2p/" + idA,
		"/ip4/192.0.2.51/tcp/1/p2p/" + idA,
		"/ip4/192.0.2.50/tcp/1",
		"/ip4/192.0.2.52/udp/1/quic-v1",
	}
	got, err := r.Resolve(testCtx(t), a, in, 100)
	if err != nil {
		t.Fatal(err)
	}
	if g := addrStrings(got); !slices.Equal(g, want) {
		t.Errorf("got %v, want %v", g, want)
	}
	if n := s.count("h.test", dns.TypeA); n != 1 {
		t.Errorf("h.test looked up %d times in one call, want 1", n)
	}

	got, err = r.Resolve(testCtx(t), a, in, 3)
	if err != nil {
		t.Fatal(err)
	}
	if g := addrStrings(got); !slices.Equal(g, want[:3]) {
		t.Errorf("limit 3: got %v, want %v", g, want[:3])
	}

	got, err = r.Resolve(testCtx(t), a, in[1:3], 100)
	var dnsErr *net.DNSError
	if !errors.Is(err, ErrNoAddresses) || !errors.As(err, &dnsErr) {
		t.Errorf("all failing: got %v, %v; want ErrNoAddresses with the DNS errors", got, err)
	}
	if got, err := r.Resolve(testCtx(t), a, nil, 100); got != nil || err != nil {
		t.Errorf("no addresses: got %v, %v; want nothing", got, err)
	}
}
