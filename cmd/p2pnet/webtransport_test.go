package main

import (
	"strings"
	"testing"
)

// TestPingPerfWebTransport: `p2pnet listen --listen …/quic-v1/webtransport`
// prints an address with the certificate hashes to dial, and ping and
// perf dial it, by IP and by name.
func TestPingPerfWebTransport(t *testing.T) {
	addr := startListener(t, "/ip4/127.0.0.1/udp/0/quic-v1/webtransport")
	if !strings.Contains(addr, "/quic-v1/webtransport/certhash/") || strings.Count(addr, "/certhash/") != 2 || !strings.Contains(addr, "/p2p/12D3KooW") {
		t.Fatalf("listen printed %q; want a WebTransport address with two certificate hashes", addr)
	}
	byName := strings.Replace(addr, "/ip4/127.0.0.1/", "/dns4/localhost/", 1)
	for _, a := range []string{addr, byName} {
		code, out, errs := runCmd(t, "ping", "-c", "2", "-i", "10ms", a)
		if code != 0 || !strings.Contains(out, "2 transmitted, 2 received") {
			t.Errorf("ping %s: exit %d, %s%s", a, code, out, errs)
		}
		code, out, errs = runCmd(t, "perf", "--upload", "1MiB", "--download", "1MiB", a)
		if code != 0 || !strings.Contains(out, "download    1.00 MiB in ") {
			t.Errorf("perf %s: exit %d, %s%s", a, code, out, errs)
		}
	}
	// A hash that names no certificate of the listener: the dial fails.
	i := strings.Index(addr, "/certhash/")
	bad := addr[:i] + "/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g" + addr[strings.Index(addr, "/p2p/"):]
	if code, _, _ := runCmd(t, "ping", "-c", "1", bad); code != 1 {
		t.Errorf("ping with a wrong certificate hash exited %d; want 1", code)
	}
}
