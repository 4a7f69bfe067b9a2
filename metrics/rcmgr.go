package metrics

import (
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/rcmgr/rcmgrprom"

	"github.com/prometheus/client_golang/prometheus"
)

// rcmgrDescs is a collector of no manager, whose Describe sends the
// descriptions of the resource manager's metrics.
var rcmgrDescs = rcmgrprom.NewCollector(nil)

func rcmgrDescribe(ch chan<- *prometheus.Desc) { rcmgrDescs.Describe(ch) }

// rcmgrCollect sends m's figures, as rcmgrprom exports them.
func rcmgrCollect(m *rcmgr.Manager, ch chan<- prometheus.Metric) {
	rcmgrprom.NewCollector(m).Collect(ch)
}
