package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet/internal/netns"
)

// onWrite is a writer that keeps what is written and calls f after each
// write with all of it so far.
type onWrite struct {
	mu  sync.Mutex
	buf strings.Builder
	f   func(string)
}

func (w *onWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.f(w.buf.String())
	return len(p), nil
}

// TestListenDefaultAddrs: `p2pnet listen` with no flags prints an
// /ip4/…/tcp/… address first and no link-local one. It listens on every
// interface, so it runs in a network namespace whose only interface is
// loopback.
func TestListenDefaultAddrs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	defer func() { signalContext = old }()

	var stdout lockedBuffer
	stderr := &onWrite{f: func(s string) {
		if strings.Contains(s, "listening") {
			cancel() // the addresses are out: stop
		}
	}}
	code := -1
	netns.Run(t, func() { code = run([]string{"listen"}, &stdout, stderr) })
	if code != 0 {
		t.Fatalf("listen exited %d: %s", code, stderr.buf.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if !strings.HasPrefix(lines[0], "/ip4/127.0.0.1/tcp/") {
		t.Errorf("first address %q; want /ip4/127.0.0.1/tcp/…", lines[0])
	}
	for _, l := range lines {
		if strings.Contains(l, "/fe80:") || strings.Contains(l, "/0.0.0.0/") || strings.Contains(l, "/ip6/::/") {
			t.Errorf("listen printed %q", l)
		}
		if !strings.Contains(l, "/p2p/12D3KooW") {
			t.Errorf("address without /p2p/: %q", l)
		}
	}
	if len(lines) != 4 {
		t.Errorf("printed %d addresses; want TCP and QUIC over IPv4 and IPv6:\n%s", len(lines), stdout.String())
	}
}
