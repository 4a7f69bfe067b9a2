package nat

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ErrNoDefaultRoute is returned when the system has no IPv4 default
// route through a gateway.
var ErrNoDefaultRoute = errors.New("nat: no IPv4 default route through a gateway")

// procNetRoute is Linux's IPv4 routing table.
const procNetRoute = "/proc/net/route"

// defaultGateway returns the gateway of the IPv4 default route: the
// NAT-PMP server's address. It reads Linux's /proc/net/route; elsewhere
// it fails, and only UPnP is tried.
func defaultGateway() (netip.Addr, error) {
	f, err := os.Open(procNetRoute)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %w", ErrNoDefaultRoute, err)
	}
	defer f.Close()
	return parseRoutes(io.LimitReader(f, 1<<20))
}

// parseRoutes returns the gateway of the default route of lowest metric
// in a table in /proc/net/route's format: a header line, then per route
// the interface, destination, gateway, flags, refcount, use, metric and
// mask, addresses in hex (see hexIPv4).
func parseRoutes(r io.Reader) (netip.Addr, error) {
	const (
		rtfUp      = 0x1
		rtfGateway = 0x2
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 4096)
	var best netip.Addr
	bestMetric := uint64(1<<64 - 1)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		dst, err1 := hexIPv4(f[1])
		gw, err2 := hexIPv4(f[2])
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		metric, err4 := strconv.ParseUint(f[6], 10, 32)
		mask, err5 := hexIPv4(f[7])
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			continue
		}
		if !dst.IsUnspecified() || !mask.IsUnspecified() || flags&(rtfUp|rtfGateway) != rtfUp|rtfGateway || gw.IsUnspecified() {
			continue
		}
		if metric < bestMetric {
			best, bestMetric = gw, metric
		}
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("nat: reading routes: %w", err)
	}
	if !best.IsValid() {
		return netip.Addr{}, ErrNoDefaultRoute
	}
	return best, nil
}

// hexIPv4 decodes an address as /proc/net/route writes it: the 4 bytes
// of the address read as a number in the machine's byte order, in 8 hex
// digits.
func hexIPv4(s string) (netip.Addr, error) {
	if len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("nat: route address %q: want 8 hex digits", s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nat: route address %q: %w", s, err)
	}
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}
