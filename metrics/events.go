package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// eventMetrics are the metrics the tracers update as things happen.
type eventMetrics struct {
	all []prometheus.Collector

	connsOpened, connsClosed *prometheus.CounterVec
	connsGauge               *prometheus.GaugeVec
	connDuration             *prometheus.HistogramVec
	dials                    *prometheus.CounterVec
	dialDuration             *prometheus.HistogramVec
	handshakeDuration        *prometheus.HistogramVec
	streams                  *prometheus.GaugeVec
	streamsOpened            *prometheus.CounterVec
	protoStreams             *prometheus.GaugeVec
	protoStreamsTotal        *prometheus.CounterVec
	protoBytes               *prometheus.CounterVec

	identify, pushesSent, pushesReceived *prometheus.CounterVec

	pingStreams *prometheus.CounterVec
	pingEchoes  prometheus.Counter
	pingRTT     prometheus.Histogram
	pingTrips   *prometheus.CounterVec

	perfRuns  *prometheus.CounterVec
	perfBytes *prometheus.CounterVec

	relayGranted  prometheus.Counter
	relayRefused  *prometheus.CounterVec
	relayOpened   prometheus.Counter
	relayBytes    prometheus.Counter
	relayDuration prometheus.Histogram

	reachability  *prometheus.GaugeVec
	autonatChecks *prometheus.CounterVec
}

// Labels of the connection metrics.
var connLabels = []string{"transport", "security", "muxer", "direction", "ip_version"}

func newEventMetrics() *eventMetrics {
	m := &eventMetrics{}
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.all = append(m.all, v)
		return v
	}
	c := func(name, help string) prometheus.Counter {
		v := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.all = append(m.all, v)
		return v
	}
	gv := func(name, help string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		m.all = append(m.all, v)
		return v
	}
	hv := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.all = append(m.all, v)
		return v
	}
	dialBuckets := prometheus.ExponentialBuckets(0.001, 2, 15)  // 1 ms … 16 s
	longBuckets := prometheus.ExponentialBuckets(1, 4, 10)      // 1 s … 3 days
	circuitBuckets := prometheus.ExponentialBuckets(0.5, 2, 12) // 0.5 s … 17 min

	m.connsGauge = gv("p2pnet_swarm_connections", "Open connections.", connLabels...)
	m.connsOpened = cv("p2pnet_swarm_connections_opened_total", "Connections opened.", connLabels...)
	m.connsClosed = cv("p2pnet_swarm_connections_closed_total", "Connections closed.", connLabels...)
	m.connDuration = hv("p2pnet_swarm_connection_duration_seconds", "How long connections stayed open.", longBuckets, "transport", "direction")
	m.dials = cv("p2pnet_swarm_dials_total", "Dials of one address, by outcome; addresses skipped (backoff, gated, black-holed) count too.", "transport", "outcome")
	m.dialDuration = hv("p2pnet_swarm_dial_duration_seconds", "Time a transport took to dial, secure and multiplex one address.", dialBuckets, "transport", "outcome")
	m.handshakeDuration = hv("p2pnet_swarm_handshake_duration_seconds", "Time a connection's handshake took (security and muxer; QUIC's own), by outcome (success or failure).", dialBuckets, "transport", "direction", "outcome")
	m.streams = gv("p2pnet_swarm_streams", "Open streams.", "direction")
	m.streamsOpened = cv("p2pnet_swarm_streams_opened_total", "Streams opened.", "direction")
	m.protoStreams = gv("p2pnet_swarm_protocol_streams", "Open streams that named a protocol.", "protocol", "direction")
	m.protoStreamsTotal = cv("p2pnet_swarm_protocol_streams_total", "Streams that named a protocol.", "protocol", "direction")
	m.protoBytes = cv("p2pnet_swarm_protocol_bytes_total", "Bytes read (in) and written (out) on streams, counted when a stream ends.", "protocol", "direction")

	m.identify = cv("p2pnet_identify_total", "Identify exchanges we asked for.", "outcome")
	m.pushesSent = cv("p2pnet_identify_pushes_sent_total", "Identify pushes sent.", "outcome")
	m.pushesReceived = cv("p2pnet_identify_pushes_received_total", "Identify pushes received.", "outcome")

	m.pingStreams = cv("p2pnet_ping_streams_served_total", "Ping streams served.", "outcome")
	m.pingEchoes = c("p2pnet_ping_echoes_total", "Ping payloads echoed.")
	m.pingRTT = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "p2pnet_ping_rtt_seconds",
		Help: "Round-trip times of the host's pings (Host.Ping).", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}) // 0.1 ms … 3.3 s
	m.all = append(m.all, m.pingRTT)
	m.pingTrips = cv("p2pnet_ping_round_trips_total", "Round trips of the host's pings (Host.Ping), by outcome.", "outcome")

	m.perfRuns = cv("p2pnet_perf_runs_served_total", "Perf runs served.", "outcome")
	m.perfBytes = cv("p2pnet_perf_bytes_total", "Bytes perf runs received (in) and sent (out).", "direction")

	m.relayGranted = c("p2pnet_relay_reservations_granted_total", "Reservations the relay service granted, renewals included.")
	m.relayRefused = cv("p2pnet_relay_refusals_total", "Hop requests the relay service refused, by status.", "status")
	m.relayOpened = c("p2pnet_relay_circuits_opened_total", "Circuits the relay service opened.")
	m.relayBytes = c("p2pnet_relay_bytes_total", "Bytes relayed, both directions, counted when a circuit ends.")
	m.relayDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "p2pnet_relay_circuit_duration_seconds",
		Help: "How long circuits lasted.", Buckets: circuitBuckets})
	m.all = append(m.all, m.relayDuration)

	m.reachability = gv("p2pnet_autonat_reachability", "1 for the host's reachability (unknown, public, private) as AutoNAT finds it, 0 for the others.", "reachability")
	m.autonatChecks = cv("p2pnet_autonat_checks_total", "AutoNAT checks of our addresses, by result.", "result")
	return m
}

// Describe sends the descriptions of every metric.
func (m *eventMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect sends every metric.
func (m *eventMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}
