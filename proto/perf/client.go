package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
)

// ProgressInterval is how often Run reports progress.
const ProgressInterval = time.Second

// ErrDownloadMismatch is the error of a run whose server sent a number of
// bytes other than the one requested.
var ErrDownloadMismatch = errors.New("perf: server sent a number of bytes other than requested")

// Progress is how far a run has got.
type Progress struct {
	// Uploaded is the number of bytes written so far, the header not
	// counted.
	Uploaded uint64
	// Downloaded is the number of bytes read so far.
	Downloaded uint64
	// Elapsed is the time since the run started.
	Elapsed time.Duration
}

// Result is the outcome of a run.
type Result struct {
	// Uploaded is the number of bytes sent, the header not counted.
	Uploaded uint64
	// Downloaded is the number of bytes received.
	Downloaded uint64
	// UploadTime runs from the opening of the stream to the closing of
	// our side for writing.
	UploadTime time.Duration
	// DownloadTime runs from the end of the upload to the end of the
	// server's data. It includes the time the server takes to read the
	// rest of the upload, as the protocol has the server answer only
	// then.
	DownloadTime time.Duration
}

// UploadBitsPerSecond is the upload throughput, or 0 if nothing was
// uploaded.
func (r Result) UploadBitsPerSecond() float64 { return bitsPerSecond(r.Uploaded, r.UploadTime) }

// DownloadBitsPerSecond is the download throughput, or 0 if nothing was
// downloaded.
func (r Result) DownloadBitsPerSecond() float64 {
	return bitsPerSecond(r.Downloaded, r.DownloadTime)
}

func bitsPerSecond(n uint64, d time.Duration) float64 {
	if n == 0 || d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds()
}

// Run measures throughput to p: it uploads upload bytes, then downloads
// download bytes. If progress is not nil, it is called about every
// ProgressInterval, on Run's goroutine, while the transfer lasts.
//
// When ctx ends first, Run resets the stream and returns what was
// transferred so far with ctx's error: asking for math.MaxUint64 bytes
// and cancelling ctx after some time is the spec's timed download.
func Run(ctx context.Context, h Host, p peer.ID, upload, download uint64, progress func(Progress)) (Result, error) {
	var res Result
	s, err := h.NewStream(ctx, p, ID)
	if err != nil {
		return res, fmt.Errorf("perf: opening a stream to %s: %w", p, err)
	}
	scope := s.Scope()
	if err := scope.SetService(ServiceName); err != nil {
		s.Reset()
		return res, fmt.Errorf("perf: %w", err)
	}
	if err := scope.ReserveMemory(BufferSize, network.ReservationPriorityHigh); err != nil {
		s.Reset()
		return res, fmt.Errorf("perf: %w", err)
	}
	defer scope.ReleaseMemory(BufferSize)
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()

	r := run{s: s, res: &res, progress: progress, start: time.Now()}
	if progress != nil {
		r.ticker = time.NewTicker(ProgressInterval)
		defer r.ticker.Stop()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if err := r.upload(*bp, upload, download); err != nil {
		s.Reset()
		return res, ctxErr(ctx, err)
	}
	if err := r.download(*bp, download); err != nil {
		s.Reset()
		return res, ctxErr(ctx, err)
	}
	s.Close()
	return res, nil
}

// ctxErr prefers ctx's error to err, which the reset by ctx explains.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("perf: %w", cerr)
	}
	return err
}

// run is the state of one Run.
type run struct {
	s        network.Stream
	res      *Result
	progress func(Progress)
	ticker   *time.Ticker
	start    time.Time
}

// tick reports progress if a tick is due.
func (r *run) tick() {
	if r.ticker == nil {
		return
	}
	select {
	case <-r.ticker.C:
		r.progress(Progress{Uploaded: r.res.Uploaded, Downloaded: r.res.Downloaded, Elapsed: time.Since(r.start)})
	default:
	}
}

// upload sends the header with the first bytes of the upload, the rest of
// it, and closes our side for writing.
func (r *run) upload(buf []byte, upload, download uint64) error {
	clear(buf)
	AppendHeader(buf[:0], download)
	first := uint64(len(buf) - HeaderSize)
	if upload < first {
		first = upload
	}
	if _, err := r.s.Write(buf[:HeaderSize+first]); err != nil {
		return fmt.Errorf("perf: uploading: %w", err)
	}
	r.res.Uploaded = first
	clear(buf[:HeaderSize])
	for r.res.Uploaded < upload {
		r.tick()
		n := min(uint64(len(buf)), upload-r.res.Uploaded)
		w, err := r.s.Write(buf[:n])
		r.res.Uploaded += uint64(w)
		if err != nil {
			return fmt.Errorf("perf: uploading: %w", err)
		}
	}
	if err := r.s.CloseWrite(); err != nil {
		return fmt.Errorf("perf: closing the upload: %w", err)
	}
	r.res.UploadTime = time.Since(r.start)
	return nil
}

// download reads until EOF and checks the server sent download bytes.
func (r *run) download(buf []byte, download uint64) error {
	for {
		r.tick()
		n, err := r.s.Read(buf)
		r.res.Downloaded += uint64(n)
		if r.res.Downloaded > download {
			return fmt.Errorf("%w: more than the %d bytes requested", ErrDownloadMismatch, download)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("perf: downloading: %w", err)
		}
	}
	r.res.DownloadTime = time.Since(r.start) - r.res.UploadTime
	if r.res.Downloaded != download {
		return fmt.Errorf("%w: %d bytes, requested %d", ErrDownloadMismatch, r.res.Downloaded, download)
	}
	return nil
}
