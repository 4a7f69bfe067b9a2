// Package labcmd is the scaffolding that the namespace lab's helper
// programs share: internal/netlab/cmd/labnode, autonatnode and
// portmapnode in the main module, and interop/cmd/golabnode, a go-libp2p
// node, in the interop module. It holds what they do alike and what the
// lab's tests rely on being alike: the mode argument and its flag set,
// repeatable string flags, the JSON lines they report in, --public-cidr
// parsing, running until SIGINT or SIGTERM, connecting to a list of
// peers, and the exit on error.
//
// It imports only the standard library, so that the interop module can
// import it too (Go's internal rule is by path prefix, and interop/go.mod
// replaces the main module with ../), and neither module's build list
// grows by it.
package labcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Strings is a flag.Value for a repeatable string flag: each use appends
// its value.
type Strings []string

// String returns the values joined by commas.
func (s *Strings) String() string { return strings.Join(*s, ",") }

// Set appends v.
func (s *Strings) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// Flags are the flags every program has, spelt and explained alike:
// --listen and --public-cidr, both repeatable.
type Flags struct {
	Listen     Strings // --listen: listen addresses
	PublicCIDR Strings // --public-cidr: ranges to count as public
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.Var(&f.Listen, "listen", "listen address (repeatable)")
	fs.Var(&f.PublicCIDR, "public-cidr", "range to count as public (repeatable)")
}

// Emitter writes JSON lines, one object a line, and is safe for
// concurrent use: a line is one Write, never interleaved with another,
// and it is flushed before Emit returns when the writer has a Flush
// method (a bufio.Writer, say), so that a reader waiting for it sees it.
type Emitter struct {
	mu  sync.Mutex // guards enc and w
	enc *json.Encoder
	w   io.Writer
}

// NewEmitter returns an Emitter that writes to w with json.Encoder's
// defaults: keys sorted, HTML characters escaped, a newline after each
// object.
func NewEmitter(w io.Writer) *Emitter {
	return &Emitter{enc: json.NewEncoder(w), w: w}
}

// Emit writes v as one line.
func (e *Emitter) Emit(v map[string]any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	if f, ok := e.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// stdout is the programs' report channel.
var stdout = NewEmitter(os.Stdout)

// Emit writes v as one JSON line on standard output. An error is dropped:
// it means the test reading the output has gone, and with it anyone to
// tell.
func Emit(v map[string]any) { stdout.Emit(v) }

// ErrBadCIDR is wrapped by the error of a --public-cidr value that is no
// CIDR prefix.
var ErrBadCIDR = errors.New("labcmd: bad CIDR")

// Prefixes parses cidrs ("198.51.100.0/24", "2001:db8::/32") into
// prefixes with their host bits cleared. It returns nil for none.
func Prefixes(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrBadCIDR, c, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// SignalContext returns a context that ends at SIGINT or SIGTERM (the
// lab stops its programs with SIGTERM), and the function that releases
// the signals again.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

// ConnectTimeout bounds each connection ConnectAll makes.
const ConnectTimeout = 10 * time.Second

// ConnectAll calls connect with each of addrs in turn, each under a
// context of its own that ends after ConnectTimeout or with ctx, and
// stops at the first error, which it returns wrapped with the address.
func ConnectAll(ctx context.Context, addrs []string, connect func(ctx context.Context, addr string) error) error {
	for _, a := range addrs {
		cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
		err := connect(cctx, a)
		cancel()
		if err != nil {
			return fmt.Errorf("connecting to %s: %w", a, err)
		}
	}
	return nil
}

// Strs returns the String of each of vs: multiaddrs, peer IDs.
func Strs[T fmt.Stringer](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// ErrNoMode is returned by ParseMode for a command line without a mode.
var ErrNoMode = errors.New("labcmd: no mode")

// ParseMode returns the mode that args (the arguments after the
// program's name) begin with, and a flag set named after it, for the
// caller to define its flags on and parse args[1:] with; the flag set
// exits on an error, as a program's own flags do.
func ParseMode(args []string) (string, *flag.FlagSet, error) {
	if len(args) < 1 {
		return "", nil, ErrNoMode
	}
	return args[0], flag.NewFlagSet(args[0], flag.ExitOnError), nil
}

// Mode is ParseMode on the program's arguments that, when there is no
// mode, prints "usage: " and usage, and exits with status 2.
func Mode(usage string) (string, *flag.FlagSet) {
	mode, fs, err := ParseMode(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage:", usage)
		os.Exit(2)
	}
	return mode, fs
}

// Exit returns when err is nil; otherwise it prints "prog: err" on
// standard error and exits with status 1.
func Exit(prog string, err error) {
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(1)
}
