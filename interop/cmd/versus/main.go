// Command versus measures p2pnet side by side with go-libp2p v0.51.0 on
// this machine: the same scenarios built with each stack (package
// internal/stacks), repetitions interleaved (A B, B A, …) so that the
// load of a shared machine falls on both alike, and per measure the
// median and spread of each side, their ratio and the target from
// DESIGN.md's performance table with a pass or fail mark.
//
//	go run ./cmd/versus            # the full run, under 10 minutes
//	go run ./cmd/versus --quick    # a smaller run, under 2 minutes
//	go run ./cmd/versus --json out.json --plot ratios.svg
//	go run ./cmd/versus --only 'throughput|floor'
//
// It exits 0 whatever the ratios (CI runs --quick as a smoke test) and 1
// when a scenario fails to run.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"time"
)

// config is what the flags set.
type config struct {
	quick  bool
	rounds int
	only   *regexp.Regexp
	json   string
	plot   string
}

func main() {
	var cfg config
	var only string
	flag.BoolVar(&cfg.quick, "quick", false, "a smaller run (fewer rounds, smaller transfers), under 2 minutes")
	flag.IntVar(&cfg.rounds, "rounds", 0, "interleaved rounds per measure (default 3 with --quick, 7 otherwise)")
	flag.StringVar(&only, "only", "", "run only the scenarios whose name matches this regular expression")
	flag.StringVar(&cfg.json, "json", "", "also write the results as JSON to this file")
	flag.StringVar(&cfg.plot, "plot", "", "also draw the ratios against their targets as an SVG chart in this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: versus [--quick] [--rounds N] [--only REGEXP] [--json FILE] [--plot FILE.svg]\n\n"+
			"Measures p2pnet and go-libp2p side by side and prints a table of ratios against DESIGN.md's targets.\n"+
			"Example: go run ./cmd/versus --quick\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if cfg.rounds <= 0 {
		cfg.rounds = 7
		if cfg.quick {
			cfg.rounds = 3
		}
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "versus: --only:", err)
			os.Exit(2)
		}
		cfg.only = re
	}
	start := time.Now()
	rep := &report{
		Machine: machine(),
		Date:    start.UTC().Format("2006-01-02 15:04 UTC"),
		Command: commandLine(),
		Rounds:  cfg.rounds,
		Quick:   cfg.quick,
	}
	failed := false
	for _, sc := range scenarios {
		if cfg.only != nil && !cfg.only.MatchString(sc.name) {
			continue
		}
		t0 := time.Now()
		fmt.Fprintf(os.Stderr, "versus: %s ...", sc.name)
		rows, err := sc.run(&cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, " failed: %v\n", err)
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", sc.name, err))
			failed = true
			continue
		}
		fmt.Fprintf(os.Stderr, " %.1fs\n", time.Since(t0).Seconds())
		rep.Rows = append(rep.Rows, rows...)
		runtime.GC()
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.finish()
	rep.writeTable(os.Stdout)
	if cfg.json != "" {
		if err := rep.writeJSON(cfg.json); err != nil {
			fmt.Fprintln(os.Stderr, "versus:", err)
			failed = true
		}
	}
	if cfg.plot != "" {
		if err := rep.writePlot(cfg.plot); err != nil {
			fmt.Fprintln(os.Stderr, "versus:", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// commandLine is how this run was started, for the report.
func commandLine() string {
	s := "go run ./cmd/versus"
	for _, a := range os.Args[1:] {
		s += " " + a
	}
	return s
}

// machine describes this machine: CPU model, cores, Go version.
func machine() string {
	model := runtime.GOARCH
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(b); m != nil {
			model = string(m[1])
		}
	}
	return fmt.Sprintf("%s, %d cores, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
