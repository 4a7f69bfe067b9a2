package swarm

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

const ms = time.Millisecond

func TestDefaultDialRanker(t *testing.T) {
	const (
		q4a   = "/ip4/1.2.3.4/udp/1/quic-v1"
		q4b   = "/ip4/1.2.3.4/udp/2/quic-v1"
		q4c   = "/ip4/1.2.3.4/udp/3/quic-v1"
		q6a   = "/ip6/2600::1/udp/1/quic-v1"
		t4a   = "/ip4/1.2.3.4/tcp/1"
		t6a   = "/ip6/2600::1/tcp/1"
		t6b   = "/ip6/2600::1/tcp/2"
		wt4   = "/ip4/1.2.3.4/udp/1/quic-v1/webtransport"
		webrt = "/ip4/1.2.3.4/udp/1/webrtc-direct"
		pq4   = "/ip4/192.168.1.1/udp/1/quic-v1"
		pt4   = "/ip4/127.0.0.1/tcp/1"
		pt6   = "/ip6/::1/tcp/1"
		relay = "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWQfJ3Dn1Kjx6p1cZfPumbkzwKoY36wnnjApgp8bT7gF1C/p2p-circuit"
		dns   = "/dns4/example.com/tcp/1"
	)
	type want struct {
		addr  string
		delay time.Duration
	}
	tests := []struct {
		name  string
		addrs []string
		want  []want
	}{
		{"empty", nil, nil},
		{"QUIC before TCP", []string{t4a, q4a}, []want{{q4a, 0}, {t4a, 250 * ms}}},
		{"lowest port first, one family", []string{q4c, q4a, q4b},
			[]want{{q4a, 0}, {q4b, 250 * ms}, {q4c, 250 * ms}}},
		{"IPv6 first, then the best IPv4, then the rest", []string{q4b, q4a, q6a},
			[]want{{q6a, 0}, {q4a, 250 * ms}, {q4b, 500 * ms}}},
		{"QUIC and TCP, both families", []string{t4a, t6a, q4a, q6a},
			[]want{{q6a, 0}, {q4a, 250 * ms}, {t6a, 500 * ms}, {t4a, 750 * ms}}},
		{"TCP only, both families", []string{t6b, t4a, t6a},
			[]want{{t6a, 0}, {t4a, 250 * ms}, {t6b, 500 * ms}}},
		{"WebTransport after QUIC", []string{wt4, q4b}, []want{{q4b, 0}, {wt4, 250 * ms}}},
		{"private addresses step 30 ms", []string{pt4, pt6, pq4},
			[]want{{pq4, 0}, {pt6, 30 * ms}, {pt4, 60 * ms}}},
		{"private and public in parallel", []string{pt4, q4a}, []want{{pt4, 0}, {q4a, 0}}},
		{"relay delayed when public addresses exist", []string{relay, t4a},
			[]want{{t4a, 0}, {relay, 500 * ms}}},
		{"relay not delayed next to private addresses only", []string{relay, pt4},
			[]want{{pt4, 0}, {relay, 0}}},
		{"other transports one second after QUIC", []string{webrt, q4a},
			[]want{{q4a, 0}, {webrt, time.Second}}},
		{"other transports alone", []string{webrt}, []want{{webrt, time.Second}}},
		{"non-IP addresses after everything", []string{dns, t4a, q4a},
			[]want{{q4a, 0}, {t4a, 250 * ms}, {dns, 1250 * ms}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := addrs(tt.addrs...)
			orig := slices.Clone(in)
			got := DefaultDialRanker(in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d addresses, want %d: %v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				if got[i].Addr.String() != w.addr || got[i].Delay != w.delay {
					t.Errorf("#%d: got %s at %v, want %s at %v", i, got[i].Addr, got[i].Delay, w.addr, w.delay)
				}
			}
			for i := range in {
				if !in[i].Equal(orig[i]) {
					t.Fatalf("the ranker changed its input")
				}
			}
		})
	}
}

func TestNoDelayDialRanker(t *testing.T) {
	in := addrs("/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/udp/1/quic-v1", "/ip4/127.0.0.1/tcp/1")
	got := NoDelayDialRanker(in)
	want := []network.AddrDelay{{Addr: in[0]}, {Addr: in[1]}, {Addr: in[2]}}
	if !slices.EqualFunc(got, want, func(a, b network.AddrDelay) bool { return a.Addr.Equal(b.Addr) && a.Delay == b.Delay }) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func BenchmarkDefaultDialRanker(b *testing.B) {
	in := addrs("/ip4/1.2.3.4/tcp/1", "/ip6/2600::1/tcp/1", "/ip4/1.2.3.4/udp/1/quic-v1",
		"/ip6/2600::1/udp/1/quic-v1", "/ip4/192.168.1.1/tcp/4001", "/ip4/192.168.1.1/udp/4001/quic-v1")
	b.ReportAllocs()
	for b.Loop() {
		DefaultDialRanker(in)
	}
}

// FuzzDefaultDialRanker feeds the ranker addresses as a peer could
// announce them (one text multiaddr per line): it must schedule each
// address exactly once, with a delay that is not negative.
func FuzzDefaultDialRanker(f *testing.F) {
	f.Add("/ip4/1.2.3.4/tcp/1\n/ip6/2600::1/udp/1/quic-v1\n/ip4/192.168.1.1/tcp/4001")
	f.Add("/ip4/1.2.3.4/tcp/1/p2p/12D3KooWQfJ3Dn1Kjx6p1cZfPumbkzwKoY36wnnjApgp8bT7gF1C/p2p-circuit\n/dns4/example.com/tcp/1")
	f.Add("/ip4/1.2.3.4/udp/1/quic-v1/webtransport\n/ip4/1.2.3.4/udp/1/webrtc-direct\n/ip4/1.2.3.4/tcp/1")
	f.Fuzz(func(t *testing.T, text string) {
		var in []ma.Multiaddr
		for _, line := range strings.Split(text, "\n") {
			if a, err := ma.NewMultiaddr(line); err == nil {
				in = append(in, a)
			}
		}
		out := DefaultDialRanker(in)
		if len(out) != len(in) {
			t.Fatalf("%d addresses in, %d out", len(in), len(out))
		}
		count := map[string]int{}
		for _, a := range in {
			count[string(a.Bytes())]++
		}
		for _, ad := range out {
			if ad.Delay < 0 {
				t.Fatalf("negative delay for %s", ad.Addr)
			}
			count[string(ad.Addr.Bytes())]--
		}
		for k, n := range count {
			if n != 0 {
				t.Fatalf("address %x scheduled %d times too few", k, n)
			}
		}
	})
}
