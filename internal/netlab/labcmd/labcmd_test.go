package labcmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFlags: a program's flags as the lab passes them, repeated and
// mixed with others, parse into their lists in order, and the arguments
// after the flags stay for the mode.
func TestFlags(t *testing.T) {
	args := []string{"listen", "--listen", "/ip4/10.0.0.1/udp/0/quic-v1", "--public-cidr", "198.51.100.0/24",
		"--listen", "/ip4/10.0.0.1/tcp/0", "--wait", "5s", "-public-cidr=2001:db8::/32", "/ip4/1.2.3.4/tcp/1"}
	mode, fs, err := ParseMode(args)
	if err != nil || mode != "listen" || fs.Name() != "listen" {
		t.Fatalf("ParseMode = %q, %v, %v", mode, fs, err)
	}
	var f Flags
	f.Register(fs)
	var relays Strings
	fs.Var(&relays, "relay", "")
	wait := fs.Duration("wait", time.Second, "")
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/ip4/10.0.0.1/udp/0/quic-v1", "/ip4/10.0.0.1/tcp/0"}; !slices.Equal(f.Listen, want) {
		t.Errorf("listen = %q, want %q", f.Listen, want)
	}
	if want := []string{"198.51.100.0/24", "2001:db8::/32"}; !slices.Equal(f.PublicCIDR, want) {
		t.Errorf("public-cidr = %q, want %q", f.PublicCIDR, want)
	}
	if relays != nil {
		t.Errorf("relay unused but %q", relays)
	}
	if *wait != 5*time.Second {
		t.Errorf("wait = %v", *wait)
	}
	if !slices.Equal(fs.Args(), []string{"/ip4/1.2.3.4/tcp/1"}) {
		t.Errorf("args = %q", fs.Args())
	}
	if got := f.PublicCIDR.String(); got != "198.51.100.0/24,2001:db8::/32" {
		t.Errorf("String = %q", got)
	}
}

// TestParseModeNone: a command line without a mode is ErrNoMode.
func TestParseModeNone(t *testing.T) {
	for _, args := range [][]string{nil, {}} {
		if _, _, err := ParseMode(args); !errors.Is(err, ErrNoMode) {
			t.Errorf("ParseMode(%q) = %v", args, err)
		}
	}
}

// TestPrefixes: CIDRs parse to masked prefixes, none to nil, and a bad
// one to an error that errors.Is sees as ErrBadCIDR and that names it.
func TestPrefixes(t *testing.T) {
	got, err := Prefixes([]string{"198.51.100.7/24", "2001:db8::1/32", "203.0.113.9/32"})
	want := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("203.0.113.9/32")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Prefixes = %v, %v; want %v", got, err, want)
	}
	if got, err := Prefixes(nil); got != nil || err != nil {
		t.Errorf("Prefixes(nil) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "198.51.100.0", "198.51.100.0/33", "fe80::/129", "public", "10.0.0.0/8/8", "2001:db8::%eth0/64"} {
		got, err := Prefixes([]string{"10.0.0.0/8", bad})
		if !errors.Is(err, ErrBadCIDR) || got != nil {
			t.Errorf("Prefixes(%q) = %v, %v; want ErrBadCIDR", bad, got, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("error %q does not name %q", err, bad)
		}
	}
}

func FuzzPrefixes(f *testing.F) {
	for _, s := range []string{"198.51.100.0/24", "2001:db8::1/32", "10.0.0.1", "::ffff:1.2.3.4/120", "/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := Prefixes([]string{s})
		if err != nil {
			if !errors.Is(err, ErrBadCIDR) || ps != nil {
				t.Fatalf("Prefixes(%q) = %v, %v", s, ps, err)
			}
			return
		}
		if len(ps) != 1 || !ps[0].IsValid() || ps[0] != ps[0].Masked() {
			t.Fatalf("Prefixes(%q) = %v", s, ps)
		}
	})
}

// TestEmitFormat: a line is what json.Encoder writes, keys sorted and
// HTML characters escaped, as the lab's tests and the programs before
// this package have it.
func TestEmitFormat(t *testing.T) {
	var b bytes.Buffer
	e := NewEmitter(&b)
	if err := e.Emit(map[string]any{"type": "direct", "addr": "/ip4/198.51.100.2/udp/4001/quic-v1", "rtt_ms": 1.25,
		"addrs": []string{}, "limited": false, "note": "<&>"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Emit(map[string]any{"type": "nodirect"}); err != nil {
		t.Fatal(err)
	}
	want := `{"addr":"/ip4/198.51.100.2/udp/4001/quic-v1","addrs":[],"limited":false,"note":"\u003c\u0026\u003e","rtt_ms":1.25,"type":"direct"}` +
		"\n" + `{"type":"nodirect"}` + "\n"
	if b.String() != want {
		t.Errorf("output\n%s\nwant\n%s", b.String(), want)
	}
}

// lineWriter records each Write and fails the test when two overlap.
type lineWriter struct {
	t      *testing.T
	in     atomic.Bool
	mu     sync.Mutex // guards writes
	writes []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if !w.in.CompareAndSwap(false, true) {
		w.t.Error("concurrent Write")
	}
	defer w.in.Store(false)
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return len(p), nil
}

// TestEmitConcurrent: lines emitted from many goroutines at once each
// arrive whole, in one Write of their own, none lost.
func TestEmitConcurrent(t *testing.T) {
	const goroutines, lines = 16, 200
	w := &lineWriter{t: t}
	e := NewEmitter(w)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range lines {
				if err := e.Emit(map[string]any{"type": "holepunch", "g": g, "i": i, "pad": strings.Repeat("x", i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(w.writes) != goroutines*lines {
		t.Fatalf("%d writes, want %d", len(w.writes), goroutines*lines)
	}
	next := make([]int, goroutines)
	for _, l := range w.writes {
		var v struct{ G, I int }
		if !strings.HasSuffix(l, "}\n") || strings.Count(l, "\n") != 1 {
			t.Fatalf("write %q is not one line", l)
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if v.I != next[v.G] {
			t.Fatalf("goroutine %d: line %d, want %d", v.G, v.I, next[v.G])
		}
		next[v.G]++
	}
}

// TestEmitFlushes: on a buffered writer each line is flushed before Emit
// returns, so a reader of the underlying writer sees it at once.
func TestEmitFlushes(t *testing.T) {
	var b bytes.Buffer
	e := NewEmitter(bufio.NewWriterSize(&b, 4096))
	for i := range 3 {
		if err := e.Emit(map[string]any{"type": "state", "i": i}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(b.String(), "\n"); got != i+1 {
			t.Fatalf("after %d lines the writer below has %d: %q", i+1, got, b.String())
		}
	}
}

var errBroken = errors.New("broken pipe")

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errBroken }

// TestEmitError: a writer's error comes back from Emit.
func TestEmitError(t *testing.T) {
	if err := NewEmitter(brokenWriter{}).Emit(map[string]any{"type": "x"}); !errors.Is(err, errBroken) {
		t.Errorf("Emit = %v", err)
	}
	if err := NewEmitter(bufio.NewWriterSize(brokenWriter{}, 16)).Emit(map[string]any{"type": "x"}); !errors.Is(err, errBroken) {
		t.Errorf("Emit through a bufio.Writer = %v", err)
	}
}

// TestConnectAll: addresses are connected in order, each under a
// deadline of ConnectTimeout at most; the first error stops the rest
// and comes back wrapped with its address.
func TestConnectAll(t *testing.T) {
	var got []string
	start := time.Now()
	errRefused := errors.New("refused")
	err := ConnectAll(context.Background(), []string{"a", "b", "c"}, func(ctx context.Context, addr string) error {
		got = append(got, addr)
		d, ok := ctx.Deadline()
		if !ok || d.Sub(start) > ConnectTimeout+time.Second || d.Before(start.Add(ConnectTimeout)) {
			t.Errorf("%s: deadline %v after the start", addr, d.Sub(start))
		}
		if addr == "b" {
			return errRefused
		}
		return nil
	})
	if !errors.Is(err, errRefused) || !strings.Contains(err.Error(), "connecting to b") {
		t.Errorf("ConnectAll = %v", err)
	}
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("connected %q", got)
	}
	if err := ConnectAll(context.Background(), nil, nil); err != nil {
		t.Errorf("ConnectAll(none) = %v", err)
	}
}

// TestConnectAllCanceled: a context that has ended ends each connect's
// context too.
func TestConnectAllCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := ConnectAll(ctx, []string{"a"}, func(ctx context.Context, _ string) error { return ctx.Err() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ConnectAll = %v", err)
	}
}

type addr string

func (a addr) String() string { return "/dns/" + string(a) }

// TestStrs: each value's String, and an empty list (not null) for none,
// as the lab's reports have had it.
func TestStrs(t *testing.T) {
	if got := Strs([]addr{"a", "b"}); !slices.Equal(got, []string{"/dns/a", "/dns/b"}) {
		t.Errorf("Strs = %q", got)
	}
	b, _ := json.Marshal(Strs[addr](nil))
	if string(b) != "[]" {
		t.Errorf("Strs(nil) marshals to %s", b)
	}
}

// TestSignalContext: SIGTERM, as the lab sends to stop a program, ends
// the context instead of the process.
func TestSignalContext(t *testing.T) {
	ctx, stop := SignalContext()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("SIGTERM did not end the context")
	}
}

// TestStandardLibraryOnly: the package imports only the standard
// library, which is what lets the interop module import it without its
// build list changing.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/p2pnet/p2pnet/internal/netlab/labcmd" {
			t.Errorf("imports %s, which is not in the standard library", p)
		}
	}
}

var _ flag.Value = (*Strings)(nil)
