package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// fakeResolver is a BasicResolver answering from maps after a delay; a
// negative delay means never (until the context ends). It has no LookupIP,
// so /dns4 and /dns6 go through LookupIPAddr and the family filter.
type fakeResolver struct {
	delay time.Duration
	ip    map[string][]net.IPAddr
	txt   map[string][]string

	mu    sync.Mutex // guards the following
	calls []string
}

func (f *fakeResolver) wait(ctx context.Context, name string) error {
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
	if f.delay == 0 {
		return nil
	}
	var timeout <-chan time.Time
	if f.delay > 0 {
		timer := time.NewTimer(f.delay)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-timeout:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := f.wait(ctx, host); err != nil {
		return nil, err
	}
	ips, ok := f.ip[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return ips, nil
}

func (f *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := f.wait(ctx, name); err != nil {
		return nil, err
	}
	txts, ok := f.txt[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txts, nil
}

func (f *fakeResolver) lookedUp() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func TestDomainResolvers(t *testing.T) {
	fake := func(ip string, names ...string) *fakeResolver {
		f := &fakeResolver{ip: map[string][]net.IPAddr{}, txt: map[string][]string{}}
		for _, n := range names {
			f.ip[n] = []net.IPAddr{{IP: net.ParseIP(ip)}}
			f.txt[n] = []string{"dnsaddr=/ip4/" + ip + "/tcp/1"}
		}
		return f
	}
	names := []string{"example.test", "EXAMPLE.test.", "x.example.test", "sub.example.test", "x.sub.example.test",
		"notexample.test", "_dnsaddr.example.test", "_dnsaddr.sub.example.test"}
	exampleR, subR, defR := fake("192.0.2.1", names...), fake("192.0.2.2", names...), fake("192.0.2.3", names...)
	r, err := New(
		WithDefaultResolver(defR),
		WithDomainResolver("Example.TEST.", exampleR),
		WithDomainResolver("sub.example.test", subR),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"/dns4/example.test/tcp/1", "/ip4/192.0.2.1/tcp/1"},
		{"/dns4/EXAMPLE.test./tcp/1", "/ip4/192.0.2.1/tcp/1"},
		{"/dns4/x.example.test/tcp/1", "/ip4/192.0.2.1/tcp/1"},
		{"/dns4/sub.example.test/tcp/1", "/ip4/192.0.2.2/tcp/1"},
		{"/dns4/x.sub.example.test/tcp/1", "/ip4/192.0.2.2/tcp/1"},
		{"/dns4/notexample.test/tcp/1", "/ip4/192.0.2.3/tcp/1"}, // not a label boundary
		{"/dnsaddr/example.test", "/ip4/192.0.2.1/tcp/1"},
		{"/dnsaddr/sub.example.test", "/ip4/192.0.2.2/tcp/1"},
	} {
		got, err := r.Resolve(t.Context(), "", []ma.Multiaddr{mustAddr(t, tc.in)}, 10)
		if err != nil || len(got) != 1 || got[0].String() != tc.want {
			t.Errorf("%s: got %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestFamilyFilterWithoutLookupIP(t *testing.T) {
	f := &fakeResolver{ip: map[string][]net.IPAddr{"h.test": {
		{IP: net.ParseIP("192.0.2.1")},
		{IP: net.ParseIP("2001:db8::1")},
		{IP: net.ParseIP("::ffff:192.0.2.2")}, // IPv4-mapped: counts as IPv4
		{IP: net.ParseIP("2001:db8::2"), Zone: "eth0"},
	}}}
	r, err := New(WithDefaultResolver(f))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"/dns4/h.test/tcp/1", []string{"/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.2/tcp/1"}},
		{"/dns6/h.test/tcp/1", []string{"/ip6/2001:db8::1/tcp/1", "/ip6/2001:db8::2/tcp/1"}},
		{"/dns/h.test/tcp/1", []string{"/ip4/192.0.2.1/tcp/1", "/ip6/2001:db8::1/tcp/1", "/ip4/192.0.2.2/tcp/1", "/ip6/2001:db8::2/tcp/1"}},
	} {
		got, err := r.ResolveDNSComponent(t.Context(), mustAddr(t, tc.in), 10)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if g := addrStrings(got); !slices.Equal(g, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.in, g, tc.want)
		}
	}

	f.ip["v6.test"] = []net.IPAddr{{IP: net.ParseIP("2001:db8::1")}}
	if got, err := r.ResolveDNSComponent(t.Context(), mustAddr(t, "/dns4/v6.test/tcp/1"), 10); !errors.Is(err, ErrNoAddresses) {
		t.Errorf("/dns4 of an IPv6-only host: got %v, %v; want ErrNoAddresses", got, err)
	}
}

// Nested dnsaddr records are looked up concurrently: a root with six nested
// records costs two lookup latencies, not seven.
func TestNestedLookupsRunConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency = 100 * time.Millisecond
		f := &fakeResolver{delay: latency, txt: map[string][]string{}}
		var want []string
		for k := range 6 {
			f.txt["_dnsaddr.root.test"] = append(f.txt["_dnsaddr.root.test"], fmt.Sprintf("dnsaddr=/dnsaddr/n%d.test", k))
			rec := fmt.Sprintf("/ip4/192.0.2.%d/tcp/1", k)
			f.txt[fmt.Sprintf("_dnsaddr.n%d.test", k)] = []string{"dnsaddr=" + rec}
			want = append(want, rec)
		}
		r, err := New(WithDefaultResolver(f))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := r.ResolveDNSAddr(t.Context(), "", mustAddr(t, "/dnsaddr/root.test"), 4, 100)
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed != 2*latency {
			t.Errorf("took %v, want %v", elapsed, 2*latency)
		}
		if g := addrStrings(got); !slices.Equal(g, want) {
			t.Errorf("got %v, want %v (in TXT order)", g, want)
		}
		if n := len(f.lookedUp()); n != 7 {
			t.Errorf("%d lookups, want 7", n)
		}
	})
}

// The resolver adds no time of its own: a lookup that never answers ends
// exactly at the context's deadline, for every kind of component.
func TestLookupEndsAtContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeResolver{delay: -1}
		r, err := New(WithDefaultResolver(f))
		if err != nil {
			t.Fatal(err)
		}
		const timeout = 3 * time.Second
		for _, in := range []string{"/dnsaddr/slow.test", "/dns4/slow.test/tcp/1", "/dns/slow.test/tcp/1"} {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			start := time.Now()
			got, err := r.Resolve(ctx, "", []ma.Multiaddr{mustAddr(t, in)}, 10)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: got %v, %v; want context.DeadlineExceeded", in, got, err)
			}
			if elapsed := time.Since(start); elapsed != timeout {
				t.Errorf("%s: took %v, want %v", in, elapsed, timeout)
			}
		}
	})
}

func BenchmarkResolveDNSAddr(b *testing.B) {
	f := &fakeResolver{txt: map[string][]string{}}
	for k := range 4 {
		f.txt["_dnsaddr.boot.test"] = append(f.txt["_dnsaddr.boot.test"], fmt.Sprintf("dnsaddr=/dnsaddr/n%d.test/p2p/%s", k, idA))
		f.txt[fmt.Sprintf("_dnsaddr.n%d.test", k)] = []string{
			fmt.Sprintf("dnsaddr=/ip4/192.0.2.%d/tcp/4001/p2p/%s", k, idA),
			fmt.Sprintf("dnsaddr=/ip4/192.0.2.%d/udp/4001/quic-v1/p2p/%s", k, idA),
		}
	}
	r, err := New(WithDefaultResolver(f))
	if err != nil {
		b.Fatal(err)
	}
	p, err := peer.Decode(idA)
	if err != nil {
		b.Fatal(err)
	}
	m := ma.StringCast("/dnsaddr/boot.test")
	b.ReportAllocs()
	for b.Loop() {
		f.calls = f.calls[:0]
		if got, err := r.ResolveDNSAddr(b.Context(), p, m, 4, 100); err != nil || len(got) != 8 {
			b.Fatal(got, err)
		}
	}
}

func BenchmarkResolveDNSComponent(b *testing.B) {
	f := &fakeResolver{ip: map[string][]net.IPAddr{"h.test": {
		{IP: net.ParseIP("192.0.2.1")}, {IP: net.ParseIP("2001:db8::1")},
	}}}
	r, err := New(WithDefaultResolver(f))
	if err != nil {
		b.Fatal(err)
	}
	m := ma.StringCast("/dns/h.test/tcp/4001")
	b.ReportAllocs()
	for b.Loop() {
		f.calls = f.calls[:0]
		if got, err := r.ResolveDNSComponent(b.Context(), m, 100); err != nil || len(got) != 2 {
			b.Fatal(got, err)
		}
	}
}
