package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// listenLines runs `p2pnet listen args...` until the test ends and returns
// the lines it prints on stdout, as they come.
func listenLines(t *testing.T, args ...string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	old := signalContext
	called := make(chan struct{})
	var once sync.Once
	// Commands run later in the test (ping) get this context too.
	signalContext = func() (context.Context, context.CancelFunc) {
		once.Do(func() { close(called) })
		return context.WithCancel(ctx)
	}
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(append([]string{"listen"}, args...), pw, &stderr)
		pw.Close()
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-called: // the listener took its context: another may start
	case code := <-done:
		cancel()
		t.Fatalf("listen %q exited %d: %s", args, code, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("listen %q exited %d; stderr: %s", args, code, stderr.String())
		}
		for range lines {
		}
		signalContext = old
	})
	return lines
}

// nextLine returns the next line that contains want, failing the test
// after a bound.
func nextLine(t *testing.T, lines <-chan string, want string) string {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("listen ended without printing a line with %q", want)
			}
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout.C:
			t.Fatalf("no line with %q within 20 s", want)
		}
	}
}

// TestListenRelay: one `p2pnet listen --relay-service`, one `p2pnet listen
// --relay RELAY` that prints its /p2p-circuit address once the
// reservation holds, and `p2pnet ping` of that address, which goes
// through the relay over a limited connection.
func TestListenRelay(t *testing.T) {
	relay := nextLine(t, listenLines(t, "--relay-service", "--listen", "/ip4/127.0.0.1/tcp/0"), "/p2p/")
	lines := listenLines(t, "--listen", "/ip4/127.0.0.1/tcp/0", "--relay", relay)
	circuit := nextLine(t, lines, "/p2p-circuit/p2p/")
	if !strings.HasPrefix(circuit, relay+"/p2p-circuit/p2p/12D3KooW") {
		t.Fatalf("circuit address %q; want %s/p2p-circuit/p2p/ID", circuit, relay)
	}
	code, out, errs := runCmd(t, "ping", "-c", "2", "-i", "0.05", circuit)
	if code != 0 || !strings.Contains(out, "2 transmitted, 2 received") {
		t.Fatalf("ping through the relay: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs = runCmd(t, "perf", "--upload", "1KiB", "--download", "0", circuit)
	if code != 1 || !strings.Contains(errs, "limited") {
		t.Errorf("perf without --allow-limited: exit %d, %q; want it refused as limited", code, errs)
	}
	// Within the relay's 128 KiB, perf runs when allowed to.
	code, out, errs = runCmd(t, "perf", "--allow-limited", "--upload", "16KiB", "--download", "16KiB", circuit)
	if code != 0 {
		t.Errorf("perf --allow-limited through the relay: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCmd(t, "listen", "--relay", "/ip4/127.0.0.1/tcp/1"); code != 2 || !strings.Contains(errs, "--relay") {
		t.Errorf("--relay without /p2p/: exit %d, %q; want a usage error", code, errs)
	}
}
