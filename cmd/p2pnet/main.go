// Command p2pnet runs a libp2p node and its tools.
//
//	p2pnet demo [--size SIZE]
//	p2pnet listen [--listen MADDR]... [--key FILE] [--limits FILE] [--no-perf]
//	p2pnet limits [--limits FILE]
//	p2pnet ping [-c N] [-i DURATION] [--json] MADDR/p2p/ID
//	p2pnet perf [--upload SIZE] [--download SIZE] [--json] MADDR/p2p/ID
//	p2pnet id [--key FILE] [--type TYPE] [--json]
//
// Every failure prints one line saying what failed and why, and exits
// with a non-zero status.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand of p2pnet.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "run two hosts on loopback: connect, identify, ping, transfer, report", runDemo},
		{"listen", "run a node that serves ping, identify and perf (unless --no-perf) until interrupted", runListen},
		{"ping", "measure round trips to a peer", runPing},
		{"perf", "measure throughput to a peer", runPerf},
		{"limits", "print the resource limits in effect on this machine, as JSON", runLimits},
		{"id", "print this node's peer ID, creating its key if needed", runID},
	}
}

// errUsage marks errors whose message is a usage problem already
// printed by the flag package.
var errUsage = errors.New("usage")

// run executes the command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "p2pnet %s: %s\n", c.name, oneLine(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "p2pnet: unknown command %q (run 'p2pnet help')\n", args[0])
	return 2
}

// oneLine joins a multi-line error message (such as a dial error that
// lists every address) into one line.
func oneLine(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: p2pnet COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'p2pnet COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("p2pnet "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, turning the flag package's errors into
// errUsage (it has already printed them).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
