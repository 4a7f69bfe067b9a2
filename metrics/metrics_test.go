package metrics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/swarm"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// gather returns every sample of reg keyed by name and sorted labels:
// "name{a=x,b=y}". Histograms give name_count and name_sum.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := func(suffix string) string {
				return mf.GetName() + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[key("")] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key("")] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// expect checks the samples in want against got.
func expect(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present: %v), want %v", k, g, ok, v)
		}
	}
}

// fakeConn is a network.Conn with a state, a remote address and a
// direction.
type fakeConn struct {
	network.Conn
	state network.ConnectionState
	raddr ma.Multiaddr
	dir   network.Direction
}

func (c *fakeConn) ConnState() network.ConnectionState { return c.state }
func (c *fakeConn) RemoteMultiaddr() ma.Multiaddr      { return c.raddr }
func (c *fakeConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: c.dir}}
}

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestSwarmTracerConns(t *testing.T) {
	m, reg := newMetrics(t)
	tr := m.Swarm()
	tcp := &fakeConn{
		state: network.ConnectionState{Transport: "tcp", Security: "/noise", StreamMultiplexer: "/yamux/1.0.0"},
		raddr: ma.StringCast("/ip4/192.0.2.1/tcp/4001"), dir: network.DirInbound,
	}
	quic := &fakeConn{
		state: network.ConnectionState{Transport: "quic-v1", Security: "/tls/1.0.0"},
		raddr: ma.StringCast("/ip6/2001:db8::1/udp/4001/quic-v1"), dir: network.DirOutbound,
	}
	tr.ConnOpened(tcp)
	tr.ConnOpened(tcp)
	tr.ConnOpened(quic)
	tr.ConnClosed(tcp, 3*time.Second)
	tcpL := "{direction=inbound,ip_version=ip4,muxer=/yamux/1.0.0,security=/noise,transport=tcp}"
	quicL := "{direction=outbound,ip_version=ip6,muxer=none,security=/tls/1.0.0,transport=quic-v1}"
	expect(t, gather(t, reg), map[string]float64{
		"p2pnet_swarm_connections" + tcpL:                                                 1,
		"p2pnet_swarm_connections_opened_total" + tcpL:                                    2,
		"p2pnet_swarm_connections_closed_total" + tcpL:                                    1,
		"p2pnet_swarm_connections" + quicL:                                                1,
		"p2pnet_swarm_connection_duration_seconds_count{direction=inbound,transport=tcp}": 1,
		"p2pnet_swarm_connection_duration_seconds_sum{direction=inbound,transport=tcp}":   3,
	})
}

func TestSwarmTracerDials(t *testing.T) {
	m, reg := newMetrics(t)
	tr := m.Swarm()
	tcp := ma.StringCast("/ip4/192.0.2.1/tcp/4001")
	quic := ma.StringCast("/ip4/192.0.2.1/udp/4001/quic-v1")
	tr.DialDone(tcp, 20*time.Millisecond, nil)
	tr.DialDone(tcp, time.Second, fmt.Errorf("dial: %w", syscall.ECONNREFUSED))
	tr.DialDone(quic, 5*time.Second, context.DeadlineExceeded)
	tr.DialSkipped(quic, fmt.Errorf("x: %w", swarm.ErrDialRefusedBlackHole))
	tr.DialSkipped(tcp, &connmgr.GatedError{Hook: connmgr.HookAddrDial})
	expect(t, gather(t, reg), map[string]float64{
		"p2pnet_swarm_dials_total{outcome=success,transport=tcp}":                 1,
		"p2pnet_swarm_dials_total{outcome=refused,transport=tcp}":                 1,
		"p2pnet_swarm_dials_total{outcome=gated,transport=tcp}":                   1,
		"p2pnet_swarm_dials_total{outcome=timeout,transport=quic-v1}":             1,
		"p2pnet_swarm_dials_total{outcome=black_holed,transport=quic-v1}":         1,
		"p2pnet_swarm_dial_duration_seconds_count{outcome=success,transport=tcp}": 1,
		"p2pnet_swarm_dial_duration_seconds_sum{outcome=success,transport=tcp}":   0.02,
		"p2pnet_swarm_dial_duration_seconds_count{outcome=failure,transport=tcp}": 1,
	})
}

// TestSwarmTracerStreams checks the stream counts and that the protocol
// label names only served and well-known protocols.
func TestSwarmTracerStreams(t *testing.T) {
	m, reg := newMetrics(t)
	m.labels.setServed(func(p protocol.ID) bool { return p == "/echo/1.0.0" })
	tr := m.Swarm()
	for range 3 {
		tr.StreamOpened(network.DirInbound)
	}
	tr.StreamOpened(network.DirOutbound)
	tr.StreamProtocol(network.DirInbound, "", "/echo/1.0.0")
	tr.StreamProtocol(network.DirInbound, "", "/ipfs/ping/1.0.0")
	tr.StreamProtocol(network.DirOutbound, "", "/random/from/the/network")
	tr.StreamClosed(network.DirInbound, "/echo/1.0.0", 100, 40)
	tr.StreamClosed(network.DirOutbound, "/random/from/the/network", 5, 7)
	tr.StreamClosed(network.DirInbound, "", 1, 0)
	got := gather(t, reg)
	expect(t, got, map[string]float64{
		"p2pnet_swarm_streams{direction=inbound}":                                     1,
		"p2pnet_swarm_streams{direction=outbound}":                                    0,
		"p2pnet_swarm_streams_opened_total{direction=inbound}":                        3,
		"p2pnet_swarm_protocol_streams{direction=inbound,protocol=/echo/1.0.0}":       0,
		"p2pnet_swarm_protocol_streams{direction=inbound,protocol=/ipfs/ping/1.0.0}":  1,
		"p2pnet_swarm_protocol_streams_total{direction=inbound,protocol=/echo/1.0.0}": 1,
		"p2pnet_swarm_protocol_streams{direction=outbound,protocol=other}":            0,
		"p2pnet_swarm_protocol_bytes_total{direction=in,protocol=/echo/1.0.0}":        100,
		"p2pnet_swarm_protocol_bytes_total{direction=out,protocol=/echo/1.0.0}":       40,
		"p2pnet_swarm_protocol_bytes_total{direction=out,protocol=other}":             7,
		"p2pnet_swarm_protocol_bytes_total{direction=in,protocol=none}":               1,
	})
	for k := range got {
		if strings.Contains(k, "random") {
			t.Errorf("a protocol neither served nor well known is a label value: %s", k)
		}
	}
}

func TestProtocolLabelsStable(t *testing.T) {
	l := newProtocolLabels()
	served := true
	l.setServed(func(protocol.ID) bool { return served })
	if got := l.label("/mine/1"); got != "/mine/1" {
		t.Fatalf("label of a served protocol = %q", got)
	}
	served = false // the handler is removed: streams counted under the name stay so
	if got := l.label("/mine/1"); got != "/mine/1" {
		t.Errorf("label changed once the handler went: %q", got)
	}
	if got := l.label("/never/served"); got != OtherProtocol {
		t.Errorf("label of an unknown protocol = %q", got)
	}
	if got := l.label(""); got != NoProtocol {
		t.Errorf("label of no protocol = %q", got)
	}
}

func TestDialOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeSuccess},
		{context.DeadlineExceeded, OutcomeTimeout},
		{fmt.Errorf("read: %w", os.ErrDeadlineExceeded), OutcomeTimeout},
		{fmt.Errorf("connect: %w", syscall.ECONNREFUSED), OutcomeRefused},
		{fmt.Errorf("%w: x", swarm.ErrWrongPeer), OutcomeWrongPeer},
		{fmt.Errorf("handshake: %w", &sec.MismatchError{}), OutcomeWrongPeer},
		{&connmgr.GatedError{Hook: connmgr.HookAddrDial}, OutcomeGated},
		{fmt.Errorf("upgrade: %w", network.ErrResourceLimitExceeded), OutcomeResourceLimit},
		{fmt.Errorf("x: %w", swarm.ErrDialRefusedBlackHole), OutcomeBlackHoled},
		{swarm.ErrDialBackoff, OutcomeBackoff},
		{context.Canceled, OutcomeCanceled},
		{swarm.ErrDialToSelf, OutcomeSelf},
		{swarm.ErrNoTransport, OutcomeNoTransport},
		{errors.New("something else"), OutcomeOther},
	} {
		if got := dialOutcome(c.err); got != c.want {
			t.Errorf("dialOutcome(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestAddrLabels(t *testing.T) {
	for addr, want := range map[string][2]string{
		"/ip4/192.0.2.1/tcp/1":                      {"tcp", "ip4"},
		"/ip6/2001:db8::1/udp/1/quic-v1":            {"quic-v1", "ip6"},
		"/ip4/192.0.2.1/udp/1/quic-v1/webtransport": {"webtransport", "ip4"},
		"/dns4/example.com/tcp/443/tls/ws":          {"wss", "dns"},
		"/ip4/192.0.2.1/tcp/1/ws":                   {"ws", "ip4"},
		"/ip4/192.0.2.1/tcp/1/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq/p2p-circuit": {"p2p-circuit", "ip4"},
	} {
		a := ma.StringCast(addr)
		if got := [2]string{addrTransport(a), ipVersion(a)}; got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
}

func TestServiceTracers(t *testing.T) {
	m, reg := newMetrics(t)
	m.Identify().Identified(nil)
	m.Identify().Identified(errors.New("x"))
	m.Identify().PushSent(nil)
	m.Identify().PushReceived(nil)
	m.Ping().Served(5, nil)
	m.Ping().Served(2, errors.New("reset"))
	m.Ping().RoundTrip(3*time.Millisecond, nil)
	m.Handshake().Handshake(network.DirInbound, "tcp", 2*time.Millisecond, nil)
	m.Handshake().Handshake(network.DirOutbound, "quic-v1", time.Second, errors.New("timeout"))
	m.Ping().RoundTrip(0, errors.New("reset"))
	m.Perf().Served(1000, 2000, nil)
	m.Relay().ReservationGranted()
	m.Relay().Refused(relay.StatusNoReservation)
	m.Relay().CircuitOpened()
	m.Relay().CircuitClosed(4096, 2*time.Second)
	m.SetReachability(network.ReachabilityPrivate)
	m.AutoNATResult(true, nil)
	m.AutoNATResult(false, errors.New("no server"))
	expect(t, gather(t, reg), map[string]float64{
		"p2pnet_identify_total{outcome=ok}":                                                                   1,
		"p2pnet_identify_total{outcome=error}":                                                                1,
		"p2pnet_identify_pushes_sent_total{outcome=ok}":                                                       1,
		"p2pnet_identify_pushes_received_total{outcome=ok}":                                                   1,
		"p2pnet_ping_streams_served_total{outcome=ok}":                                                        1,
		"p2pnet_ping_streams_served_total{outcome=error}":                                                     1,
		"p2pnet_ping_echoes_total{}":                                                                          7,
		"p2pnet_ping_round_trips_total{outcome=ok}":                                                           1,
		"p2pnet_ping_round_trips_total{outcome=error}":                                                        1,
		"p2pnet_ping_rtt_seconds_count{}":                                                                     1,
		"p2pnet_swarm_handshake_duration_seconds_count{direction=inbound,outcome=success,transport=tcp}":      1,
		"p2pnet_swarm_handshake_duration_seconds_count{direction=outbound,outcome=failure,transport=quic-v1}": 1,
		"p2pnet_ping_rtt_seconds_sum{}":                                                                       0.003,
		"p2pnet_perf_runs_served_total{outcome=ok}":                                                           1,
		"p2pnet_perf_bytes_total{direction=in}":                                                               1000,
		"p2pnet_perf_bytes_total{direction=out}":                                                              2000,
		"p2pnet_relay_reservations_granted_total{}":                                                           1,
		"p2pnet_relay_refusals_total{status=NO_RESERVATION}":                                                  1,
		"p2pnet_relay_circuits_opened_total{}":                                                                1,
		"p2pnet_relay_bytes_total{}":                                                                          4096,
		"p2pnet_relay_circuit_duration_seconds_count{}":                                                       1,
		"p2pnet_autonat_reachability{reachability=private}":                                                   1,
		"p2pnet_autonat_reachability{reachability=public}":                                                    0,
		"p2pnet_autonat_checks_total{result=reachable}":                                                       1,
		"p2pnet_autonat_checks_total{result=error}":                                                           1,
	})
}

// TestPullCollector checks the figures read at scrape time, summed over
// two hosts that share a registry, and that Close stops reading them.
func TestPullCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var ms []*Metrics
	for range 2 {
		m, err := New(reg)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	cm, err := connmgr.New(10, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	cm.Protect("peerA", "t")
	cm.Protect("peerB", "t")
	bus := event.NewBus()
	sub, err := bus.Subscribe(new(event.EvtLocalReachabilityChanged), event.BufSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	em, err := bus.Emitter(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	for range 3 { // one buffered, two dropped
		em.Emit(event.EvtLocalReachabilityChanged{})
	}
	lim := rcmgr.UnlimitedLimits()
	lim.System.Conns = 5
	rm, err := rcmgr.New(lim)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	ms[0].Watch(Sources{ConnMgr: cm, Bus: bus, Rcmgr: rm})
	ms[1].Watch(Sources{ConnMgr: cm})
	expect(t, gather(t, reg), map[string]float64{
		"p2pnet_connmgr_protected_peers{}":                4,
		"p2pnet_connmgr_high_watermark{}":                 40,
		"p2pnet_connmgr_trims_total{}":                    0,
		"p2pnet_eventbus_dropped_total{}":                 2,
		"p2pnet_rcmgr_limit{resource=Conns,scope=system}": 5,
	})
	ms[1].Close()
	expect(t, gather(t, reg), map[string]float64{"p2pnet_connmgr_protected_peers{}": 2})
	ms[0].Close()
	if _, ok := gather(t, reg)["p2pnet_connmgr_protected_peers{}"]; ok {
		t.Error("a closed host's figures are still exported")
	}
}
