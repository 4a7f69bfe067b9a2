package p2pnet

import (
	"fmt"
	"slices"

	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/metrics"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/proto/relay"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/swarm"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"

	"github.com/prometheus/client_golang/prometheus"
)

// metricsConfig is what PrometheusRegisterer sets.
type metricsConfig struct {
	reg prometheus.Registerer
}

// PrometheusRegisterer makes the host export its metrics to reg: the
// swarm's connections, dials and streams, identify, ping, perf, the relay
// service, hole punching, AutoNAT reachability, the connection manager,
// the event bus and the resource manager (package metrics lists them).
// Hosts given the same reg share its series. Default: none, and then no
// metric is kept at all: the mechanisms' tracers stay nil.
func PrometheusRegisterer(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return fmt.Errorf("p2pnet: PrometheusRegisterer: nil Registerer")
		}
		c.metrics.reg = reg
		return nil
	}
}

// hostMetrics is the host's metrics and the goroutine that follows its
// reachability.
type hostMetrics struct {
	m    *metrics.Metrics
	sub  *event.Subscription // EvtLocalReachabilityChanged; nil until watch
	done chan struct{}       // closed when the reachability goroutine ends
}

// newHostMetrics registers the metrics cfg asks for; nil when none.
func newHostMetrics(cfg metricsConfig) (*hostMetrics, error) {
	if cfg.reg == nil {
		return nil, nil
	}
	m, err := metrics.New(cfg.reg)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	return &hostMetrics{m: m}, nil
}

// The options that hand the tracers to the mechanisms; none when
// metrics are off.

func (hm *hostMetrics) swarmOpts() []swarm.Option {
	if hm == nil {
		return nil
	}
	return []swarm.Option{swarm.WithTracer(hm.m.Swarm())}
}

// handshakeTracer is the upgrader's tracer: nil (no interface value)
// when metrics are off.
func (hm *hostMetrics) handshakeTracer() transport.HandshakeTracer {
	if hm == nil {
		return nil
	}
	return hm.m.Handshake()
}

func (hm *hostMetrics) quicOpts() []quic.Option {
	if hm == nil {
		return nil
	}
	return []quic.Option{quic.WithHandshakeTracer(hm.m.Handshake())}
}

func (hm *hostMetrics) identifyOpts() []identify.Option {
	if hm == nil {
		return nil
	}
	return []identify.Option{identify.WithTracer(hm.m.Identify())}
}

func (hm *hostMetrics) pingOpts() []ping.Option {
	if hm == nil {
		return nil
	}
	return []ping.Option{ping.WithTracer(hm.m.Ping())}
}

func (hm *hostMetrics) perfOpts() []perf.Option {
	if hm == nil {
		return nil
	}
	return []perf.Option{perf.WithTracer(hm.m.Perf())}
}

func (hm *hostMetrics) relayOpts() []relay.Option {
	if hm == nil {
		return nil
	}
	return []relay.Option{relay.WithTracer(hm.m.Relay())}
}

// watchMetrics points the collectors at h's parts and follows h's
// reachability. New calls it once h is whole.
func (h *Host) watchMetrics() error {
	hm := h.metrics
	if hm == nil {
		return nil
	}
	src := metrics.Sources{
		ConnMgr:   h.cm,
		Bus:       h.EventBus(),
		HolePunch: h.holePunch,
		Relay:     h.RelayService(),
		Served:    func(p protocol.ID) bool { return slices.Contains(h.Protocols(), p) },
	}
	if m, ok := h.cfg.rcmgr.(*rcmgr.Manager); ok {
		src.Rcmgr = m
	}
	hm.m.Watch(src)
	hm.m.SetReachability(h.Reachability())
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged), event.Name("metrics"))
	if err != nil {
		return fmt.Errorf("p2pnet: metrics: %w", err)
	}
	hm.sub, hm.done = sub, make(chan struct{})
	go func() {
		defer close(hm.done)
		for ev := range sub.Out() {
			hm.m.SetReachability(ev.(event.EvtLocalReachabilityChanged).Reachability)
		}
	}()
	return nil
}

// close stops following the host; nil-safe.
func (hm *hostMetrics) close() {
	if hm == nil {
		return
	}
	if hm.sub != nil {
		hm.sub.Close()
		<-hm.done
	}
	hm.m.Close()
}
