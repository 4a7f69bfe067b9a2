package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunSmall runs the measurement on the smallest networks, so the
// program stays working.
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out, 4, 10, time.Millisecond, 6, 3); err != nil {
		t.Fatal(err)
	}
	for _, measure := range []string{"latency p50", "GetValue p50"} {
		for _, network := range []string{"p2pnet ", "go-libp2p ", "mixed "} {
			found := false
			for line := range strings.Lines(out.String()) {
				found = found || strings.Contains(line, network) && strings.Contains(line, measure)
			}
			if !found {
				t.Errorf("no %q line for %q in:\n%s", measure, network, out.String())
			}
		}
	}
}
