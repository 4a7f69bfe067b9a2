package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// connectionLine returns the "connection" JSON line of ping's output.
func connectionLine(t *testing.T, out string) pingConnectionLine {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		var c pingConnectionLine
		if json.Unmarshal([]byte(l), &c) == nil && c.Type == "connection" {
			return c
		}
	}
	t.Fatalf("no connection line in\n%s", out)
	return pingConnectionLine{}
}

// TestPingHolePunch: `p2pnet ping` of a /p2p-circuit address says which
// connection its pings use. Without --listen it cannot punch and stays on
// the relay; with --listen and --public-cidr 127.0.0.0/8 (loopback counts
// as public then), both sides take part in DCUtR on loopback and the
// pings go over the direct connection.
func TestPingHolePunch(t *testing.T) {
	for _, tr := range []struct{ name, listen string }{
		{"tcp", "/ip4/127.0.0.1/tcp/0"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		t.Run(tr.name, func(t *testing.T) {
			relay := nextLine(t, listenLines(t, "--relay-service", "--listen", tr.listen), "/p2p/")
			lines := listenLines(t, "--listen", tr.listen, "--relay", relay, "--public-cidr", "127.0.0.0/8")
			circuit := nextLine(t, lines, "/p2p-circuit/p2p/")

			code, out, errs := runCmd(t, "ping", "--json", "-c", "1", circuit)
			if code != 0 {
				t.Fatalf("ping without --listen: exit %d\n%s%s", code, out, errs)
			}
			if c := connectionLine(t, out); c.Direct || !strings.Contains(c.Addr, "/p2p-circuit") || !strings.Contains(c.Reason, "--listen") {
				t.Errorf("ping without --listen: %+v; want the relayed connection, for want of --listen", c)
			}

			code, out, errs = runCmd(t, "ping", "-c", "2", "-i", "0.05", "--listen", tr.listen, "--public-cidr", "127.0.0.0/8", circuit)
			if code != 0 || !strings.Contains(out, "direct connection: /ip4/127.0.0.1/") || !strings.Contains(out, "2 received") {
				t.Fatalf("ping --listen: exit %d; want a direct connection\n%s%s", code, out, errs)
			}
			code, out, errs = runCmd(t, "ping", "--json", "-c", "1", "--listen", tr.listen, "--public-cidr", "127.0.0.0/8", circuit)
			if code != 0 {
				t.Fatalf("ping --json --listen: exit %d\n%s%s", code, out, errs)
			}
			want := map[string]string{"tcp": "tcp", "quic": "quic-v1"}[tr.name]
			if c := connectionLine(t, out); !c.Direct || c.Transport != want || strings.Contains(c.Addr, "/p2p-circuit") {
				t.Errorf("ping --json --listen: %+v; want a direct %s connection", c, want)
			}
		})
	}
}

// TestPublicCIDRFlag: --public-cidr takes address ranges only.
func TestPublicCIDRFlag(t *testing.T) {
	for _, cmd := range [][]string{
		{"ping", "--public-cidr", "198.51.100.0", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDETedi2xoHW1YsX2bCQrweEywzRAnkmw7SZGy6paRzSm"},
		{"listen", "--public-cidr", "not-a-range"},
	} {
		if code, _, errs := runCmd(t, cmd...); code != 2 || !strings.Contains(errs, "public-cidr") {
			t.Errorf("%q: exit %d, %q; want a usage error naming --public-cidr", cmd, code, errs)
		}
	}
	if code, _, errs := runCmd(t, "ping", "--listen", "/ip4/nonsense", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDETedi2xoHW1YsX2bCQrweEywzRAnkmw7SZGy6paRzSm"); code != 2 || !strings.Contains(errs, "--listen") {
		t.Errorf("ping --listen /ip4/nonsense: exit %d, %q; want a usage error naming --listen", code, errs)
	}
}
