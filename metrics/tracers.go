package metrics

import (
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/swarm"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// SwarmTracer is the swarm.Tracer of a Metrics.
type SwarmTracer struct{ m *Metrics }

// IdentifyTracer is the identify.Tracer of a Metrics.
type IdentifyTracer struct{ m *Metrics }

// PingTracer is the ping.Tracer of a Metrics.
type PingTracer struct{ m *Metrics }

// PerfTracer is the perf.Tracer of a Metrics.
type PerfTracer struct{ m *Metrics }

// HandshakeTracer is the transport.HandshakeTracer of a Metrics.
type HandshakeTracer struct{ m *Metrics }

// RelayTracer is the relay.Tracer of a Metrics.
type RelayTracer struct{ m *Metrics }

var (
	_ swarm.Tracer    = SwarmTracer{}
	_ identify.Tracer = IdentifyTracer{}
	_ ping.Tracer     = PingTracer{}
	_ perf.Tracer     = PerfTracer{}
	_ relay.Tracer    = RelayTracer{}

	_ transport.HandshakeTracer = HandshakeTracer{}
)

// Swarm returns the tracer to give the swarm (swarm.WithTracer).
func (m *Metrics) Swarm() SwarmTracer { return SwarmTracer{m} }

// Identify returns the tracer to give identify (identify.WithTracer).
func (m *Metrics) Identify() IdentifyTracer { return IdentifyTracer{m} }

// Ping returns the tracer to give the ping service (ping.WithTracer).
func (m *Metrics) Ping() PingTracer { return PingTracer{m} }

// Perf returns the tracer to give the perf service (perf.WithTracer).
func (m *Metrics) Perf() PerfTracer { return PerfTracer{m} }

// Handshake returns the tracer to give the upgrader (upgrader.Config's
// Tracer) and the QUIC transport (quic.WithHandshakeTracer).
func (m *Metrics) Handshake() HandshakeTracer { return HandshakeTracer{m} }

// Handshake records one handshake's time by transport, direction and
// outcome.
func (t HandshakeTracer) Handshake(dir network.Direction, tr string, d time.Duration, err error) {
	oc := "success"
	if err != nil {
		oc = "failure"
	}
	t.m.set.handshakeDuration.WithLabelValues(tr, direction(dir), oc).Observe(d.Seconds())
}

// Relay returns the tracer to give the relay service (relay.WithTracer).
func (m *Metrics) Relay() RelayTracer { return RelayTracer{m} }

// connLabelValues returns the label values of c's connection metrics.
func connLabelValues(c network.Conn) [5]string {
	cs, raddr := c.ConnState(), c.RemoteMultiaddr()
	return [5]string{
		connTransport(cs, raddr),
		orNone(string(cs.Security)),
		orNone(string(cs.StreamMultiplexer)),
		direction(c.Stat().Direction),
		ipVersion(raddr),
	}
}

// ConnOpened counts c open.
func (t SwarmTracer) ConnOpened(c network.Conn) {
	l := connLabelValues(c)
	t.m.set.connsOpened.WithLabelValues(l[:]...).Inc()
	t.m.set.connsGauge.WithLabelValues(l[:]...).Inc()
}

// ConnClosed counts c closed after open.
func (t SwarmTracer) ConnClosed(c network.Conn, open time.Duration) {
	l := connLabelValues(c)
	t.m.set.connsClosed.WithLabelValues(l[:]...).Inc()
	t.m.set.connsGauge.WithLabelValues(l[:]...).Dec()
	t.m.set.connDuration.WithLabelValues(l[0], l[3]).Observe(open.Seconds())
}

// DialDone counts a dial of addr and its time.
func (t SwarmTracer) DialDone(addr ma.Multiaddr, took time.Duration, err error) {
	tpt := addrTransport(addr)
	t.m.set.dials.WithLabelValues(tpt, dialOutcome(err)).Inc()
	res := "success"
	if err != nil {
		res = "failure"
	}
	t.m.set.dialDuration.WithLabelValues(tpt, res).Observe(took.Seconds())
}

// DialSkipped counts an address not dialed, by why.
func (t SwarmTracer) DialSkipped(addr ma.Multiaddr, err error) {
	t.m.set.dials.WithLabelValues(addrTransport(addr), dialOutcome(err)).Inc()
}

// StreamOpened counts a stream open.
func (t SwarmTracer) StreamOpened(dir network.Direction) {
	d := direction(dir)
	t.m.set.streamsOpened.WithLabelValues(d).Inc()
	t.m.set.streams.WithLabelValues(d).Inc()
}

// StreamProtocol moves a stream from old's count to now's.
func (t SwarmTracer) StreamProtocol(dir network.Direction, old, now protocol.ID) {
	d := direction(dir)
	if old != "" {
		t.m.set.protoStreams.WithLabelValues(t.m.labels.label(old), d).Dec()
	}
	p := t.m.labels.label(now)
	t.m.set.protoStreams.WithLabelValues(p, d).Inc()
	t.m.set.protoStreamsTotal.WithLabelValues(p, d).Inc()
}

// StreamClosed counts a stream closed and its bytes.
func (t SwarmTracer) StreamClosed(dir network.Direction, proto protocol.ID, in, out int64) {
	d := direction(dir)
	t.m.set.streams.WithLabelValues(d).Dec()
	p := t.m.labels.label(proto)
	if proto != "" {
		t.m.set.protoStreams.WithLabelValues(p, d).Dec()
	}
	if in > 0 {
		t.m.set.protoBytes.WithLabelValues(p, "in").Add(float64(in))
	}
	if out > 0 {
		t.m.set.protoBytes.WithLabelValues(p, "out").Add(float64(out))
	}
}

// Identified counts an identify exchange.
func (t IdentifyTracer) Identified(err error) { t.m.set.identify.WithLabelValues(outcome(err)).Inc() }

// PushSent counts a push sent.
func (t IdentifyTracer) PushSent(err error) { t.m.set.pushesSent.WithLabelValues(outcome(err)).Inc() }

// PushReceived counts a push received.
func (t IdentifyTracer) PushReceived(err error) {
	t.m.set.pushesReceived.WithLabelValues(outcome(err)).Inc()
}

// Served counts a ping stream served and its echoes.
func (t PingTracer) Served(echoes int, err error) {
	t.m.set.pingStreams.WithLabelValues(outcome(err)).Inc()
	t.m.set.pingEchoes.Add(float64(echoes))
}

// RoundTrip counts a round trip of the host's pings and its time.
func (t PingTracer) RoundTrip(rtt time.Duration, err error) {
	t.m.set.pingTrips.WithLabelValues(outcome(err)).Inc()
	if err == nil {
		t.m.set.pingRTT.Observe(rtt.Seconds())
	}
}

// Served counts a perf run served and its bytes.
func (t PerfTracer) Served(received, sent uint64, err error) {
	t.m.set.perfRuns.WithLabelValues(outcome(err)).Inc()
	t.m.set.perfBytes.WithLabelValues("in").Add(float64(received))
	t.m.set.perfBytes.WithLabelValues("out").Add(float64(sent))
}

// ReservationGranted counts a reservation granted.
func (t RelayTracer) ReservationGranted() { t.m.set.relayGranted.Inc() }

// Refused counts a hop request refused with status.
func (t RelayTracer) Refused(status relay.Status) {
	t.m.set.relayRefused.WithLabelValues(status.String()).Inc()
}

// CircuitOpened counts a circuit opened.
func (t RelayTracer) CircuitOpened() { t.m.set.relayOpened.Inc() }

// CircuitClosed counts a circuit's bytes and duration.
func (t RelayTracer) CircuitClosed(relayed int64, open time.Duration) {
	t.m.set.relayBytes.Add(float64(relayed))
	t.m.set.relayDuration.Observe(open.Seconds())
}
