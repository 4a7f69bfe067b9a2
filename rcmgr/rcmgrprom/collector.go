// Package rcmgrprom exports the figures of an rcmgr.Manager to
// Prometheus: the use and limits of the system, transient and allowlisted
// scopes, the number of live scopes of each kind, and the refusals by kind
// of scope and resource.
//
// It is a package of its own so that programs that do not use Prometheus
// do not link it. It may import rcmgr, the Prometheus client library and
// the standard library.
package rcmgrprom

import (
	"math"

	"github.com/p2pnet/p2pnet/rcmgr"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector of one Manager's figures. Each
// scrape takes the Manager's Summary, which costs one short hold of its
// lock whatever the number of peers.
type Collector struct {
	m        *rcmgr.Manager
	use      *prometheus.Desc
	limit    *prometheus.Desc
	scopes   *prometheus.Desc
	refusals *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of m's figures. Register it with a
// prometheus.Registerer (or call Register).
//
// The metrics are
//
//	p2pnet_rcmgr_use{scope, resource}          what the scope holds: bytes of memory, or a count
//	p2pnet_rcmgr_limit{scope, resource}        the scope's limit (+Inf when unlimited)
//	p2pnet_rcmgr_scopes{kind}                  live scopes of each kind
//	p2pnet_rcmgr_refusals_total{kind, resource} refused reservations
//
// where scope is system, transient, allowlisted_system or
// allowlisted_transient, kind is any rcmgr.ScopeKind, and resource is a
// field of rcmgr.Limit such as Memory or StreamsInbound.
func NewCollector(m *rcmgr.Manager) *Collector {
	return &Collector{
		m: m,
		use: prometheus.NewDesc("p2pnet_rcmgr_use",
			"Resources held by a top-level scope: bytes of memory, or a count.",
			[]string{"scope", "resource"}, nil),
		limit: prometheus.NewDesc("p2pnet_rcmgr_limit",
			"Limit of a top-level scope (+Inf when unlimited).",
			[]string{"scope", "resource"}, nil),
		scopes: prometheus.NewDesc("p2pnet_rcmgr_scopes",
			"Live scopes of each kind.",
			[]string{"kind"}, nil),
		refusals: prometheus.NewDesc("p2pnet_rcmgr_refusals_total",
			"Reservations refused, by the kind of scope that refused and the resource.",
			[]string{"kind", "resource"}, nil),
	}
}

// Register registers a Collector of m's figures with reg.
func Register(reg prometheus.Registerer, m *rcmgr.Manager) error {
	return reg.Register(NewCollector(m))
}

// Describe sends the descriptions of the metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.use
	ch <- c.limit
	ch <- c.scopes
	ch <- c.refusals
}

// Collect sends the current figures.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Summary()
	for _, top := range s.Top {
		kind := top.Kind.String()
		for r := rcmgr.ResourceMemory; r <= rcmgr.ResourceFD; r++ {
			res := r.FieldName()
			ch <- prometheus.MustNewConstMetric(c.use, prometheus.GaugeValue, float64(rcmgr.Used(top.Use, r)), kind, res)
			limit := math.Inf(1)
			if top.Limit != nil && !top.Limit.IsUnlimited(r) {
				limit = float64(top.Limit.Get(r))
			}
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, limit, kind, res)
		}
	}
	for kind, n := range s.Live {
		ch <- prometheus.MustNewConstMetric(c.scopes, prometheus.GaugeValue, float64(n), kind.String())
	}
	for _, r := range s.Refusals {
		ch <- prometheus.MustNewConstMetric(c.refusals, prometheus.CounterValue, float64(r.Count), r.Kind.String(), r.Resource.FieldName())
	}
}
