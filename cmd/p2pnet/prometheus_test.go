package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/attack"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// needTool returns the path of a program the test needs, skipping the
// test when it is missing, except under CI=true, where it fails.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (Debian: apt-get install %s)", name, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freeLoopbackPort returns a TCP port of 127.0.0.1 that was free a
// moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// buildCLI builds the p2pnet command into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "p2pnet")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a program the test started; stop ends it.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits; after 10 s it kills. It returns the
// program's exit error.
func (p *process) stop(t *testing.T) error {
	if p.done == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10 s of SIGTERM; killed", p.cmd.Path)
		p.cmd.Process.Kill()
		err = <-p.done
	}
	p.done = nil
	return err
}

// promQuery asks Prometheus at base for the value of an instant query
// whose result is a single number; ok is false when it has no result.
func promQuery(t *testing.T, base, query string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, false // not ready yet
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	if r.Status != "success" {
		t.Fatalf("query %s: %s %s", query, r.Status, r.Error)
	}
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %s: value %q: %v", query, s, err)
	}
	return v, true
}

// TestPrometheusScrapesListen runs `p2pnet listen --metrics` and a real
// Prometheus server scraping it every second, both on loopback; drives
// ping, perf and a stream flood that the node refuses against the node;
// and checks through Prometheus's HTTP API that the series arrived with
// the values the traffic implies.
func TestPrometheusScrapesListen(t *testing.T) {
	prom := needTool(t, "prometheus", "prometheus")
	begin := time.Now()
	bin := buildCLI(t)
	dir := t.TempDir()

	// The node, its metrics on a port it picks.
	listen := exec.Command(bin, "listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", "127.0.0.1:0",
		"--log-format", "json")
	stdout, err := listen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := listen.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	node := start(t, listen)
	metricsURL := make(chan string, 1)
	logDone := make(chan struct{})
	var logs lockedBuffer
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(&logs, sc.Text())
			var rec struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving metrics" {
				metricsURL <- rec.URL
			}
		}
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("listen printed no address; stderr:\n%s", logs.String())
	}
	nodeAddr := sc.Text()
	go io.Copy(io.Discard, stdout)
	var target string
	select {
	case u := <-metricsURL:
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		target = pu.Host
	case <-time.After(10 * time.Second):
		t.Fatalf("listen logged no metrics address; stderr:\n%s", logs.String())
	}
	if h, _, _ := net.SplitHostPort(target); h != "127.0.0.1" {
		t.Fatalf("metrics served at %s, want loopback", target)
	}

	// Prometheus, scraping the node every second.
	promPort := freeLoopbackPort(t)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"+
		"scrape_configs:\n  - job_name: p2pnet\n    static_configs:\n      - targets: ['%s']\n", target)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var promLog lockedBuffer
	pcmd := exec.Command(prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort), "--log.level=warn")
	pcmd.Stdout, pcmd.Stderr = &promLog, &promLog
	promProc := start(t, pcmd)
	base := "http://127.0.0.1:" + strconv.Itoa(promPort)

	// Traffic: three pings, a perf run, and a flood of streams that never
	// name a protocol, which the resource manager refuses beyond its
	// limits.
	if out, err := exec.Command(bin, "ping", "-c", "3", "-i", "0.05", nodeAddr).CombinedOutput(); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	const upload, download = 3 << 20, 1 << 20
	if out, err := exec.Command(bin, "perf", "--upload", strconv.Itoa(upload), "--download", strconv.Itoa(download), "-i", "0", nodeAddr).CombinedOutput(); err != nil {
		t.Fatalf("perf: %v\n%s", err, out)
	}
	ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(nodeAddr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flood, err := attack.StartStreamFlood(ctx, attack.StreamFloodConfig{Target: ai.ID, Addr: ai.Addrs[0], Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = flood.WaitFor(ctx, func(s attack.StreamFloodStats) bool { return s.Reset > 0 })
	flood.Close()
	if err != nil {
		t.Fatalf("the node refused none of the flood's streams: %v (%+v)", err, flood.Stats())
	}
	t.Logf("flood: %+v", flood.Stats())

	// What Prometheus must see: each query's value lies in [min, max].
	// ping -c 3 echoes four payloads: its first round trip sets the
	// stream up. perf runs one stream per direction.
	checks := []struct {
		query string
		min   float64
		max   float64
	}{
		{`up{job="p2pnet"}`, 1, 1},
		{`p2pnet_ping_echoes_total`, 4, 4},
		{`p2pnet_ping_streams_served_total{outcome="ok"}`, 1, 1},
		{`p2pnet_perf_runs_served_total{outcome="ok"}`, 2, 2},
		{`p2pnet_perf_bytes_total{direction="in"}`, upload, upload},
		{`p2pnet_perf_bytes_total{direction="out"}`, download, download},
		{`sum(p2pnet_swarm_connections_opened_total{transport="tcp",security="/noise",muxer="/yamux/1.0.0",direction="inbound",ip_version="ip4"})`, 3, 1e9},
		{`p2pnet_swarm_protocol_streams_total{protocol="/perf/1.0.0",direction="inbound"}`, 2, 2},
		{`sum(p2pnet_rcmgr_refusals_total)`, 1, 1e9},
		{`sum(p2pnet_swarm_streams_opened_total{direction="inbound"})`, 10, 1e9},
		{`sum(p2pnet_rcmgr_limit{scope="system",resource="ConnsInbound"})`, 1, 1e9},
		{`count(p2pnet_rcmgr_kind_use)`, 1, 1e9},
	}
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for _, c := range checks {
		for {
			v, ok := promQuery(t, base, c.query)
			if ok && v >= c.min && v <= c.max {
				t.Logf("%s = %v", c.query, v)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus: %s = %v (present: %v), want %v..%v\nprometheus log:\n%s\nnode log:\n%s",
					c.query, v, ok, c.min, c.max, promLog.String(), logs.String())
			}
			<-tick.C
		}
	}
	if err := promProc.stop(t); err != nil {
		t.Errorf("prometheus exited with %v:\n%s", err, promLog.String())
	}
	if err := node.stop(t); err != nil {
		t.Errorf("listen exited with %v:\n%s", err, logs.String())
	}
	<-logDone
	t.Logf("Prometheus end-to-end: %v", time.Since(begin).Round(time.Millisecond))
}
