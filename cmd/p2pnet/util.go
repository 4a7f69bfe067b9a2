package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// parseSize parses a byte count such as "1048576", "64KiB", "256MiB",
// "1GiB" or "10MB".
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   uint64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	}
	mult := uint64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a unit such as KiB, MiB or GiB", s)
	}
	if n != 0 && n*mult/n != mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// sizeFlag is a flag.Value holding a byte count.
type sizeFlag uint64

func (f *sizeFlag) String() string { return formatBytes(uint64(*f)) }

func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f = sizeFlag(n)
	return nil
}

// formatBytes prints a byte count with a binary unit.
func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// formatBits prints a rate in bits per second with a decimal unit, as
// iperf does.
func formatBits(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.2f kbit/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f bit/s", bps)
}

// parsePeerAddr parses MADDR/p2p/ID.
func parsePeerAddr(s string) (*peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return nil, fmt.Errorf("address %q must end in /p2p/<peer ID>: %w", s, err)
	}
	if len(info.Addrs) == 0 {
		return nil, fmt.Errorf("address %q has no transport part before /p2p/", s)
	}
	return info, nil
}

// clientTarget holds the flags of commands that connect to one peer.
type clientTarget struct {
	timeout *time.Duration
}

// clientFlags adds the connecting flags to fl.
func clientFlags(fl *flag.FlagSet) clientTarget {
	return clientTarget{timeout: fl.Duration("timeout", 30*time.Second, "give up connecting after `DURATION`")}
}

// connect starts a host that does not listen and connects it to the
// peer at addr (MADDR/p2p/ID).
func (c clientTarget) connect(ctx context.Context, addr string) (*p2pnet.Host, *peer.AddrInfo, error) {
	info, err := parsePeerAddr(addr)
	if err != nil {
		return nil, nil, err
	}
	h, err := p2pnet.New(p2pnet.ListenAddrs())
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, *c.timeout)
	defer cancel()
	if err := h.Connect(cctx, *info); err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("connecting to %s at %s: %w", info.ID, info.Addrs[0], err)
	}
	return h, info, nil
}

// emitJSON prints one JSON object on a line.
func emitJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
