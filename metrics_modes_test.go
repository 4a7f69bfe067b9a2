package p2pnet_test

import (
	"github.com/p2pnet/p2pnet"

	"github.com/prometheus/client_golang/prometheus"
)

// metricsModes are the hosts the metrics benchmarks compare: without
// metrics (the default) and exporting them to a fresh registry.
var metricsModes = []struct {
	name string
	opts func() []p2pnet.Option
}{
	{"off", func() []p2pnet.Option { return nil }},
	{"on", func() []p2pnet.Option {
		return []p2pnet.Option{p2pnet.PrometheusRegisterer(prometheus.NewRegistry())}
	}},
}
