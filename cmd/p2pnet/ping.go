package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/p2pnet/p2pnet/proto/ping"
)

// pingStats accumulates round-trip times as ping(8) reports them.
type pingStats struct {
	sent, received     int
	min, max, sum, sq2 float64 // milliseconds
}

func (s *pingStats) add(ms float64) {
	if s.received == 0 || ms < s.min {
		s.min = ms
	}
	if ms > s.max {
		s.max = ms
	}
	s.received++
	s.sum += ms
	s.sq2 += ms * ms
}

func (s *pingStats) avg() float64 {
	if s.received == 0 {
		return 0
	}
	return s.sum / float64(s.received)
}

func (s *pingStats) mdev() float64 {
	if s.received == 0 {
		return 0
	}
	a := s.avg()
	return math.Sqrt(math.Max(0, s.sq2/float64(s.received)-a*a))
}

func (s *pingStats) loss() float64 {
	if s.sent == 0 {
		return 0
	}
	return 100 * float64(s.sent-s.received) / float64(s.sent)
}

func runPing(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("ping", stderr)
	count := fl.Int("c", 0, "stop after `N` pings; 0 pings until interrupted")
	interval := fl.Duration("i", time.Second, "wait `DURATION` between pings")
	asJSON := fl.Bool("json", false, "print one JSON object per line")
	target := clientFlags(fl)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: p2pnet ping [-c N] [-i DURATION] [--json] MADDR/p2p/ID")
		return errUsage
	}
	ctx, stop := signalContext()
	defer stop()
	h, info, err := target.connect(ctx, fl.Arg(0))
	if err != nil {
		return err
	}
	defer h.Close()
	if !*asJSON {
		fmt.Fprintf(stdout, "PING %s (%s): 32 data bytes\n", info.ID, info.Addrs[0])
	}
	var st pingStats
	start := time.Now()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	results := ping.Ping(pctx, h, info.ID)
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	var lastErr error
loop:
	for seq := 1; *count == 0 || seq <= *count; seq++ {
		st.sent++
		var r ping.Result
		select {
		case r = <-results:
		case <-ctx.Done():
			st.sent--
			break loop
		}
		if r.Err != nil {
			lastErr = r.Err
			if errors.Is(r.Err, context.Canceled) && ctx.Err() != nil {
				st.sent--
				break
			}
			if *asJSON {
				emitJSON(stdout, map[string]any{"seq": seq, "error": r.Err.Error()})
			} else {
				fmt.Fprintf(stdout, "seq=%d error: %v\n", seq, r.Err)
			}
			break
		}
		ms := float64(r.RTT) / float64(time.Millisecond)
		st.add(ms)
		if *asJSON {
			emitJSON(stdout, map[string]any{"seq": seq, "peer": info.ID.String(), "rtt_ms": ms})
		} else {
			fmt.Fprintf(stdout, "32 bytes from %s: seq=%d time=%.3f ms\n", info.ID, seq, ms)
		}
		if *count != 0 && seq == *count {
			break
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			break loop
		}
	}
	pcancel()
	elapsed := time.Since(start)
	if *asJSON {
		emitJSON(stdout, map[string]any{
			"peer": info.ID.String(), "transmitted": st.sent, "received": st.received, "loss_percent": st.loss(),
			"time_ms": elapsed.Milliseconds(), "min_ms": st.min, "avg_ms": st.avg(), "max_ms": st.max, "mdev_ms": st.mdev(),
		})
	} else {
		fmt.Fprintf(stdout, "--- %s ping statistics ---\n", info.ID)
		fmt.Fprintf(stdout, "%d pings transmitted, %d received, %.0f%% loss, time %dms\n", st.sent, st.received, st.loss(), elapsed.Milliseconds())
		if st.received > 0 {
			fmt.Fprintf(stdout, "rtt min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", st.min, st.avg(), st.max, st.mdev())
		}
	}
	if st.received < st.sent {
		return fmt.Errorf("%d of %d pings to %s failed: %w", st.sent-st.received, st.sent, info.ID, lastErr)
	}
	return nil
}
