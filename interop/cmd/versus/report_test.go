package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStats(t *testing.T) {
	s := stats([]float64{5, 1, 3})
	if s != (stat{Median: 3, Min: 1, Max: 5}) {
		t.Fatalf("stats = %+v", s)
	}
	if s := stats([]float64{4, 1, 2, 3}); s.Median != 2.5 {
		t.Fatalf("median of 4 values = %v, want 2.5", s.Median)
	}
}

// TestRowTargets: the ratio is the median of the per-round ratios, and
// the mark follows the direction of the measure and the kind of target.
func TestRowTargets(t *testing.T) {
	for _, tc := range []struct {
		dir          better
		target       float64
		abs          bool
		ours, theirs []float64
		pass         bool
	}{
		{higher, 1.4, false, []float64{150, 140, 160}, []float64{100, 100, 100}, true},
		{higher, 1.4, false, []float64{130, 150, 120}, []float64{100, 100, 100}, false},
		{lower, 0.5, false, []float64{4, 5, 6}, []float64{10, 10, 10}, true},
		{lower, 0.5, false, []float64{6, 5, 7}, []float64{10, 10, 10}, false},
		{lower, 2, true, []float64{2, 2, 2}, []float64{4, 4, 4}, true},
		{lower, 2, true, []float64{3, 3, 3}, []float64{4, 4, 4}, false},
	} {
		r := newRow("m", "u", "ref", tc.dir, tc.target)
		r.Abs = tc.abs
		for i := range tc.ours {
			r.add(tc.ours[i], tc.theirs[i])
		}
		r.finish()
		if r.Pass == nil || *r.Pass != tc.pass {
			t.Errorf("%+v: pass = %v, want %v (ratio %v)", tc, r.Pass, tc.pass, r.Ratio)
		}
	}
	r := newRow("info", "u", "ref", lower, 0)
	r.add(1, 2)
	r.finish()
	if r.Pass != nil || r.Ratio.Median != 0.5 {
		t.Fatalf("row without a target: pass %v, ratio %v", r.Pass, r.Ratio.Median)
	}
}

// TestOutputs: the table lists every row, the JSON parses back, and the
// plot is well-formed SVG with a bar per row that has a ratio target.
func TestOutputs(t *testing.T) {
	rep := &report{Machine: "m", Date: "d", Command: "go run ./cmd/versus", Rounds: 2}
	a := newRow("one stream, TCP+Noise", "MiB/s", "go-libp2p", higher, 1.4)
	a.add(150, 100)
	a.add(140, 100)
	b := newRow("p99 <request> & bulk", "ms", "go-libp2p", lower, 0.5)
	b.add(3, 10)
	b.add(4, 10)
	c := newRow("goroutines", "", "go-libp2p", lower, 2)
	c.Abs = true
	c.add(2, 4)
	rep.Rows = []*row{a, b, c}
	rep.finish()

	var table bytes.Buffer
	rep.writeTable(&table)
	for _, r := range rep.Rows {
		if !strings.Contains(table.String(), "| "+r.Name+" |") {
			t.Errorf("table lacks %q", r.Name)
		}
	}
	if !strings.Contains(table.String(), "targets: 3 met, 0 not met") {
		t.Errorf("table's summary wrong:\n%s", table.String())
	}

	dir := t.TempDir()
	if err := rep.writeJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Rows) != 3 || back.Rows[0].Ratio.Median != 1.45 {
		t.Fatalf("JSON does not parse back: %v", err)
	}

	if err := rep.writePlot(filepath.Join(dir, "r.svg")); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "r.svg"))
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(svg))
	bars := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("plot is not well-formed XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			bars++
		}
	}
	if bars != 1+2 { // the background and the two ratio rows
		t.Fatalf("%d rects in the plot, want 3", bars)
	}
}
