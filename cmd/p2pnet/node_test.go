package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writes and reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startListener runs `p2pnet listen` on loopback until the test ends and
// returns the first address it prints.
func startListener(t *testing.T, listen ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		args := []string{"listen"}
		for _, l := range listen {
			args = append(args, "--listen", l)
		}
		done <- run(args, pw, &stderr)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("listen printed no address; stderr: %s", stderr.String())
	}
	addr := sc.Text()
	drained := make(chan struct{})
	go func() {
		io.Copy(io.Discard, pr)
		close(drained)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("listen exited %d; stderr: %s", code, stderr.String())
		}
		<-drained
		signalContext = old
		if !strings.Contains(stderr.String(), "connected") {
			t.Errorf("listen logged no connection: %s", stderr.String())
		}
	})
	return addr
}

func TestListenPingPerf(t *testing.T) {
	addr := startListener(t, "/ip4/127.0.0.1/tcp/0")
	if !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") || !strings.Contains(addr, "/p2p/12D3KooW") {
		t.Fatalf("listen printed %q; want a loopback address with /p2p/", addr)
	}

	// Flags after the address too.
	code, out, errs := runCmd(t, "ping", "-c", "3", addr, "-i", "10ms")
	if code != 0 {
		t.Fatalf("ping exit %d: %s", code, errs)
	}
	for _, want := range []string{"PING 12D3KooW", "seq=1 time=", "(new stream: ", "seq=3 time=", "3 transmitted, 3 received, 0% loss, time ", "rtt min/avg/max/mdev = "} {
		if !strings.Contains(out, want) {
			t.Errorf("ping output lacks %q:\n%s", want, out)
		}
	}

	code, out, errs = runCmd(t, "ping", "-c", "2", "-i", "10ms", "--json", addr)
	if code != 0 {
		t.Fatalf("ping --json exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("ping --json printed %d lines; want 2 pings and a summary:\n%s", len(lines), out)
	}
	for i, typ := range []string{"reply", "reply", "summary"} {
		var line struct{ Type, Peer, Addr string }
		if err := json.Unmarshal([]byte(lines[i]), &line); err != nil || line.Type != typ || !strings.HasSuffix(addr, "/p2p/"+line.Peer) || !strings.HasPrefix(addr, line.Addr+"/p2p/") {
			t.Errorf("line %d %q: %+v, %v; want type %q, the peer ID and address", i, lines[i], line, err, typ)
		}
	}
	var sum struct {
		Transmitted, Received int
		AvgMs                 float64 `json:"avg_ms"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || sum.Transmitted != 2 || sum.Received != 2 || sum.AvgMs <= 0 {
		t.Errorf("summary %q: %+v, %v", lines[2], sum, err)
	}

	code, out, errs = runCmd(t, "perf", "--upload", "1MiB", "--download", "3MiB", addr)
	if code != 0 {
		t.Fatalf("perf exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "upload      1.00 MiB in ") || !strings.Contains(out, "download    3.00 MiB in ") {
		t.Errorf("perf output:\n%s", out)
	}
	// The same node by name.
	byName := strings.Replace(addr, "/ip4/127.0.0.1/", "/dns4/localhost/", 1)
	code, out, errs = runCmd(t, "ping", "-c", "1", byName)
	if code != 0 || !strings.Contains(out, "1 transmitted, 1 received") {
		t.Errorf("ping %s: exit %d, %s%s", byName, code, out, errs)
	}
	code, out, errs = runCmd(t, "perf", "--upload", "0", "--download", "100KiB", "--json", byName)
	if code != 0 {
		t.Fatalf("perf --json exit %d: %s", code, errs)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var res struct {
		Type                 string
		Uploaded, Downloaded uint64
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.Type != "result" || res.Uploaded != 0 || res.Downloaded != 100<<10 {
		t.Errorf("perf --json result %q: %+v, %v", lines[len(lines)-1], res, err)
	}
}

// TestPingPerfQUIC: ping and perf over QUIC, by IP and by name.
func TestPingPerfQUIC(t *testing.T) {
	addr := startListener(t, "/ip4/127.0.0.1/udp/0/quic-v1")
	if !strings.Contains(addr, "/quic-v1/p2p/") {
		t.Fatalf("listen printed %q; want a QUIC address", addr)
	}
	byName := strings.Replace(addr, "/ip4/127.0.0.1/", "/dns4/localhost/", 1)
	for _, a := range []string{addr, byName} {
		code, out, errs := runCmd(t, "ping", "-c", "2", "-i", "10ms", a)
		if code != 0 || !strings.Contains(out, "2 transmitted, 2 received") {
			t.Errorf("ping %s: exit %d, %s%s", a, code, out, errs)
		}
		code, out, errs = runCmd(t, "perf", "--upload", "1MiB", "--download", "1MiB", a)
		if code != 0 || !strings.Contains(out, "download    1.00 MiB in ") {
			t.Errorf("perf %s: exit %d, %s%s", a, code, out, errs)
		}
	}
}

func TestPingFailures(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ping", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"}, "p2pnet ping: connecting to 12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA at /ip4/127.0.0.1/tcp/1: "},
		{[]string{"ping", "/ip4/127.0.0.1/tcp/1"}, "must end in /p2p/"},
		{[]string{"perf", "--upload", "lots", "/ip4/127.0.0.1/tcp/1"}, `size "lots"`},
		{[]string{"perf", "nonsense"}, `address "nonsense"`},
	}
	for _, tt := range tests {
		code, _, errs := runCmd(t, tt.args...)
		if code == 0 || !strings.Contains(errs, tt.want) {
			t.Errorf("p2pnet %q: exit %d, stderr %q; want failure with %q", tt.args, code, errs, tt.want)
		}
		// A failure is one line; a usage error (exit 2) may add the usage.
		if code == 1 && strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("p2pnet %q printed several lines: %q", tt.args, errs)
		}
	}
}

func TestDemo(t *testing.T) {
	code, out, errs := runCmd(t, "demo", "--size", "4MiB")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"server  12D3KooW", "listens on /ip4/127.0.0.1/tcp/",
		"security /noise, muxer /yamux/1.0.0 (negotiated inside the handshake: true)",
		"server says it is p2pnet-demo/server", "/ipfs/ping/1.0.0", "/perf/1.0.0",
		"ping        stream set up with its first round trip in ", "; then 5 round trips: ", "sent 4.00 MiB", "received 4.00 MiB", "connectedness now NotConnected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
