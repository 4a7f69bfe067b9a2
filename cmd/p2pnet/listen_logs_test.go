package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestListenLogs: --log-format json logs one object a line; a QUIC
// connection is logged with its transport, a TCP one with its security
// and muxer too; --log-level warn leaves the connections out; a bad
// value is a usage error.
func TestListenLogs(t *testing.T) {
	for _, tt := range []struct {
		listen string
		want   map[string]string
	}{
		{"/ip4/127.0.0.1/tcp/0", map[string]string{"transport": "tcp", "security": "/noise", "muxer": "/yamux/1.0.0"}},
		{"/ip4/127.0.0.1/udp/0/quic-v1", map[string]string{"transport": "quic-v1"}},
	} {
		addr, stop := runListener(t, "--listen", tt.listen, "--log-format", "json", "--log-level", "debug")
		code, _, errs := runCmd(t, "ping", "-c", "1", addr)
		stderr := stop()
		if code != 0 {
			t.Fatalf("ping exit %d: %s", code, errs)
		}
		var connected map[string]any
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line %q is not JSON: %v", l, err)
			}
			if rec["msg"] == "connected" {
				connected = rec
			}
		}
		if connected == nil {
			t.Fatalf("no connection logged:\n%s", stderr)
		}
		for _, k := range []string{"transport", "security", "muxer"} {
			if got, _ := connected[k].(string); got != tt.want[k] {
				t.Errorf("%s: logged %s=%q; want %q", tt.listen, k, got, tt.want[k])
			}
		}
	}

	addr, stop := runListener(t, "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn")
	code, _, errs := runCmd(t, "ping", "-c", "1", addr)
	if stderr := stop(); code != 0 || stderr != "" {
		t.Errorf("--log-level warn: ping exit %d (%s); listen logged %q", code, errs, stderr)
	}

	for _, args := range [][]string{{"listen", "--log-level", "chatty"}, {"listen", "--log-format", "xml"}, {"listen", "extra"}} {
		code, _, errs := runCmd(t, args...)
		if code != 2 || !strings.Contains(errs, "\nusage: p2pnet listen [flags]") {
			t.Errorf("p2pnet %q: exit %d, stderr %q; want a usage error", args, code, errs)
		}
	}
}

// TestLimitsOneForm: 'p2pnet limits' prints every memory size as a
// number of bytes, like every count.
func TestLimitsOneForm(t *testing.T) {
	code, out, errs := runCmd(t, "limits")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(out, `"Memory": "`) && !strings.Contains(out, `"Memory": "unlimited"`) {
		t.Errorf("a memory size is a string:\n%s", out)
	}
	if !strings.Contains(out, `"Memory": `) {
		t.Errorf("no memory limit printed:\n%s", out)
	}
}
