// Command p2pnet runs a libp2p node and its tools.
//
//	p2pnet demo [--size SIZE]
//	p2pnet listen [--listen MADDR]... [--key FILE] [--limits FILE] [--no-perf] [--limit-loopback]
//	              [--relay-service] [--relay MADDR/p2p/ID]... [--public-cidr CIDR]... [--log-level L] [--log-format F]
//	p2pnet limits [--limits FILE]
//	p2pnet ping [-c N] [-i INTERVAL] [-W TIMEOUT] [-w DEADLINE] [-q] [--json]
//	            [--listen MADDR]... [--public-cidr CIDR]... MADDR/p2p/ID
//	p2pnet perf [--upload SIZE] [--download SIZE] [-t DURATION] [-i INTERVAL] [--json] MADDR/p2p/ID
//	p2pnet id [--key FILE] [--type TYPE] [--bits N] [--json]
//	p2pnet version [--json]
//
// Every subcommand has the same shape: flags go before or after the
// positional arguments; -h prints the command's arguments, flags and an
// example on stdout; --json prints one JSON object per line, each with a
// "type" ("reply", "connection", "summary", "progress", "result" or "error") and
// snake_case keys. A failure prints one line on stderr saying what failed
// and why. The exit status is 0 on success, 1 on failure and 2 on a usage
// error (a bad flag or argument), which prints the error and the
// command's usage line on stderr.
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

// command is one subcommand of p2pnet, with what its help prints.
type command struct {
	name    string
	summary string // one line, for 'p2pnet help'
	// args is the synopsis of the positional arguments, empty if none.
	args string
	// about says what the command does, for its -h.
	about string
	// argHelp describes each positional argument: name, then meaning.
	argHelp [][2]string
	// examples are command lines, each with an optional comment after
	// "  # ".
	examples []string
	run      func(args []string, stdout, stderr io.Writer) error
}

const peerAddrHelp = "the peer's address ending in /p2p/ and its peer ID, as 'p2pnet listen' prints it " +
	"(/ip4, /ip6, /dns, /dns4 or /dns6, then /tcp/PORT, /udp/PORT/quic-v1 or /udp/PORT/quic-v1/webtransport/certhash/…)"

func commands() []command {
	return []command{
		{
			name:    "demo",
			summary: "run two hosts on loopback: connect, identify, ping, transfer, report",
			about: "Starts two hosts in this process, connects them over loopback TCP and shows each step: " +
				"the connection and what was negotiated, what identify learned, five pings and a transfer each way.",
			examples: []string{"p2pnet demo --size 64MiB"},
			run:      runDemo,
		},
		{
			name:    "listen",
			summary: "run a node that serves ping, identify and perf (unless --no-perf) until interrupted",
			about: "Runs a node until interrupted (Ctrl-C). It prints each address it can be reached at on stdout, " +
				"one a line, then logs on stderr.",
			examples: []string{
				"p2pnet listen --listen /ip4/127.0.0.1/tcp/4001 --listen /ip4/127.0.0.1/udp/4001/quic-v1",
				"p2pnet listen --listen /ip4/0.0.0.0/udp/4001/quic-v1 --listen /ip4/0.0.0.0/udp/4001/quic-v1/webtransport  # one UDP port; browsers dial the /certhash/ address printed",
				"p2pnet listen --listen /ip4/0.0.0.0/tcp/4002/ws --listen /ip4/0.0.0.0/tcp/4003/tls/ws --tls-cert cert.pem --tls-key key.pem  # browsers dial /ws, or /tls/ws from https pages",
				"p2pnet listen --key node.key  # the same peer ID every time",
			},
			run: runListen,
		},
		{
			name:    "ping",
			summary: "measure round trips to a peer, as ping(8) does",
			args:    "MADDR/p2p/ID",
			about: "Connects to a peer and pings it over one /ipfs/ping/1.0.0 stream, printing each reply as it arrives, " +
				"then a summary when the count is reached, the deadline passes or Ctrl-C is pressed. " +
				"Round trips are measured on a stream already negotiated. " +
				"A reply that does not come within the timeout is counted as lost, the stream is reset, and the next " +
				"ping goes on a new one. Exits 0 if any reply came, 1 if none did. " +
				"A peer's /p2p-circuit address is pinged through its relay; with --listen, ping takes part in hole punching " +
				"from that address, waits up to 10 s for a direct connection, and says which connection the pings use " +
				"(without --listen it has no port to punch from, and the pings stay on the relay).",
			argHelp: [][2]string{{"MADDR/p2p/ID", peerAddrHelp}},
			examples: []string{
				"p2pnet ping -c 3 /ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDETedi2xoHW1YsX2bCQrweEywzRAnkmw7SZGy6paRzSm",
				"p2pnet ping -i 0.2 -W 1 /dns4/node.example.com/udp/4001/quic-v1/p2p/12D3KooW…  # 5 a second, 1 s timeout",
				"p2pnet ping --listen /ip4/0.0.0.0/udp/0/quic-v1 /ip4/198.51.100.1/udp/4001/quic-v1/p2p/12D3KooW…/p2p-circuit/p2p/12D3KooW…  # hole punch",
			},
			run: runPing,
		},
		{
			name:    "perf",
			summary: "measure throughput to a peer, as iperf3 does",
			args:    "MADDR/p2p/ID",
			about: "Connects to a peer and measures throughput with /perf/1.0.0: an upload, then a download, each on " +
				"a stream of its own, either of a given size (--upload, --download) or for a given time (-t). " +
				"It prints a line per interval and a summary per direction; Ctrl-C prints the summary so far and exits 1.",
			argHelp: [][2]string{{"MADDR/p2p/ID", peerAddrHelp}},
			examples: []string{
				"p2pnet perf -t 10s /ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDETedi2xoHW1YsX2bCQrweEywzRAnkmw7SZGy6paRzSm",
				"p2pnet perf --upload 1.5GiB --download 0 /ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooW…",
			},
			run: runPerf,
		},
		{
			name:    "limits",
			summary: "print the resource limits in effect on this machine, as JSON",
			about: "Prints the resource manager's limits as JSON, in the format --limits FILE reads: the defaults " +
				"scaled to this machine's memory and file descriptors, with FILE applied on top if given.",
			examples: []string{"p2pnet limits > limits.json  # edit, then: p2pnet listen --limits limits.json"},
			run:      runLimits,
		},
		{
			name:    "id",
			summary: "print this node's peer ID, creating its key if needed",
			about: "Prints the peer ID of the key in --key FILE, creating the file (mode 0600) with a new key of " +
				"--type if it does not exist. Without --key it prints the ID of a fresh key that is not saved. " +
				"An existing key file decides the key type: --type and --bits that contradict it are errors.",
			examples: []string{
				"p2pnet id --key node.key",
				"p2pnet id --key rsa.key --type rsa --bits 4096",
			},
			run: runID,
		},
		{
			name:     "version",
			summary:  "print the version of p2pnet, its commit and the Go version",
			about:    "Prints the module version, the commit it was built from and the Go version; also 'p2pnet --version'.",
			examples: []string{"p2pnet version --json"},
			run:      runVersion,
		},
	}
}

// findCommand returns the command called name.
func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// errUsage marks a usage error whose message the command has printed
// itself: run exits 2 and prints nothing more.
var errUsage = errors.New("usage")

// errReported marks a failure the command has reported on its own output
// (ping's summary showing 100% loss): run exits 1 and prints nothing more.
var errReported = errors.New("failure reported")

// usageError is a bad command line: run prints it on stderr with the
// command's usage line and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Is makes a usageError match errUsage.
func (e *usageError) Is(target error) bool { return target == errUsage }

// usagef returns a usage error.
func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// helpRequest is what parseFlags returns for -h: run prints the
// command's help on stdout and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (*helpRequest) Error() string { return "help requested" }

// Is makes a helpRequest match flag.ErrHelp.
func (*helpRequest) Is(target error) bool { return target == flag.ErrHelp }

// run executes the command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			// 'p2pnet help ping' is 'p2pnet ping -h'.
			return run([]string{args[1], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	c, ok := findCommand(args[0])
	if !ok {
		fmt.Fprintf(stderr, "p2pnet: unknown command %q (run 'p2pnet help')\n", args[0])
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	var help *helpRequest
	var bad *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		printHelp(stdout, c, help.fs)
		return 0
	case errors.As(err, &bad):
		fmt.Fprintf(stderr, "p2pnet %s: %s\n", c.name, bad.msg)
		fmt.Fprintf(stderr, "usage: %s  (p2pnet %s -h for help)\n", synopsis(c), c.name)
		return 2
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errReported):
		return 1
	default:
		fmt.Fprintf(stderr, "p2pnet %s: %s\n", c.name, errorText(err))
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: p2pnet COMMAND [flags] [arguments]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'p2pnet COMMAND -h' for a command's arguments, flags and examples;")
	fmt.Fprintln(w, "'p2pnet --version' for the version.")
}

// synopsis is the command's usage line.
func synopsis(c command) string {
	s := "p2pnet " + c.name + " [flags]"
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// printHelp prints what -h shows: usage line, description, arguments,
// flags and examples.
func printHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n", synopsis(c))
	fmt.Fprintln(w, wrap(c.about, 78, ""))
	if len(c.argHelp) > 0 {
		fmt.Fprintln(w, "\narguments:")
		for _, a := range c.argHelp {
			fmt.Fprintf(w, "  %s\n%s\n", a[0], wrap(a[1], 78, "        "))
		}
	}
	if c.args != "" {
		fmt.Fprintln(w, "\nflags (before or after the arguments):")
	} else {
		fmt.Fprintln(w, "\nflags:")
	}
	printFlags(w, fs)
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// printFlags lists fs's flags: one-letter flags with one dash, others
// with two, each with its argument, meaning and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		name := "-" + f.Name
		if len(f.Name) > 1 {
			name = "--" + f.Name
		}
		if arg != "" {
			name += " " + arg
		}
		if !hiddenDefault(f.DefValue) && !strings.Contains(text, "(default") {
			text += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "  %s\n%s\n", name, wrap(text, 78, "        "))
	})
}

// hiddenDefault reports whether a flag's default is not worth printing.
func hiddenDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// wrap fills text into lines of at most width columns, each starting
// with indent.
func wrap(text string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line)
			b.WriteByte('\n')
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

// newFlags returns the flag set of a command. It prints nothing itself:
// parseFlags returns what run prints (help on stdout, usage errors on
// stderr). The writer is not used; every command passes its stderr.
func newFlags(name string, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("p2pnet "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args, whose flags may come before, between or after
// the positional arguments (which fs.Args then returns, in order); "--"
// ends the flags. -h gives a *helpRequest, a bad flag a *usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	flags, positional, err := splitArgs(fs, args)
	if err == nil {
		err = fs.Parse(append(append(flags, "--"), positional...))
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		return &helpRequest{fs: fs}
	}
	return &usageError{msg: err.Error()}
}

// splitArgs separates flags (with their values) from positional
// arguments. A flag that is not defined stays among the flags, for
// fs.Parse to report.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(positional, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 == len(args) {
			// What fs.Parse would say, had "--" not followed.
			return nil, nil, fmt.Errorf("flag needs an argument: -%s", name)
		}
		i++
		flags = append(flags, args[i])
	}
	return flags, positional, nil
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// oneArg returns the one positional argument, called name in errors.
func oneArg(fs *flag.FlagSet, name string) (string, error) {
	switch fs.NArg() {
	case 0:
		return "", usagef("missing %s", name)
	case 1:
		return fs.Arg(0), nil
	}
	return "", usagef("unexpected argument %q after %s", fs.Arg(1), name)
}

// noArgs fails with a usage error if positional arguments were given.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
