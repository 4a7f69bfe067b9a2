// Package rcmgrprom exports the figures of an rcmgr.Manager to
// Prometheus: the use and limits of the system, transient and allowlisted
// scopes, the use and limits of every kind of scope (peer, connection,
// stream, protocol, service, ...), the number of live scopes of each kind,
// and the refusals by kind of scope and resource.
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
	kindUse  *prometheus.Desc
	kindMax  *prometheus.Desc
	kindLim  *prometheus.Desc
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
//	p2pnet_rcmgr_kind_use{kind, resource}      what the live scopes of a kind hold together
//	p2pnet_rcmgr_kind_max_use{kind, resource}  the most one scope of the kind holds
//	p2pnet_rcmgr_kind_limit{kind, resource}    the tightest limit among them (+Inf when none)
//
// where scope is system, transient, allowlisted_system or
// allowlisted_transient, kind is any rcmgr.ScopeKind, and resource is a
// field of rcmgr.Limit such as Memory or StreamsInbound. The kind_*
// figures come from a Manager.Snapshot, which walks every live scope
// under the manager's lock: a scrape costs time in proportion to the
// number of peers, connections and streams (microseconds per thousand).
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
		kindUse: prometheus.NewDesc("p2pnet_rcmgr_kind_use",
			"Resources held by all live scopes of a kind together: bytes of memory, or a count.",
			[]string{"kind", "resource"}, nil),
		kindMax: prometheus.NewDesc("p2pnet_rcmgr_kind_max_use",
			"The most resources one live scope of a kind holds.",
			[]string{"kind", "resource"}, nil),
		kindLim: prometheus.NewDesc("p2pnet_rcmgr_kind_limit",
			"The tightest limit among the live scopes of a kind (+Inf when unlimited).",
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
	ch <- c.kindUse
	ch <- c.kindMax
	ch <- c.kindLim
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
	c.collectKinds(ch)
}

// kindFigures is what collectKinds adds up for one kind and resource.
type kindFigures struct {
	seen     bool
	use, max int64
	limit    float64
}

// collectKinds sends the use and limits of every kind of scope, top
// scopes excepted (their own figures are above): zero use and a +Inf
// limit for a kind with no live scope, so that a series does not vanish
// while a host is idle (unused scopes are swept within a second).
func (c *Collector) collectKinds(ch chan<- prometheus.Metric) {
	const numResources = int(rcmgr.ResourceFD) + 1
	var figs [rcmgr.KindIP + 1][numResources]kindFigures
	for _, sc := range c.m.Snapshot().Scopes {
		switch sc.Kind {
		case rcmgr.KindSystem, rcmgr.KindTransient, rcmgr.KindAllowlistedSystem, rcmgr.KindAllowlistedTransient:
			continue
		}
		if int(sc.Kind) >= len(figs) {
			continue
		}
		for r := rcmgr.ResourceMemory; r <= rcmgr.ResourceFD; r++ {
			f := &figs[sc.Kind][r]
			if !f.seen {
				f.seen, f.limit = true, math.Inf(1)
			}
			u := rcmgr.Used(sc.Use, r)
			f.use += u
			f.max = max(f.max, u)
			if sc.Limit != nil && !sc.Limit.IsUnlimited(r) {
				f.limit = min(f.limit, float64(sc.Limit.Get(r)))
			}
		}
	}
	for k := range figs {
		switch rcmgr.ScopeKind(k) {
		case rcmgr.KindSystem, rcmgr.KindTransient, rcmgr.KindAllowlistedSystem, rcmgr.KindAllowlistedTransient:
			continue
		}
		for r := range figs[k] {
			f := &figs[k][r]
			if !f.seen {
				f.limit = math.Inf(1)
			}
			kind, res := rcmgr.ScopeKind(k).String(), rcmgr.Resource(r).FieldName()
			ch <- prometheus.MustNewConstMetric(c.kindUse, prometheus.GaugeValue, float64(f.use), kind, res)
			ch <- prometheus.MustNewConstMetric(c.kindMax, prometheus.GaugeValue, float64(f.max), kind, res)
			ch <- prometheus.MustNewConstMetric(c.kindLim, prometheus.GaugeValue, f.limit, kind, res)
		}
	}
}
