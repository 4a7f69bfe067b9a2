package main

import (
	"fmt"
	"io"
	"os"

	"github.com/p2pnet/p2pnet/rcmgr"
)

// loadLimitsFile reads a JSON limit file on top of the machine's
// defaults.
func loadLimitsFile(path string) (rcmgr.Limits, error) {
	f, err := os.Open(path)
	if err != nil {
		return rcmgr.Limits{}, fmt.Errorf("reading limits: %w", err)
	}
	defer f.Close()
	l, err := rcmgr.LoadLimits(f)
	if err != nil {
		return rcmgr.Limits{}, fmt.Errorf("limits file %s: %w", path, err)
	}
	return l, nil
}

func runLimits(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("limits", stderr)
	file := fl.String("limits", "", "show the limits of this JSON `FILE` applied to the defaults")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		fmt.Fprintf(stderr, "p2pnet limits: unexpected argument %q\n", fl.Arg(0))
		return errUsage
	}
	limits := rcmgr.DefaultLimits()
	if *file != "" {
		var err error
		if limits, err = loadLimitsFile(*file); err != nil {
			return err
		}
	}
	return limits.WriteJSON(stdout)
}
