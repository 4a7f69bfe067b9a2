package metrics

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/holepunch"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is one host's metrics: the tracers it hands to the mechanisms
// and the sources its collectors read at scrape time. Hosts that share a
// Registerer share the series: counters and gauges add up across them.
type Metrics struct {
	set    *eventMetrics
	pull   *pullCollector
	labels *protocolLabels

	mu  sync.Mutex // guards src
	src *Sources
}

// Sources are the parts of a host whose own counters the collectors read
// at scrape time; any may be nil.
type Sources struct {
	// Rcmgr is the host's resource manager, when it is an rcmgr.Manager.
	// Of hosts sharing a Registerer, only the first one's is exported.
	Rcmgr *rcmgr.Manager
	// ConnMgr is the host's connection manager.
	ConnMgr *connmgr.Manager
	// Bus is the host's event bus.
	Bus *event.Bus
	// HolePunch is the host's DCUtR service.
	HolePunch *holepunch.Service
	// Relay is the host's relay service.
	Relay *relay.Service
	// Served reports whether the host serves a protocol; the protocol
	// label names only those (and the well-known ones).
	Served func(protocol.ID) bool
}

// New registers the metrics with reg and returns them. Registering again
// with the same reg (another host) shares the series already registered.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil Registerer")
	}
	set, err := register(reg, newEventMetrics())
	if err != nil {
		return nil, err
	}
	pull, err := register(reg, newPullCollector())
	if err != nil {
		return nil, err
	}
	return &Metrics{set: set, pull: pull, labels: newProtocolLabels()}, nil
}

// register registers c with reg, or returns the collector of the same
// type registered already.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("metrics: %w", err)
}

// Watch makes the collectors read src's parts at each scrape, until
// Close.
func (m *Metrics) Watch(src Sources) {
	m.labels.setServed(src.Served)
	m.mu.Lock()
	old := m.src
	m.src = &src
	m.mu.Unlock()
	m.pull.replace(old, &src)
}

// Close stops reading the sources given to Watch. The series stay
// registered, with their last values.
func (m *Metrics) Close() {
	m.mu.Lock()
	old := m.src
	m.src = nil
	m.mu.Unlock()
	m.pull.replace(old, nil)
	m.labels.setServed(nil)
}

// SetReachability sets p2pnet_autonat_reachability, whose series with
// the label of r is 1 and the others 0.
func (m *Metrics) SetReachability(r network.Reachability) {
	for _, x := range []network.Reachability{network.ReachabilityUnknown, network.ReachabilityPublic, network.ReachabilityPrivate} {
		v := 0.0
		if x == r {
			v = 1
		}
		m.set.reachability.WithLabelValues(reachabilityLabel(x)).Set(v)
	}
}

// AutoNATResult counts one AutoNAT check of one of our addresses:
// reachable is what the server found, err why the check failed.
func (m *Metrics) AutoNATResult(reachable bool, err error) {
	res := "unreachable"
	switch {
	case err != nil:
		res = "error"
	case reachable:
		res = "reachable"
	}
	m.set.autonatChecks.WithLabelValues(res).Inc()
}

func reachabilityLabel(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// pullCollector reads the sources' own counters at scrape time.
type pullCollector struct {
	mu   sync.Mutex // guards srcs
	srcs []*Sources

	relayReservations, relayCircuits                        *prometheus.Desc
	hpAttempts, hpSuccesses, hpFailures, hpTime             *prometheus.Desc
	cmConns, cmTrims, cmTrimmed, cmProtected, cmLow, cmHigh *prometheus.Desc
	busDropped                                              *prometheus.Desc
}

func newPullCollector() *pullCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &pullCollector{
		relayReservations: d("p2pnet_relay_reservations", "Reservations the relay service holds."),
		relayCircuits:     d("p2pnet_relay_circuits", "Circuits the relay service relays now."),
		hpAttempts:        d("p2pnet_holepunch_attempts_total", "Hole-punching rounds that dialed an address of the transport.", "transport"),
		hpSuccesses:       d("p2pnet_holepunch_successes_total", "Rounds whose direct connection is of the transport.", "transport"),
		hpFailures:        d("p2pnet_holepunch_failures_total", "Rounds of the transport that made no direct connection of it.", "transport"),
		hpTime:            d("p2pnet_holepunch_direct_seconds_total", "Sum over successes of the time from the start of the exchange to the direct connection.", "transport"),
		cmConns:           d("p2pnet_connmgr_connections", "Open connections the connection manager knows of."),
		cmTrims:           d("p2pnet_connmgr_trims_total", "Trims that closed at least one connection."),
		cmTrimmed:         d("p2pnet_connmgr_trimmed_connections_total", "Connections closed by trims."),
		cmProtected:       d("p2pnet_connmgr_protected_peers", "Peers protected from trimming."),
		cmLow:             d("p2pnet_connmgr_low_watermark", "The connection manager's low watermark."),
		cmHigh:            d("p2pnet_connmgr_high_watermark", "The connection manager's high watermark."),
		busDropped:        d("p2pnet_eventbus_dropped_total", "Events dropped because a subscriber's buffer was full."),
	}
}

// replace swaps old for now in the sources (either may be nil).
func (p *pullCollector) replace(old, now *Sources) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.srcs = slices.DeleteFunc(p.srcs, func(s *Sources) bool { return s == old })
	if now != nil {
		p.srcs = append(p.srcs, now)
	}
}

// Describe sends the descriptions of the metrics, the resource
// manager's excepted: they vary with the sources, so the collector is
// partly unchecked for them.
func (p *pullCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{p.relayReservations, p.relayCircuits, p.hpAttempts, p.hpSuccesses,
		p.hpFailures, p.hpTime, p.cmConns, p.cmTrims, p.cmTrimmed, p.cmProtected, p.cmLow, p.cmHigh, p.busDropped} {
		ch <- d
	}
	rcmgrDescribe(ch)
}

// Collect sends the sum of the sources' figures.
func (p *pullCollector) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	srcs := slices.Clone(p.srcs)
	p.mu.Unlock()

	var (
		haveRelay, haveCM, haveBus     bool
		rsv, circ                      int
		hp                             = map[string]holepunch.TransportStats{}
		cmConns, cmProt, cmLow, cmHigh int
		cmStats                        connmgr.TrimStats
		dropped                        uint64
		rm                             *rcmgr.Manager
	)
	for _, s := range srcs {
		if s.Relay != nil {
			haveRelay = true
			rsv += s.Relay.NumReservations()
			circ += s.Relay.NumCircuits()
		}
		if s.HolePunch != nil {
			for tpt, st := range s.HolePunch.Stats() {
				sum := hp[tpt]
				sum.Attempts += st.Attempts
				sum.Successes += st.Successes
				sum.Failures += st.Failures
				sum.Time += st.Time
				hp[tpt] = sum
			}
		}
		if s.ConnMgr != nil {
			haveCM = true
			cmConns += s.ConnMgr.ConnCount()
			cmProt += s.ConnMgr.NumProtected()
			st := s.ConnMgr.Stats()
			cmStats.Trims += st.Trims
			cmStats.Closed += st.Closed
			lo, hi := s.ConnMgr.Watermarks()
			cmLow += lo
			cmHigh += hi
		}
		if s.Bus != nil {
			haveBus = true
			dropped += s.Bus.Dropped()
		}
		if rm == nil && s.Rcmgr != nil {
			rm = s.Rcmgr
		}
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	c := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if haveRelay {
		g(p.relayReservations, float64(rsv))
		g(p.relayCircuits, float64(circ))
	}
	for tpt, st := range hp {
		c(p.hpAttempts, float64(st.Attempts), tpt)
		c(p.hpSuccesses, float64(st.Successes), tpt)
		c(p.hpFailures, float64(st.Failures), tpt)
		c(p.hpTime, st.Time.Seconds(), tpt)
	}
	if haveCM {
		g(p.cmConns, float64(cmConns))
		g(p.cmProtected, float64(cmProt))
		c(p.cmTrims, float64(cmStats.Trims))
		c(p.cmTrimmed, float64(cmStats.Closed))
		g(p.cmLow, float64(cmLow))
		g(p.cmHigh, float64(cmHigh))
	}
	if haveBus {
		c(p.busDropped, float64(dropped))
	}
	if rm != nil {
		rcmgrCollect(rm, ch)
	}
}
