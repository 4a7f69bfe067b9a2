package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// runListener runs `p2pnet listen` with args and returns the first
// address it prints, and a function that stops it and returns what it
// wrote to stderr.
func runListener(t *testing.T, args ...string) (string, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(append([]string{"listen"}, args...), pw, &stderr)
		pw.Close()
	}()
	drained := make(chan struct{})
	sc := bufio.NewScanner(pr)
	ok := sc.Scan()
	go func() {
		io.Copy(io.Discard, pr)
		close(drained)
	}()
	stop := func() string {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("listen exited %d; stderr: %s", code, stderr.String())
		}
		<-drained
		signalContext = old
		return stderr.String()
	}
	if !ok {
		t.Fatalf("listen printed no address; stderr: %s", stop())
	}
	return sc.Text(), stop
}

// TestListenLimitLoopback: with --limit-loopback, `p2pnet listen` limits
// the connections from a loopback address as from any other (8 per IPv4
// address by default): of nine peers from 127.0.0.2 the ninth is
// refused, and the refusal is summed up on stderr (at the end, here,
// rather than 10 s after). Without the flag all nine connect.
func TestListenLimitLoopback(t *testing.T) {
	for _, limit := range []bool{false, true} {
		args := []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--no-perf"}
		if limit {
			args = append(args, "--limit-loopback")
		}
		addr, stop := runListener(t, args...)
		ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(addr))
		if err != nil {
			stop()
			t.Fatal(err)
		}
		connected := 0
		for range 9 {
			h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.2/tcp/0"))
			if err != nil {
				stop()
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := h.Connect(ctx, *ai); err == nil {
				connected++
			} else {
				t.Logf("--limit-loopback=%v: a peer from 127.0.0.2 was refused: %v", limit, err)
			}
			cancel()
			defer h.Close()
		}
		stderr := stop()
		summary := `msg="resource manager refused requests" interval=10s refusals=1 sources=1 limits="ConnLimitsPerIP (ip, ConnsInbound): 1 from 1 source"`
		switch {
		case limit && connected != 8:
			t.Errorf("with --limit-loopback %d of 9 peers from 127.0.0.2 connected; want 8", connected)
		case limit && !strings.Contains(stderr, summary):
			t.Errorf("with --limit-loopback the refusal was not summed up on stderr:\n%s\nwant a line with\n%s", stderr, summary)
		case !limit && connected != 9:
			t.Errorf("without --limit-loopback %d of 9 peers from 127.0.0.2 connected; want 9", connected)
		case !limit && strings.Contains(stderr, "refused requests"):
			t.Errorf("without --limit-loopback listen logged refusals:\n%s", stderr)
		}
	}
}
