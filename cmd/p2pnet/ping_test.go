package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/ping"
)

// echoer serves ping streams like a peer that may stop answering: the
// streams it accepts echo payloads until their quota runs out, then read
// and drop them, until the dialer closes or resets the stream.
type echoer struct {
	// quota returns how many payloads stream i (0 for the first stream)
	// echoes; negative means all.
	quota func(i int) int
	// got, if not nil, receives each payload dropped.
	got chan<- struct{}

	mu      sync.Mutex // guards the following
	streams int
}

func (e *echoer) handle(s network.Stream) {
	e.mu.Lock()
	left := e.quota(e.streams)
	e.streams++
	e.mu.Unlock()
	var buf [ping.PayloadSize]byte
	for {
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			if err == io.EOF {
				s.Close()
				return
			}
			s.Reset()
			return
		}
		if left == 0 {
			if e.got != nil {
				e.got <- struct{}{}
			}
			continue
		}
		left--
		if _, err := s.Write(buf[:]); err != nil {
			s.Reset()
			return
		}
	}
}

// answers is a quota: every stream echoes n payloads (negative: all).
func answers(n int) func(int) int { return func(int) int { return n } }

// startHost runs a host on loopback TCP, with its ping service replaced
// by handler if not nil, and returns its address.
func startHost(t *testing.T, handler network.StreamHandler) string {
	t.Helper()
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if handler != nil {
		h.SetStreamHandler(ping.ID, handler)
	}
	return h.P2PAddrs()[0].String()
}

// fakePair returns a client host linked to a server host whose ping
// streams e serves, in memory.
func fakePair(t *testing.T, e *echoer) (client, server *fakehost.Host) {
	client, server = fakehost.New(t), fakehost.New(t)
	server.SetStreamHandler(ping.ID, e.handle)
	fakehost.Link(client, server)
	return client, server
}

// timedResult is a ping result with the time it was reported, since the
// run started.
type timedResult struct {
	pingResult
	at time.Duration
}

// runPinger runs a pinger in a synctest bubble and returns what it
// reported.
func runPinger(t *testing.T, ctx context.Context, e *echoer, count int, interval, timeout time.Duration) []timedResult {
	client, server := fakePair(t, e)
	p := newPinger(client, server.ID(), timeout)
	var got []timedResult
	start := time.Now()
	err := p.run(ctx, count, interval, func(r pingResult) {
		got = append(got, timedResult{r, time.Since(start)})
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	p.close()
	synctest.Wait()
	server.Wait()
	return got
}

// TestPingerLostReply: a reply that does not come within the timeout is
// lost; the stream is reset and the next ping goes on a new stream,
// right away since its time has come.
func TestPingerLostReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first stream answers its setup and two pings, then no more.
		e := &echoer{quota: func(i int) int {
			if i == 0 {
				return 3
			}
			return -1
		}}
		got := runPinger(t, context.Background(), e, 5, time.Second, 2*time.Second)
		want := []struct {
			at        time.Duration
			newStream bool
			lost      bool
		}{
			{0, true, false},
			{time.Second, false, false},
			{4 * time.Second, false, true}, // sent at 2 s, given up at 4 s
			{4 * time.Second, true, false}, // due at 3 s: sent at once
			{5 * time.Second, false, false},
		}
		if len(got) != len(want) {
			t.Fatalf("%d results; want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			var nr *noReplyError
			lost := errors.As(g.err, &nr) && nr.timeout == 2*time.Second
			if g.seq != i+1 || g.at != w.at || g.newStream != w.newStream || lost != w.lost || (!w.lost && g.err != nil) {
				t.Errorf("result %d: %+v; want seq %d at %v, new stream %v, lost %v", i, g, i+1, w.at, w.newStream, w.lost)
			}
		}
		if e.streams != 2 {
			t.Errorf("%d streams opened; want 2", e.streams)
		}
	})
}

// TestPingerDeadline: the run ends when ctx does; a ping waiting for its
// reply then is reported as interrupted.
func TestPingerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		got := runPinger(t, ctx, &echoer{quota: answers(-1)}, 0, time.Second, time.Second)
		if len(got) != 3 || got[2].at != 2*time.Second || got[2].err != nil {
			t.Errorf("got %+v; want 3 replies, the last at 2 s", got)
		}

		ctx, cancel = context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		got = runPinger(t, ctx, &echoer{quota: answers(1)}, 0, time.Second, 10*time.Second)
		if len(got) != 1 || !got[0].interrupted || !errors.Is(got[0].err, context.DeadlineExceeded) || got[0].at != 2500*time.Millisecond {
			t.Errorf("got %+v; want the first ping interrupted at 2.5 s", got)
		}
	})
}

// TestPingerEchoMismatch: a reply with other bytes is lost too.
func TestPingerEchoMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := fakehost.New(t), fakehost.New(t)
		var n atomic.Int32 // payloads read, on all streams
		server.SetStreamHandler(ping.ID, func(s network.Stream) {
			var buf [ping.PayloadSize]byte
			for {
				if _, err := io.ReadFull(s, buf[:]); err != nil {
					s.Reset()
					return
				}
				if n.Add(1) == 2 {
					buf[0] ^= 1 // the first ping, after the setup
				}
				s.Write(buf[:])
			}
		})
		fakehost.Link(client, server)
		p := newPinger(client, server.ID(), time.Second)
		var got []pingResult
		p.run(context.Background(), 2, time.Second, func(r pingResult) { got = append(got, r) })
		p.close()
		synctest.Wait()
		server.Wait()
		if len(got) != 2 || !errors.Is(got[0].err, errEchoMismatch) || got[1].err != nil || !got[1].newStream {
			t.Errorf("got %+v; want a mismatch, then a reply on a new stream", got)
		}
	})
}

// TestPingerPeerCloses: a stream the peer ends loses its ping, with a
// reason a user understands.
func TestPingerPeerCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := fakehost.New(t), fakehost.New(t)
		server.SetStreamHandler(ping.ID, func(s network.Stream) {
			var buf [ping.PayloadSize]byte
			io.ReadFull(s, buf[:])
			s.Write(buf[:]) // the setup only
			s.CloseWrite()
			io.Copy(io.Discard, s) // until the dialer gives up
			s.Close()
		})
		fakehost.Link(client, server)
		p := newPinger(client, server.ID(), time.Second)
		var got []pingResult
		p.run(context.Background(), 2, time.Second, func(r pingResult) { got = append(got, r) })
		p.close()
		synctest.Wait()
		server.Wait()
		if len(got) != 2 || got[0].err == nil || reason(got[0].err) != "the peer closed the stream" || !got[1].newStream {
			t.Errorf("got %+v (%v); want both lost, each on a new stream, the peer closed the stream", got, got[0].err)
		}
	})
}

// TestPingLostReplies runs the command against a host that stops
// answering: each lost reply is counted and the run goes on.
func TestPingLostReplies(t *testing.T) {
	// The first stream answers its setup and two pings, later ones
	// nothing.
	e := &echoer{quota: func(i int) int {
		if i == 0 {
			return 3
		}
		return 0
	}}
	addr := startHost(t, e.handle)
	// -W leaves a loaded machine time for the replies that do come.
	code, out, errs := runCmd(t, "ping", "-c", "4", "-i", "10ms", "-W", "400ms", addr)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q; want 0 (some replies came), nothing on stderr", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"PING 12D3KooW",
		"32 bytes from 12D3KooW",
		"32 bytes from 12D3KooW",
		"seq=3 lost: no reply within 400ms",
		// A new stream, whose setup round trip goes unanswered.
		"seq=4 lost: no reply within 400ms",
		"--- 12D3KooW",
		"4 transmitted, 2 received, 50% loss, time ",
		"rtt min/avg/max/mdev = ",
	}
	if len(lines) != len(want) {
		t.Fatalf("printed %d lines; want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d %q; want it to start %q", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[1], "seq=1 time=") || !strings.Contains(lines[1], "(new stream: ") || !strings.Contains(lines[2], "seq=2 time=") {
		t.Errorf("replies:\n%s\n%s", lines[1], lines[2])
	}
}

// TestPingRecovers: after a lost reply the next ping goes on a new
// stream, which the peer answers.
func TestPingRecovers(t *testing.T) {
	e := &echoer{quota: func(i int) int {
		if i == 0 {
			return 2 // setup and one ping
		}
		return -1
	}}
	addr := startHost(t, e.handle)
	code, out, errs := runCmd(t, "ping", "-c", "4", "-i", "10ms", "-W", "400ms", "-q", addr)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "4 transmitted, 3 received, 25% loss, time ") {
		t.Errorf("-q output:\n%s\nwant the first line and the summary, 4 transmitted, 3 received", out)
	}
}

// TestPingNoReply: no reply at all exits 1, the summary saying why.
func TestPingNoReply(t *testing.T) {
	e := &echoer{quota: answers(0)}
	addr := startHost(t, e.handle)
	code, out, errs := runCmd(t, "ping", "-c", "2", "-i", "10ms", "-W", "100ms", "--json", addr)
	if code != 1 || errs != "" {
		t.Fatalf("exit %d, stderr %q; want 1 and nothing on stderr", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("printed %d lines; want 2 lost replies and a summary:\n%s", len(lines), out)
	}
	for i, l := range lines[:2] {
		var loss struct {
			Type, Peer, Addr, Error string
			Seq                     int
		}
		if err := json.Unmarshal([]byte(l), &loss); err != nil || loss.Type != "error" || loss.Seq != i+1 ||
			loss.Error != "no reply within 100ms" || loss.Peer == "" || loss.Addr == "" {
			t.Errorf("line %q: %+v, %v", l, loss, err)
		}
	}
	var sum struct {
		Type                  string
		Transmitted, Received int
		LossPercent           float64 `json:"loss_percent"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || sum.Type != "summary" || sum.Transmitted != 2 || sum.Received != 0 || sum.LossPercent != 100 {
		t.Errorf("summary %q: %+v, %v", lines[2], sum, err)
	}
}

// TestPingDeadlineFlag: -w ends the run; the ping waiting then counts as
// transmitted and lost.
func TestPingDeadlineFlag(t *testing.T) {
	addr := startHost(t, (&echoer{quota: answers(1)}).handle)
	code, out, errs := runCmd(t, "ping", "-w", "0.5", addr)
	if code != 1 || errs != "" || !strings.Contains(out, "\n1 transmitted, 0 received, 100% loss, time ") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 1 and 1 transmitted, 0 received", code, errs, out)
	}
}

// TestPingInterrupt: Ctrl-C prints the summary; the exit status says
// whether a reply came.
func TestPingInterrupt(t *testing.T) {
	addr := startHost(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	defer func() { signalContext = old }()

	// Interrupted while waiting for the next ping, 10 s away.
	stdout := &onWrite{f: func(s string) {
		if strings.Contains(s, "seq=1 time=") {
			cancel()
		}
	}}
	var stderr lockedBuffer
	code := run([]string{"ping", "-i", "10", addr}, stdout, &stderr)
	out := stdout.buf.String()
	if code != 0 || stderr.String() != "" || !strings.Contains(out, "\n1 transmitted, 1 received, 0% loss, time ") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 0 and the summary of 1 ping", code, stderr.String(), out)
	}
}

// TestPingInterruptWaiting: Ctrl-C while a reply is awaited counts that
// ping as lost, as ping(8) does.
func TestPingInterruptWaiting(t *testing.T) {
	dropped := make(chan struct{}, 1)
	addr := startHost(t, (&echoer{quota: answers(1), got: dropped}).handle)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	defer func() { signalContext = old }()
	go func() {
		<-dropped // the peer holds the first ping
		cancel()
	}()
	code, out, errs := runCmd(t, "ping", addr)
	if code != 1 || errs != "" || !strings.Contains(out, "\n1 transmitted, 0 received, 100% loss, time ") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit 1 and 1 transmitted, 0 received", code, errs, out)
	}
}

// TestPingNotServed: a peer without ping is a failure, said once.
func TestPingNotServed(t *testing.T) {
	h, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.RemoveStreamHandler(ping.ID)
	addr := h.P2PAddrs()[0].String()
	code, _, errs := runCmd(t, "ping", "-c", "1", addr)
	want := "p2pnet ping: pinging " + h.ID().String() + ": the peer does not serve /ipfs/ping/1.0.0\n"
	if code != 1 || errs != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, errs, want)
	}
}
