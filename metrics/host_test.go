package metrics_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/transport/circuit"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// sample returns the value of the sample named key ("name{a=x,b=y}",
// labels sorted) in reg, and whether it exists.
func sample(t *testing.T, reg prometheus.Gatherer, key string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			k := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch {
			case k != key:
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// waitFor polls reg until the sample key reaches at least want: the
// server's handlers count a stream once they return, after the client
// has its answer.
func waitFor(t *testing.T, reg prometheus.Gatherer, key string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		v, _ := sample(t, reg, key)
		if v >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 10 s, want at least %v", key, v, want)
		}
		<-tick.C
	}
}

// metricsPair returns a host exporting its metrics to a fresh registry
// and a client host connected to it.
func metricsPair(t *testing.T) (server, client *p2pnet.Host, reg *prometheus.Registry) {
	t.Helper()
	reg = prometheus.NewPedanticRegistry()
	server, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.EnablePerf(),
		p2pnet.PrometheusRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	client, err = p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return server, client, reg
}

// TestHostMetrics runs ping and perf against a host with metrics and
// checks what it exports: connections by transport, security and
// muxer; streams and bytes by protocol; the services' counts; the
// resource manager's figures.
func TestHostMetrics(t *testing.T) {
	server, client, reg := metricsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 3 {
		if _, err := ping.PingOnce(ctx, client, server.ID()); err != nil {
			t.Fatal(err)
		}
	}
	// The server's own ping, through the host's service, is timed.
	if _, err := server.Ping().PingOnce(ctx, client.ID()); err != nil {
		t.Fatal(err)
	}
	const up, down = 1 << 20, 2 << 20
	if _, err := perf.Run(ctx, client, server.ID(), up, down, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "p2pnet_ping_streams_served_total{outcome=ok}", 3)
	waitFor(t, reg, "p2pnet_perf_runs_served_total{outcome=ok}", 1)
	waitFor(t, reg, "p2pnet_swarm_protocol_bytes_total{direction=in,protocol=/perf/1.0.0}", up)

	conn := "{direction=inbound,ip_version=ip4,muxer=/yamux/1.0.0,security=/noise,transport=tcp}"
	for key, want := range map[string]float64{
		"p2pnet_swarm_connections" + conn:              1,
		"p2pnet_swarm_connections_opened_total" + conn: 1,
		"p2pnet_ping_echoes_total{}":                   3,
		"p2pnet_ping_round_trips_total{outcome=ok}":    1,
		"p2pnet_ping_rtt_seconds{}":                    1,
		"p2pnet_swarm_handshake_duration_seconds{direction=inbound,outcome=success,transport=tcp}": 1,
		"p2pnet_perf_bytes_total{direction=in}":                                                    up,
		"p2pnet_perf_bytes_total{direction=out}":                                                   down,
		"p2pnet_swarm_protocol_streams_total{direction=inbound,protocol=/ipfs/ping/1.0.0}":         3,
		"p2pnet_swarm_protocol_streams_total{direction=inbound,protocol=/perf/1.0.0}":              1,
		"p2pnet_swarm_protocol_streams{direction=inbound,protocol=/perf/1.0.0}":                    0,
		"p2pnet_rcmgr_kind_use{kind=conn,resource=Conns}":                                          1,
	} {
		if got, ok := sample(t, reg, key); !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", key, got, ok, want)
		}
	}
	// perf wrote down bytes on the stream, plus multistream's answer.
	if got, _ := sample(t, reg, "p2pnet_swarm_protocol_bytes_total{direction=out,protocol=/perf/1.0.0}"); got < down || got > down+64 {
		t.Errorf("perf bytes out = %v, want %d and a few", got, down)
	}
	for _, key := range []string{
		"p2pnet_rcmgr_limit{resource=Conns,scope=system}",
		"p2pnet_autonat_reachability{reachability=unknown}",
		"p2pnet_connmgr_high_watermark{}",
		"p2pnet_eventbus_dropped_total{}",
	} {
		if _, ok := sample(t, reg, key); !ok {
			t.Errorf("%s is missing", key)
		}
	}
	// Outbound identify from the server counts as an exchange.
	waitFor(t, reg, "p2pnet_identify_total{outcome=ok}", 1)
}

// TestHostMetricsOff: without PrometheusRegisterer nothing is
// registered anywhere, the default registry included.
func TestHostMetricsOff(t *testing.T) {
	before, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	after, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("a host without PrometheusRegisterer registered %d metric families in the default registry", len(after)-len(before))
	}
}

// TestPromtoolCheckMetrics scrapes a host's metrics over HTTP, after
// some traffic, and has Prometheus's promtool check the exposition
// (names, help, units, counter suffixes).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian: apt-get install prometheus)")
		}
		t.Skip("promtool is not installed (Debian: apt-get install prometheus)")
	}
	server, client, reg := metricsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := ping.PingOnce(ctx, client, server.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := perf.Run(ctx, client, server.ID(), 1<<16, 1<<16, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "p2pnet_perf_runs_served_total{outcome=ok}", 1)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "p2pnet_swarm_connections{") {
		t.Fatalf("the scrape has no connection metrics:\n%s", body)
	}
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("promtool check metrics: ok, %d bytes of exposition", len(body))
}

// TestHostRelayMetrics: a host serving as a relay counts the reservation
// it grants, the one it holds, and a CONNECT it refuses for want of a
// reservation.
func TestHostRelayMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	relayHost, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), p2pnet.EnableRelayService(),
		p2pnet.PrometheusRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer relayHost.Close()
	client, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ri := peer.AddrInfo{ID: relayHost.ID(), Addrs: relayHost.Addrs()}
	if _, err := circuit.Reserve(ctx, client, ri); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reg, "p2pnet_relay_reservations_granted_total{}", 1)
	if v, ok := sample(t, reg, "p2pnet_relay_reservations{}"); !ok || v != 1 {
		t.Errorf("p2pnet_relay_reservations = %v (present: %v), want 1", v, ok)
	}
	// A peer with no reservation on the relay.
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	via := ma.StringCast(relayHost.Addrs()[0].String() + "/p2p/" + relayHost.ID().String() + "/p2p-circuit")
	if err := client.Connect(ctx, peer.AddrInfo{ID: nobody, Addrs: []ma.Multiaddr{via}}); err == nil {
		t.Fatal("a circuit to a peer without a reservation was made")
	}
	waitFor(t, reg, "p2pnet_relay_refusals_total{status=NO_RESERVATION}", 1)
}
