package main

import (
	"fmt"
	"io"

	"github.com/p2pnet/p2pnet/proto/perf"
)

func runPerf(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("perf", stderr)
	upload := sizeFlag(64 << 20)
	download := sizeFlag(64 << 20)
	fl.Var(&upload, "upload", "bytes to send (`SIZE`, such as 64MiB)")
	fl.Var(&download, "download", "bytes to receive (`SIZE`)")
	asJSON := fl.Bool("json", false, "print one JSON object per line")
	target := clientFlags(fl)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: p2pnet perf [--upload SIZE] [--download SIZE] [--json] MADDR/p2p/ID")
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
		fmt.Fprintf(stdout, "perf to %s (%s): upload %s, download %s\n", info.ID, info.Addrs[0], formatBytes(uint64(upload)), formatBytes(uint64(download)))
	}
	var last perf.Progress
	progress := func(p perf.Progress) {
		dt := (p.Elapsed - last.Elapsed).Seconds()
		bytes := (p.Uploaded - last.Uploaded) + (p.Downloaded - last.Downloaded)
		rate := 0.0
		if dt > 0 {
			rate = float64(bytes) * 8 / dt
		}
		if *asJSON {
			emitJSON(stdout, map[string]any{"type": "progress", "elapsed_s": p.Elapsed.Seconds(),
				"uploaded": p.Uploaded, "downloaded": p.Downloaded, "bits_per_second": rate})
		} else {
			fmt.Fprintf(stdout, "[%5.1fs]  sent %10s  received %10s  %s\n", p.Elapsed.Seconds(),
				formatBytes(p.Uploaded), formatBytes(p.Downloaded), formatBits(rate))
		}
		last = p
	}
	res, err := perf.Run(ctx, h, info.ID, uint64(upload), uint64(download), progress)
	if err != nil {
		return fmt.Errorf("perf with %s: %w", info.ID, err)
	}
	if *asJSON {
		return emitJSON(stdout, map[string]any{"type": "result",
			"uploaded": res.Uploaded, "upload_s": res.UploadTime.Seconds(), "upload_bits_per_second": res.UploadBitsPerSecond(),
			"downloaded": res.Downloaded, "download_s": res.DownloadTime.Seconds(), "download_bits_per_second": res.DownloadBitsPerSecond()})
	}
	fmt.Fprintf(stdout, "upload    %10s in %6.3fs  %s\n", formatBytes(res.Uploaded), res.UploadTime.Seconds(), formatBits(res.UploadBitsPerSecond()))
	fmt.Fprintf(stdout, "download  %10s in %6.3fs  %s\n", formatBytes(res.Downloaded), res.DownloadTime.Seconds(), formatBits(res.DownloadBitsPerSecond()))
	return nil
}
