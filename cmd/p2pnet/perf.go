package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/perf"
)

// perfConfig says what a perf run measures.
type perfConfig struct {
	// upload and download are the bytes to send and to receive, when
	// duration is zero.
	upload, download uint64
	// duration, if positive, is how long each direction lasts.
	duration time.Duration
	// interval is how often progress is reported; 0 means never.
	interval time.Duration
}

// perfResult is the outcome of one direction.
type perfResult struct {
	dir   string // "upload" or "download"
	bytes uint64
	// time runs from opening the stream to the end of the transfer:
	// for an upload, to the server's answer, which comes once it has
	// read every byte.
	time time.Duration
	// started is true once the stream is negotiated and the transfer
	// began; done is true if the transfer ended as planned, not
	// interrupted nor failed.
	started, done bool
}

// perfInterval is a progress report: the bytes of one direction in the
// interval from start to end, both measured from the direction's start.
type perfInterval struct {
	dir        string
	start, end time.Duration
	bytes      uint64
}

// perfClient measures throughput to a peer with /perf/1.0.0, one stream
// per direction. It builds on the protocol's wire format (perf.ID,
// perf.AppendHeader) rather than on perf.Run, which transfers a given
// size both ways on one stream: a perfClient can also transfer for a
// given time, and measures each direction on its own.
type perfClient struct {
	h    streamOpener
	peer peer.ID
	cfg  perfConfig
	// report receives the progress reports, from a goroutine of the
	// client's; calls never overlap.
	report func(perfInterval)
}

// run uploads, then downloads, and returns the result of each direction
// it started. On error, the last result is the one that failed.
func (c *perfClient) run(ctx context.Context) ([]perfResult, error) {
	var results []perfResult
	if c.cfg.duration > 0 || c.cfg.upload > 0 {
		r, err := c.upload(ctx)
		if r.started {
			results = append(results, r)
		}
		if err != nil {
			return results, withReason("uploading", err)
		}
	}
	if c.cfg.duration > 0 || c.cfg.download > 0 {
		r, err := c.download(ctx)
		if r.started {
			results = append(results, r)
		}
		if err != nil {
			return results, withReason("downloading", err)
		}
	}
	return results, nil
}

// open opens a perf stream, reset as soon as ctx ends, and sends the
// header asking for download bytes. With upload false it closes its
// side too. It returns once the server has accepted the protocol (the
// stream's first round trip), so that the transfer is timed on a
// negotiated stream, and so that a server without perf is reported as
// such rather than by the reset that follows its refusal.
func (c *perfClient) open(ctx context.Context, download uint64, upload bool) (s network.Stream, stop func() bool, err error) {
	s, err = c.h.NewStream(ctx, c.peer, perf.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Scope().SetService(perf.ServiceName); err != nil {
		s.Reset()
		return nil, nil, err
	}
	stop = context.AfterFunc(ctx, func() { s.Reset() })
	_, err = s.Write(perf.AppendHeader(nil, download))
	if err == nil && !upload {
		err = s.CloseWrite()
	}
	if err == nil {
		// A Read into nothing returns once the protocol is agreed.
		_, err = s.Read(nil)
	}
	if err != nil {
		stop()
		s.Reset()
		return nil, nil, ctxErr(ctx, err)
	}
	return s, stop, nil
}

// upload sends bytes, asking for none back, until the size is sent or
// the duration is over; then it closes its side and waits for the
// server's end of stream.
func (c *perfClient) upload(ctx context.Context) (perfResult, error) {
	res := perfResult{dir: "upload"}
	s, stop, err := c.open(ctx, 0, true)
	if err != nil {
		return res, err
	}
	defer stop()
	res.started = true
	m := startMeter(res.dir, c.cfg.interval, c.cfg.duration, c.report)
	remaining := c.cfg.upload
	var deadline time.Time
	if c.cfg.duration > 0 {
		remaining = math.MaxUint64
		deadline = m.start.Add(c.cfg.duration)
		s.SetWriteDeadline(deadline) // a Write blocked by flow control ends then too
	}
	buf := make([]byte, perf.BufferSize)
	for remaining > 0 && (deadline.IsZero() || time.Now().Before(deadline)) {
		w, err := s.Write(buf[:min(uint64(len(buf)), remaining)])
		m.add(uint64(w))
		remaining -= uint64(w)
		if err != nil {
			if !deadline.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				break
			}
			res.bytes, res.time = m.stop()
			s.Reset()
			return res, ctxErr(ctx, err)
		}
	}
	s.SetWriteDeadline(time.Time{})
	err = s.CloseWrite()
	if err == nil {
		_, err = io.Copy(io.Discard, s)
	}
	res.bytes, res.time = m.stop()
	if err != nil {
		s.Reset()
		return res, ctxErr(ctx, err)
	}
	s.Close()
	res.done = true
	return res, nil
}

// download asks for the size, or for as much as the server can send in
// the duration, and reads it.
func (c *perfClient) download(ctx context.Context) (perfResult, error) {
	res := perfResult{dir: "download"}
	want := c.cfg.download
	timed := c.cfg.duration > 0
	if timed {
		want = math.MaxUint64
	}
	s, stop, err := c.open(ctx, want, false)
	if err != nil {
		return res, err
	}
	defer stop()
	res.started = true
	m := startMeter(res.dir, c.cfg.interval, c.cfg.duration, c.report)
	if timed {
		s.SetReadDeadline(m.start.Add(c.cfg.duration))
	}
	buf := make([]byte, perf.BufferSize)
	var got uint64
	for err == nil {
		var n int
		n, err = s.Read(buf)
		got += uint64(n)
		m.add(uint64(n))
		if got > want {
			err = fmt.Errorf("%w: more than the %d bytes asked for", perf.ErrDownloadMismatch, want)
		}
	}
	res.bytes, res.time = m.stop()
	switch {
	case timed && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil:
		// The duration is over: the reset tells the server to stop.
		s.Reset()
	case err != io.EOF:
		s.Reset()
		return res, ctxErr(ctx, err)
	case got != want:
		s.Reset()
		return res, fmt.Errorf("%w: %d bytes, asked for %d", perf.ErrDownloadMismatch, got, want)
	default:
		s.Close()
	}
	res.done = true
	return res, nil
}

// ctxErr prefers ctx's error to err, which the reset by ctx explains.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// meter counts the bytes of one direction and reports them every
// interval, from a goroutine of its own.
type meter struct {
	dir      string
	interval time.Duration
	planned  time.Duration // how long the direction should last, 0 if unknown
	report   func(perfInterval)
	start    time.Time
	n        atomic.Uint64
	stopc    chan struct{}
	done     chan struct{}

	// Owned by the goroutine until it is done, then by stop.
	last    uint64        // bytes reported so far
	lastEnd time.Duration // end of the last interval reported
}

// startMeter starts counting; it reports nothing if interval is 0 or
// report is nil. When the direction should last planned, the tick that
// comes about when it ends is left to stop, so that the last interval
// is not cut in two.
func startMeter(dir string, interval, planned time.Duration, report func(perfInterval)) *meter {
	m := &meter{dir: dir, interval: interval, planned: planned, report: report, start: time.Now(),
		stopc: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 || report == nil {
		close(m.done)
		return m
	}
	go m.loop()
	return m
}

func (m *meter) loop() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			now := time.Since(m.start)
			if m.planned > 0 && now+m.interval/2 > m.planned {
				continue
			}
			m.flush(now)
		case <-m.stopc:
			return
		}
	}
}

// flush reports the interval ending at end.
func (m *meter) flush(end time.Duration) {
	n := m.n.Load()
	m.report(perfInterval{dir: m.dir, start: m.lastEnd, end: end, bytes: n - m.last})
	m.last, m.lastEnd = n, end
}

// add counts n bytes.
func (m *meter) add(n uint64) { m.n.Add(n) }

// stop ends the counting, reports the last, partial interval if it has
// bytes, and returns the total and the time since the start.
func (m *meter) stop() (uint64, time.Duration) {
	elapsed := time.Since(m.start)
	close(m.stopc)
	<-m.done
	n := m.n.Load()
	if m.report != nil && m.interval > 0 && n > m.last && elapsed > m.lastEnd {
		m.flush(elapsed)
	}
	return n, elapsed
}

// The JSON lines of perf.
type (
	perfProgressLine struct {
		Type          string  `json:"type"` // "progress"
		Peer          string  `json:"peer"`
		Direction     string  `json:"direction"`
		StartSeconds  float64 `json:"start_seconds"`
		EndSeconds    float64 `json:"end_seconds"`
		Bytes         uint64  `json:"bytes"`
		BitsPerSecond float64 `json:"bits_per_second"`
	}
	perfResultLine struct {
		Type                  string  `json:"type"` // "result"
		Peer                  string  `json:"peer"`
		Addr                  string  `json:"addr"`
		Uploaded              uint64  `json:"uploaded"`
		UploadSeconds         float64 `json:"upload_seconds"`
		UploadBitsPerSecond   float64 `json:"upload_bits_per_second"`
		Downloaded            uint64  `json:"downloaded"`
		DownloadSeconds       float64 `json:"download_seconds"`
		DownloadBitsPerSecond float64 `json:"download_bits_per_second"`
		// Complete is false when the run was interrupted or failed: the
		// figures are what was transferred until then.
		Complete bool `json:"complete"`
	}
)

func runPerf(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("perf", stderr)
	upload := sizeFlag(64 << 20)
	download := sizeFlag(64 << 20)
	fl.Var(&upload, "upload", "bytes to send (`SIZE`, such as 64KiB, 100MB or 1.5GiB; 0 for none)")
	fl.Var(&download, "download", "bytes to receive (`SIZE`; 0 for none)")
	duration := durationFlag{min: 10 * time.Millisecond}
	fl.Var(&duration, "t", "send for `DURATION`, then receive for as long (seconds or a duration), instead of sizes")
	interval := durationFlag{d: time.Second, min: 10 * time.Millisecond, zeroOK: true}
	fl.Var(&interval, "i", "report progress every `INTERVAL` (seconds or a duration; 0 for never)")
	asJSON := fl.Bool("json", false, `print JSON lines: "progress" for each interval, then a "result"`)
	target := clientFlags(fl, true)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	addr, err := oneArg(fl, "MADDR/p2p/ID")
	if err != nil {
		return err
	}
	set := flagsSet(fl)
	if set["t"] && (set["upload"] || set["download"]) {
		return usagef("-t measures for a time, --upload and --download by size: give one or the other")
	}
	cfg := perfConfig{upload: uint64(upload), download: uint64(download), duration: duration.d, interval: interval.d}
	if cfg.duration == 0 && cfg.upload == 0 && cfg.download == 0 {
		return usagef("nothing to measure: --upload and --download are both 0")
	}
	out := printer{w: stdout, json: *asJSON}

	ctx, stop := signalContext()
	defer stop()
	sess, err := target.connect(ctx, addr)
	if err != nil {
		return out.fail("", err)
	}
	defer sess.h.Close()
	id, raddr := sess.peer.String(), sess.addr.String()
	what := fmt.Sprintf("upload %s, then download %s", formatBytes(cfg.upload), formatBytes(cfg.download))
	switch {
	case cfg.duration > 0:
		what = fmt.Sprintf("upload for %v, then download for %v", cfg.duration, cfg.duration)
	case cfg.upload == 0:
		what = "download " + formatBytes(cfg.download)
	case cfg.download == 0:
		what = "upload " + formatBytes(cfg.upload)
	}
	out.textf("PERF %s (%s), connected in %.3f ms: %s", id, raddr, ms(sess.connectTime), what)

	c := &perfClient{h: sess.h, peer: sess.peer, cfg: cfg, report: func(iv perfInterval) {
		d := iv.end - iv.start
		out.textf("%-9s %6.2f-%-6.2f s  %10s  %s", iv.dir, iv.start.Seconds(), iv.end.Seconds(),
			formatBytes(iv.bytes), formatBits(bitsPerSecond(iv.bytes, d)))
		out.emit(perfProgressLine{Type: "progress", Peer: id, Direction: iv.dir,
			StartSeconds: iv.start.Seconds(), EndSeconds: iv.end.Seconds(), Bytes: iv.bytes,
			BitsPerSecond: bitsPerSecond(iv.bytes, d)})
	}}
	results, err := c.run(target.streamContext(ctx))

	line := perfResultLine{Type: "result", Peer: id, Addr: raddr, Complete: err == nil}
	if len(results) > 0 {
		out.textf("--- %s perf summary ---", id)
	}
	for _, r := range results {
		note := ""
		if !r.done {
			note = "  (interrupted)"
			if ctx.Err() == nil {
				note = "  (failed)"
			}
		}
		out.textf("%-9s %10s in %.3f s  %s%s", r.dir, formatBytes(r.bytes), r.time.Seconds(),
			formatBits(bitsPerSecond(r.bytes, r.time)), note)
		if r.dir == "upload" {
			line.Uploaded, line.UploadSeconds, line.UploadBitsPerSecond = r.bytes, r.time.Seconds(), bitsPerSecond(r.bytes, r.time)
		} else {
			line.Downloaded, line.DownloadSeconds, line.DownloadBitsPerSecond = r.bytes, r.time.Seconds(), bitsPerSecond(r.bytes, r.time)
		}
	}
	out.emit(line)
	if err != nil {
		return out.fail(id, err)
	}
	return nil
}
