package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// better says which way a measure improves.
type better int

const (
	lower  better = iota // times, CPU, memory, allocations
	higher               // rates
)

// row is one measure: p2pnet's value in each round next to a reference's
// (go-libp2p, or a ceiling or floor), their ratio and the target.
type row struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Ref    string    `json:"reference"` // what p2pnet is compared with
	Better string    `json:"better"`    // "lower" or "higher"
	Ours   []float64 `json:"p2pnet"`    // per round
	Theirs []float64 `json:"ref"`       // per round, same order
	// Target is the bound on the ratio p2pnet/reference (≤ when lower is
	// better, ≥ when higher is); 0 means none. Abs, when set, bounds
	// p2pnet's value itself instead.
	Target float64 `json:"target,omitempty"`
	Abs    bool    `json:"target_is_absolute,omitempty"`

	OursStat   stat   `json:"p2pnet_stat"`
	TheirsStat stat   `json:"ref_stat"`
	Ratio      stat   `json:"ratio"` // of the per-round ratios
	Pass       *bool  `json:"pass,omitempty"`
	TargetText string `json:"target_text,omitempty"`

	dir better
}

// stat is a median and the range around it.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func stats(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: m, Min: s[0], Max: s[len(s)-1]}
}

// newRow makes a row comparing p2pnet with ref.
func newRow(name, unit, ref string, dir better, target float64) *row {
	return &row{Name: name, Unit: unit, Ref: ref, Target: target, dir: dir}
}

// add records one round.
func (r *row) add(ours, theirs float64) {
	r.Ours = append(r.Ours, ours)
	r.Theirs = append(r.Theirs, theirs)
}

func (r *row) finish() {
	r.Better = map[better]string{lower: "lower", higher: "higher"}[r.dir]
	r.OursStat, r.TheirsStat = stats(r.Ours), stats(r.Theirs)
	var ratios []float64
	for i := range r.Ours {
		if r.Theirs[i] > 0 {
			ratios = append(ratios, r.Ours[i]/r.Theirs[i])
		}
	}
	r.Ratio = stats(ratios)
	if r.Target == 0 {
		return
	}
	op := "≤"
	if r.dir == higher {
		op = "≥"
	}
	got := r.Ratio.Median
	if r.Abs {
		got = r.OursStat.Median
		r.TargetText = fmt.Sprintf("%s %s", op, num(r.Target))
	} else {
		r.TargetText = fmt.Sprintf("%s %.2f×", op, r.Target)
	}
	pass := got <= r.Target
	if r.dir == higher {
		pass = got >= r.Target
	}
	r.Pass = &pass
}

// report is a whole run.
type report struct {
	Machine string   `json:"machine"`
	Date    string   `json:"date"`
	Command string   `json:"command"`
	Rounds  int      `json:"rounds"`
	Quick   bool     `json:"quick"`
	Seconds float64  `json:"seconds"`
	Rows    []*row   `json:"rows"`
	Errors  []string `json:"errors,omitempty"`
}

func (rep *report) finish() {
	for _, r := range rep.Rows {
		r.finish()
	}
}

// num prints a value with about three significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// spread is the range around the median in percent.
func spread(s stat) string {
	if s.Median == 0 || s.Max == s.Min {
		return ""
	}
	return fmt.Sprintf(" ±%.0f%%", (s.Max-s.Min)/2/math.Abs(s.Median)*100)
}

// writeTable writes the report as a Markdown table.
func (rep *report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "p2pnet vs go-libp2p v0.51.0 — %s\n%s; %d interleaved rounds; %.0f s\n\n",
		rep.Date, rep.Machine, rep.Rounds, rep.Seconds)
	fmt.Fprintln(w, "| measure | unit | p2pnet | reference | ratio | target | |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	passed, failed := 0, 0
	for _, r := range rep.Rows {
		mark := ""
		if r.Pass != nil {
			if *r.Pass {
				mark = "pass"
				passed++
			} else {
				mark = "FAIL"
				failed++
			}
		}
		ratio := ""
		if r.Ratio.Median != 0 {
			ratio = fmt.Sprintf("%.2f× (%.2f–%.2f)", r.Ratio.Median, r.Ratio.Min, r.Ratio.Max)
		}
		fmt.Fprintf(w, "| %s | %s | %s%s | %s %s%s | %s | %s | %s |\n",
			r.Name, r.Unit,
			num(r.OursStat.Median), spread(r.OursStat),
			r.Ref, num(r.TheirsStat.Median), spread(r.TheirsStat),
			ratio, r.TargetText, mark)
	}
	fmt.Fprintf(w, "\ntargets: %d met, %d not met\n", passed, failed)
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	fmt.Fprintf(w, "reproduce: cd interop && %s\n", rep.Command)
}

func (rep *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writePlot draws, for every row with a ratio target, p2pnet's advantage
// over the reference (the ratio, inverted where lower is better, so
// further right is always better) on a log scale, with the target as a
// tick: a bar that reaches its tick meets the target.
func (rep *report) writePlot(path string) error {
	var rows []*row
	for _, r := range rep.Rows {
		if r.Target != 0 && !r.Abs && r.Ratio.Median > 0 {
			rows = append(rows, r)
		}
	}
	const (
		left, right = 430.0, 45.0
		top, rowH   = 70.0, 26.0
		width       = 1000.0
		lo, hi      = 0.25, 4.0 // the axis, in advantage
	)
	plotW := width - left - right
	height := top + rowH*float64(len(rows)) + 50
	x := func(adv float64) float64 {
		adv = min(max(adv, lo), hi)
		return left + plotW*(math.Log2(adv)-math.Log2(lo))/(math.Log2(hi)-math.Log2(lo))
	}
	adv := func(r *row, v float64) float64 {
		if r.dir == lower {
			return 1 / v
		}
		return v
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="13">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="16" font-weight="bold">p2pnet's advantage over go-libp2p v0.51.0 (and bare transports)</text>`+"\n", 10.0)
	fmt.Fprintf(&b, `<text x="%.0f" y="44" fill="#555">%s · %s · right of 1× is better; tick = target</text>`+"\n", 10.0, xmlEscape(rep.Date), xmlEscape(rep.Machine))
	for _, t := range []float64{0.25, 0.5, 1, 2, 4} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s"/>`+"\n", x(t), top-8, x(t), height-40, map[bool]string{true: "#000", false: "#ddd"}[t == 1])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%g×</text>`+"\n", x(t), height-24, t)
	}
	for i, r := range rows {
		y := top + rowH*float64(i)
		a := adv(r, r.Ratio.Median)
		color := "#c0392b"
		if r.Pass != nil && *r.Pass {
			color = "#27ae60"
		}
		x0, x1 := x(1), x(a)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%s</text>`+"\n", left-8, y+rowH/2+4, xmlEscape(r.Name+" vs "+r.Ref))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.85"/>`+"\n", min(x0, x1), y+5, math.Abs(x1-x0), rowH-10, color)
		// The spread of the per-round ratios.
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x(adv(r, r.Ratio.Min)), y+rowH/2, x(adv(r, r.Ratio.Max)), y+rowH/2)
		tx := x(adv(r, r.Target))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-width="3"/>`+"\n", tx, y+2, tx, y+rowH-2)
		lx := min(max(x0, x1, x(adv(r, r.Ratio.Min)), x(adv(r, r.Ratio.Max)), tx), width-right-5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="11" fill="#333">%.2f×</text>`+"\n", lx+5, y+rowH/2+4, a)
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
