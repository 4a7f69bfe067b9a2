package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/protocol"
)

// slowOpener opens streams whose every Write takes delay: in a synctest
// bubble, a link of known speed.
type slowOpener struct {
	h     *fakehost.Host
	delay time.Duration
}

func (o slowOpener) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := o.h.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &slowStream{Stream: s, delay: o.delay}, nil
}

type slowStream struct {
	network.Stream
	delay time.Duration
}

func (s *slowStream) Write(b []byte) (int, error) {
	time.Sleep(s.delay)
	return s.Stream.Write(b)
}

// perfPair returns a client and a perf server linked in memory, each
// Write of either taking delay.
func perfPair(t *testing.T, delay time.Duration) (slowOpener, *fakehost.Host, *perf.Service) {
	client, server := fakehost.New(t), fakehost.New(t)
	server.SetWriteDelay(delay)
	svc := perf.NewService(server)
	fakehost.Link(client, server)
	return slowOpener{h: client, delay: delay}, server, svc
}

// TestPerfClientTimed: with -t, each direction lasts the duration, and
// the intervals add up to the total. Each write of 64 KiB takes 7 ms
// (which does not divide a second, so no write ends on a tick).
func TestPerfClientTimed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, server, svc := perfPair(t, 7*time.Millisecond)
		var got []string
		c := &perfClient{h: h, peer: server.ID(), cfg: perfConfig{duration: 3 * time.Second, interval: time.Second},
			report: func(iv perfInterval) {
				got = append(got, fmt.Sprintf("%s %v-%v %d", iv.dir, iv.start, iv.end, iv.bytes/perf.BufferSize))
			}}
		results, err := c.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		svc.Close()
		synctest.Wait()
		server.Wait()
		// Writes end at 7 ms, 14 ms, …: 142 by 1 s, 285 by 2 s, 428 by
		// 3 s. The upload's 429th write, begun before 3 s, ends at
		// 3.003 s; the download stops reading at 3 s.
		want := []string{
			"upload 0s-1s 142", "upload 1s-2s 143", "upload 2s-3.003s 144",
			"download 0s-1s 142", "download 1s-2s 143", "download 2s-3s 143",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("intervals:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		wantResults := []perfResult{
			{dir: "upload", bytes: 429 * perf.BufferSize, time: 3003 * time.Millisecond, started: true, done: true},
			{dir: "download", bytes: 428 * perf.BufferSize, time: 3 * time.Second, started: true, done: true},
		}
		if fmt.Sprint(results) != fmt.Sprint(wantResults) {
			t.Errorf("results %+v; want %+v", results, wantResults)
		}
	})
}

// TestPerfClientSizes: sizes are transferred exactly; the last, partial
// interval is reported when the transfer ends.
func TestPerfClientSizes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, server, svc := perfPair(t, 7*time.Millisecond)
		var got []string
		c := &perfClient{h: h, peer: server.ID(), cfg: perfConfig{upload: 1 << 20, download: 3 << 20, interval: 100 * time.Millisecond},
			report: func(iv perfInterval) {
				got = append(got, fmt.Sprintf("%s %v-%v %d", iv.dir, iv.start, iv.end, iv.bytes/perf.BufferSize))
			}}
		results, err := c.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		svc.Close()
		synctest.Wait()
		server.Wait()
		// 16 writes up (the header went before the start), 48 down, each
		// ending 7 ms after the one before.
		want := []string{
			"upload 0s-100ms 14", "upload 100ms-112ms 2",
			"download 0s-100ms 14", "download 100ms-200ms 14", "download 200ms-300ms 14",
			"download 300ms-336ms 6",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("intervals:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(results) != 2 || results[0].bytes != 1<<20 || results[1].bytes != 3<<20 ||
			results[0].time != 112*time.Millisecond || results[1].time != 336*time.Millisecond {
			t.Errorf("results %+v", results)
		}
	})
}

// TestPerfClientInterrupted: when ctx ends, the direction under way
// reports what it transferred so far.
func TestPerfClientInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, server, svc := perfPair(t, 10*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(1505*time.Millisecond, cancel) // Ctrl-C
		c := &perfClient{h: h, peer: server.ID(), cfg: perfConfig{duration: time.Second}}
		results, err := c.run(ctx)
		svc.Close()
		synctest.Wait()
		server.Wait()
		if err == nil || errorText(err) != "downloading: interrupted" {
			t.Errorf("error %v; want downloading: interrupted", err)
		}
		// The upload, from 10 ms (after its header) to 1.01 s, and the
		// download from 1.02 s: Ctrl-C 485 ms into it, after 48 writes.
		if len(results) != 2 || !results[0].done || results[0].bytes != 100*perf.BufferSize || results[1].done ||
			results[1].bytes != 48*perf.BufferSize || results[1].time != 485*time.Millisecond {
			t.Errorf("results %+v", results)
		}
	})
}

// startPerfHost runs a host on loopback TCP that serves perf if asked,
// and returns its address.
func startPerfHost(t *testing.T, serve bool) string {
	t.Helper()
	opts := []p2pnet.Option{p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}
	if serve {
		opts = append(opts, p2pnet.EnablePerf())
	}
	h, err := p2pnet.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h.P2PAddrs()[0].String()
}

// TestPerfTimed runs the command for a time, with intervals.
func TestPerfTimed(t *testing.T) {
	addr := startPerfHost(t, true)
	code, out, errs := runCmd(t, "perf", addr, "-t", "300ms", "-i", "0.1")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "PERF 12D3KooW") || !strings.HasSuffix(lines[0], "upload for 300ms, then download for 300ms") {
		t.Errorf("first line %q", lines[0])
	}
	count := map[string]int{}
	for _, l := range lines[1:] {
		count[strings.Fields(l)[0]]++
	}
	// About three intervals each way (the exact ones are
	// TestPerfClientTimed's), then a summary line.
	if count["upload"] < 2 || count["upload"] > 4 || count["download"] < 2 || count["download"] > 4 || count["---"] != 1 {
		t.Errorf("want intervals and a summary line each way:\n%s", out)
	}
	if !strings.HasPrefix(lines[1], "upload      0.00-0.") {
		t.Errorf("first interval %q", lines[1])
	}
	n := len(lines)
	// Each direction ran for 0.3 s; the upload's time also covers the
	// peer reading what was still in flight, which a loaded machine
	// stretches.
	for i, dir := range []string{"upload   ", "download "} {
		l := lines[n-2+i]
		var secs float64
		_, after, _ := strings.Cut(l, " in ")
		if _, err := fmt.Sscanf(after, "%f s", &secs); !strings.HasPrefix(l, dir) || err != nil || secs < 0.3 || secs > 5 {
			t.Errorf("summary line %q: want %sN in 0.3 s or a little more", l, dir)
		}
	}

	code, out, errs = runCmd(t, "perf", "-t", "0.1", "-i", "0", "--json", addr)
	if code != 0 || errs != "" {
		t.Fatalf("--json: exit %d, stderr %q", code, errs)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var res struct {
		Type, Peer, Addr     string
		Uploaded, Downloaded uint64
		Complete             bool
	}
	if err := json.Unmarshal([]byte(lines[0]), &res); len(lines) != 1 || err != nil || res.Type != "result" ||
		res.Uploaded == 0 || res.Downloaded == 0 || !res.Complete || !strings.HasPrefix(addr, res.Addr+"/p2p/"+res.Peer) {
		t.Errorf("-i 0 --json printed:\n%s\nwant one complete result: %+v, %v", out, res, err)
	}
}

// TestPerfJSONProgress: progress lines have a type, the direction and
// snake_case keys.
func TestPerfJSONProgress(t *testing.T) {
	addr := startPerfHost(t, true)
	code, out, errs := runCmd(t, "perf", "--json", "-i", "10ms", "--upload", "64MiB", "--download", "0", addr)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var total uint64
	for _, l := range lines[:len(lines)-1] {
		var p map[string]any
		if err := json.Unmarshal([]byte(l), &p); err != nil || p["type"] != "progress" || p["direction"] != "upload" {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"peer", "start_seconds", "end_seconds", "bytes", "bits_per_second"} {
			if _, ok := p[k]; !ok {
				t.Errorf("line %q lacks %q", l, k)
			}
		}
		total += uint64(p["bytes"].(float64))
	}
	if total != 64<<20 {
		t.Errorf("the intervals add up to %d bytes; want %d", total, 64<<20)
	}
}

// TestPerfInterrupt: Ctrl-C prints the summary so far and exits 1.
func TestPerfInterrupt(t *testing.T) {
	addr := startPerfHost(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	defer func() { signalContext = old }()
	stdout := &onWrite{f: func(s string) {
		if strings.Contains(s, "\nupload ") {
			cancel() // after the first interval
		}
	}}
	var stderr lockedBuffer
	code := run([]string{"perf", "-t", "1m", "-i", "50ms", addr}, stdout, &stderr)
	out := stdout.buf.String()
	if code != 1 || stderr.String() != "p2pnet perf: uploading: interrupted\n" {
		t.Errorf("exit %d, stderr %q; want 1 and p2pnet perf: uploading: interrupted", code, stderr.String())
	}
	if !strings.Contains(out, "perf summary ---\nupload ") || !strings.HasSuffix(out, "  (interrupted)\n") {
		t.Errorf("output:\n%s\nwant the upload so far, marked interrupted", out)
	}
}

// TestPerfNotServed: a peer without perf is named as such.
func TestPerfNotServed(t *testing.T) {
	addr := startPerfHost(t, false)
	code, out, errs := runCmd(t, "perf", "--upload", "1MiB", addr)
	if code != 1 || errs != "p2pnet perf: uploading: the peer does not serve /perf/1.0.0\n" || strings.Contains(out, "summary") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, errs, out)
	}
}
