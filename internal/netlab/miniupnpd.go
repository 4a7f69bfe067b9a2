package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MiniUPnPd is miniupnpd (Debian: miniupnpd-nftables) running on a
// router: UPnP IGD and NAT-PMP on the router's private side, port
// forwards in nftables tables of its own next to the lab's.
type MiniUPnPd struct {
	*Proc
	router *Router
	dir    string
}

// MiniUPnPdConfig says what the daemon serves.
type MiniUPnPdConfig struct {
	UPnP, NATPMP bool
	// STUN is the host:port of a STUN server on the public segment.
	// miniupnpd refuses to forward ports when its public interface has a
	// reserved address (the lab's documentation range is one) unless a
	// STUN server tells it that this address is what the world sees and
	// that nothing filters what comes in.
	STUN string
}

// miniupnpdTables are the daemon's nftables tables and chains, as
// Debian's nft_init.sh makes them: its rules go in the chains it names
// in its configuration; the base chains jump there.
const miniupnpdTables = `table inet miniupnpd {
	chain forward {
		type filter hook forward priority filter; policy accept;
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump postrouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`

// AvailableMiniUPnPd reports why miniupnpd cannot run here, or "".
func AvailableMiniUPnPd() string {
	if _, err := exec.LookPath("miniupnpd"); err != nil {
		if _, err := os.Stat("/usr/sbin/miniupnpd"); err != nil {
			return "miniupnpd is not installed (Debian: apt-get install miniupnpd-nftables)"
		}
	}
	return ""
}

// StartMiniUPnPd runs miniupnpd in r's namespace until the test ends:
// public interface "wan", serving the private side "lan", any host of
// 10.0.0.0/8 allowed to map ports 1024-65535 to itself (secure mode).
// The lab's forward filter lets in what miniupnpd forwards (ct status
// dnat). It returns once the daemon listens and port forwarding is
// enabled. Without miniupnpd it skips (fails under CI=true).
func (r *Router) StartMiniUPnPd(t testing.TB, cfg MiniUPnPdConfig) *MiniUPnPd {
	t.Helper()
	if why := AvailableMiniUPnPd(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("netlab: %s (CI=true: these tests must run)", why)
		}
		t.Skipf("netlab: %s", why)
	}
	bin, err := exec.LookPath("miniupnpd")
	if err != nil {
		bin = "/usr/sbin/miniupnpd"
	}
	l := r.lab
	l.nft(r.NS, miniupnpdTables)
	l.run(r.NS, "nft", "insert", "rule", "ip", "filter", "forward", "ct", "status", "dnat", "accept")
	dir := t.TempDir()
	yes := map[bool]string{true: "yes", false: "no"}
	host, port, _ := strings.Cut(cfg.STUN, ":")
	conf := fmt.Sprintf(`ext_ifname=wan
listening_ip=lan
enable_upnp=%s
enable_natpmp=%s
secure_mode=yes
system_uptime=no
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=%s
lease_file=%s
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
uuid=3f1e6b3a-6c55-4a2b-9d56-6d1c2b5a7e01
allow 1024-65535 10.0.0.0/8 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`, yes[cfg.UPnP], yes[cfg.NATPMP], host, port, filepath.Join(dir, "leases"))
	confFile := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its log (stderr under -d) is read as the process's output.
	p := r.Start(t, "/bin/sh", "-c", `exec "$0" -d -f "$1" -P "$2" 2>&1`, bin, confFile, filepath.Join(dir, "pid"))
	d := &MiniUPnPd{Proc: p, router: r, dir: dir}
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	enabled, http, pmp := false, !cfg.UPnP, !cfg.NATPMP
	for !enabled || !http || !pmp {
		select {
		case s, ok := <-p.Lines():
			if !ok {
				t.Fatal("netlab: miniupnpd exited")
			}
			t.Logf("%s: %s", r.NS, s)
			enabled = enabled || strings.Contains(s, "Port forwarding is now enabled")
			http = http || strings.Contains(s, "HTTP listening on port")
			pmp = pmp || strings.Contains(s, "Listening for NAT-PMP")
			if strings.Contains(s, "Port forwarding is now disabled") || strings.Contains(s, "Port forwarding is impossible") {
				t.Fatalf("netlab: miniupnpd will not forward: %s", s)
			}
		case <-deadline.C:
			t.Fatal("netlab: miniupnpd did not get ready within 15 s")
		}
	}
	// Keep logging what it says, until it is stopped at the end.
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for s := range p.Lines() {
			t.Logf("%s: %s", r.NS, s)
		}
	}()
	t.Cleanup(func() {
		p.Stop()
		<-logged
	})
	return d
}

// Forwards returns the port forwards miniupnpd has in nftables now: one
// line per rule of its DNAT chain.
func (d *MiniUPnPd) Forwards(t testing.TB) []string {
	t.Helper()
	out := d.router.Output(t, "nft", "list", "chain", "inet", "miniupnpd", "prerouting_miniupnpd")
	var rules []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "dnat") {
			rules = append(rules, strings.TrimSpace(l))
		}
	}
	return rules
}

// Output runs a command inside n's namespace and returns its standard
// output, failing the test on error.
func (n *Node) Output(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.NS}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("netlab: %s in %s: %v", strings.Join(args, " "), n.NS, err)
	}
	return string(out)
}

// Terminate sends SIGTERM, so that the process ends the way a program
// asked to stop does (a p2pnet host removes its port mappings); Wait
// then waits for it.
func (p *Proc) Terminate() error { return p.cmd.Process.Signal(syscall.SIGTERM) }
