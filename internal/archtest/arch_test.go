package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"path"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const module = "github.com/p2pnet/p2pnet"

// forbiddenModules may appear only in the interop module.
var forbiddenModules = []string{
	"github.com/libp2p/",
	"github.com/multiformats/go-multistream",
	"github.com/multiformats/go-multiaddr-dns",
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestNoGoLibp2pInBuildList(t *testing.T) {
	mods := goList(t, "list", "-m", "all")
	if len(mods) < 2 || mods[0] != module {
		t.Fatalf("go list -m all did not list the main module first: %q", mods)
	}
	for _, m := range mods {
		for _, bad := range forbiddenModules {
			if strings.HasPrefix(m, bad) {
				t.Errorf("the main module's build list contains %s; only interop/ may use go-libp2p modules", m)
			}
		}
	}
}

// allowed lists, for each package of ours, the packages of ours it may
// import (directly or not). A package not listed here may import anything
// below the host; the table grows as layers are added.
var allowed = map[string][]string{
	"protocol":  {},
	"crypto":    {},
	"peer":      {"crypto"},
	"peerstore": vocabulary,
	"network":   with(vocabulary, "peerstore"),

	"multistream":     {"protocol"},
	"sec":             mechanism,
	"sec/noise":       with(mechanism, "sec"),
	"sec/tls":         with(mechanism, "sec"),
	"mux/yamux":       mechanism,
	"transport":       mechanism,
	"upgrader":        with(mechanism, "transport", "multistream", "sec", "connmgr"),
	"rcmgr":           mechanism,
	"rcmgr/rcmgrprom": with(mechanism, "rcmgr"),
	"connmgr":         mechanism,
	"event":           mechanism,

	"transport/tcp":  with(mechanism, "transport", "upgrader", "multistream", "sec", "connmgr"),
	"transport/quic": with(mechanism, "transport", "sec", "sec/tls", "connmgr"),
	"swarm":          with(mechanism, "transport", "connmgr"),
	"proto/ping":     with(mechanism, "multistream"),
	"proto/identify": with(mechanism, "multistream"),
	"proto/perf":     with(mechanism, "multistream"),
	"record":         vocabulary,
	"proto/relay":    with(mechanism, "record"),

	"proto/holepunch": mechanism,
	"proto/autonat":   mechanism,
	"nat":             mechanism,
	"internal/netlab": {},
	// labcmd imports only the standard library (its own test checks).
	"internal/netlab/labcmd": {},

	"transport/websocket": with(mechanism, "transport", "upgrader", "multistream", "sec", "connmgr"),

	"transport/webtransport": with(mechanism, "transport", "transport/quic", "sec", "sec/tls", "sec/noise", "connmgr"),

	"transport/circuit": with(mechanism, "transport", "upgrader", "multistream", "sec", "proto/relay", "record", "connmgr"),

	// metrics sits above the mechanisms and the swarm, whose tracers it
	// implements, and below the host, which alone imports it.
	"metrics": with(mechanism, "swarm", "transport", "connmgr", "event", "rcmgr", "rcmgr/rcmgrprom", "multistream", "sec",
		"record", "proto/identify", "proto/perf", "proto/ping", "proto/relay", "proto/holepunch"),
}

var (
	vocabulary = []string{"crypto", "peer", "protocol"}
	mechanism  = with(vocabulary, "peerstore", "network")
)

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

func TestLayering(t *testing.T) {
	pkgs := goList(t, "list", module+"/...")
	known := map[string]bool{}
	for _, p := range pkgs {
		known[strings.TrimPrefix(strings.TrimPrefix(p, module), "/")] = true
	}
	for pkg, ok := range allowed {
		if !known[pkg] {
			continue // not written yet
		}
		okSet := map[string]bool{pkg: true}
		for _, a := range ok {
			okSet[a] = true
		}
		deps := goList(t, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", path.Join(module, pkg))
		for _, d := range deps {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			rel := strings.TrimPrefix(d, module+"/")
			if strings.HasPrefix(rel, "internal/") {
				continue
			}
			if !okSet[rel] {
				t.Errorf("%s imports %s, which is above it", pkg, rel)
			}
		}
	}
}
