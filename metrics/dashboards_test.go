package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// exported returns every metric name the package exports, with the
// label names of each; histograms give their _bucket, _sum and _count
// series (with "le" on _bucket).
func exported(t *testing.T) map[string]map[string]bool {
	t.Helper()
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	histograms := map[string]bool{}
	for _, c := range m.set.all {
		switch c.(type) {
		case *prometheus.HistogramVec, prometheus.Histogram:
			ch := make(chan *prometheus.Desc, 1)
			c.Describe(ch)
			histograms[descName(t, <-ch)] = true
		}
	}
	ch := make(chan *prometheus.Desc, 256)
	m.set.Describe(ch)
	m.pull.Describe(ch)
	close(ch)
	out := map[string]map[string]bool{}
	descLabels := regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	for d := range ch {
		name := descName(t, d)
		labels := map[string]bool{}
		if ls := descLabels.FindStringSubmatch(d.String()); ls != nil && ls[1] != "" {
			for _, l := range strings.Split(ls[1], ",") {
				labels[strings.TrimSpace(l)] = true
			}
		}
		if !histograms[name] {
			out[name] = labels
			continue
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			ls := map[string]bool{}
			for l := range labels {
				ls[l] = true
			}
			if suffix == "_bucket" {
				ls["le"] = true
			}
			out[name+suffix] = ls
		}
	}
	return out
}

var descFQName = regexp.MustCompile(`fqName: "([^"]+)"`)

func descName(t *testing.T, d *prometheus.Desc) string {
	t.Helper()
	m := descFQName.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("no name in %s", d)
	}
	return m[1]
}

// exprs returns every PromQL expression of a Grafana dashboard: the
// "expr" of each target and the "query" of each variable.
func exprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "expr" || k == "query") {
				*out = append(*out, s)
				continue
			}
			exprs(x, out)
		}
	case []any:
		for _, x := range v {
			exprs(x, out)
		}
	}
}

// Labels that Prometheus adds to every series it scrapes.
var targetLabels = map[string]bool{"instance": true, "job": true}

var (
	seriesName = regexp.MustCompile(`\bp2pnet_[a-zA-Z0-9_]+`)
	// selector matches a series name and its label matchers.
	selector = regexp.MustCompile(`\b(p2pnet_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	// grouping matches "by (a, b)".
	grouping = regexp.MustCompile(`\bby\s*\(([^)]*)\)`)
)

// TestDashboardsUseExportedSeries fails when a dashboard names a series
// the hosts do not export, or a label those series do not have, and
// checks that there is a dashboard for each area.
func TestDashboardsUseExportedSeries(t *testing.T) {
	names := exported(t)
	files, err := filepath.Glob(filepath.Join("..", "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"p2pnet-swarm.json", "p2pnet-streams.json", "p2pnet-rcmgr.json", "p2pnet-relay-nat.json"} {
		found := false
		for _, f := range files {
			found = found || filepath.Base(f) == want
		}
		if !found {
			t.Errorf("dashboards/%s is missing", want)
		}
	}
	used := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(data, &d); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var es []string
		exprs(d, &es)
		if len(es) == 0 {
			t.Errorf("%s has no queries", f)
		}
		for _, e := range es {
			var inExpr []string
			for _, n := range seriesName.FindAllString(e, -1) {
				used[n] = true
				inExpr = append(inExpr, n)
				if _, ok := names[n]; !ok {
					t.Errorf("%s: %q names %s, which no host exports", filepath.Base(f), e, n)
				}
			}
			for _, s := range selector.FindAllStringSubmatch(e, -1) {
				for _, m := range matcher.FindAllStringSubmatch(s[2], -1) {
					if ls, ok := names[s[1]]; ok && !ls[m[1]] && !targetLabels[m[1]] {
						t.Errorf("%s: %q selects %s by label %s, which it does not have", filepath.Base(f), e, s[1], m[1])
					}
				}
			}
			// Every label an expression groups by must belong to one of
			// its series.
			for _, g := range grouping.FindAllStringSubmatch(e, -1) {
				for _, l := range strings.Split(g[1], ",") {
					l = strings.TrimSpace(l)
					ok := targetLabels[l]
					for _, n := range inExpr {
						ok = ok || names[n][l]
					}
					if !ok {
						t.Errorf("%s: %q groups by %s, which none of its series has", filepath.Base(f), e, l)
					}
				}
			}
		}
	}
	// The dashboards show every family but those of Go and the process.
	for n := range names {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
		if !used[n] && !used[base+"_bucket"] {
			t.Errorf("no dashboard shows %s", n)
		}
	}
}

// TestDashboardsCheckFails makes sure the check above can fail: a
// series that is not exported is not in the exported set.
func TestDashboardsCheckFails(t *testing.T) {
	names := exported(t)
	for _, n := range []string{"p2pnet_swarm_dials_total_bucket", "p2pnet_no_such_series", "p2pnet_swarm_connections_total"} {
		if _, ok := names[n]; ok {
			t.Errorf("%s counts as exported", n)
		}
	}
	for _, n := range []string{"p2pnet_swarm_dial_duration_seconds_bucket", "p2pnet_rcmgr_refusals_total", "p2pnet_relay_circuits"} {
		if _, ok := names[n]; !ok {
			t.Errorf("%s does not count as exported", n)
		}
	}
	if !names["p2pnet_swarm_dial_duration_seconds_bucket"]["le"] || names["p2pnet_swarm_dials_total"]["le"] {
		t.Error("the le label is where it should not be, or missing")
	}
}
