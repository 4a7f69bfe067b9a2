// Package netlab builds small networks of Linux network namespaces for
// tests: a "public" segment (198.51.100.0/24, a bridge in a namespace of
// its own) with hosts and NAT routers on it, and behind each router a
// private segment (10.N.0.0/24) with one host. Routers translate with
// nftables: masquerade for an endpoint-independent (cone) NAT,
// masquerade random,fully-random for an endpoint-dependent (symmetric)
// one; unsolicited packets from the public side are dropped, as a home
// router does.
//
// Everything lives in namespaces the lab creates, named with a prefix
// unique to the test (it carries the process ID), and is deleted by
// t.Cleanup even when the test fails; New first deletes namespaces left
// by earlier runs whose process is gone. No namespace has a route to the
// machine's own interfaces: there is no veth into the root namespace and
// no default route out of the lab.
//
// It needs root and the ip and nft commands. Under CI=true a lab that
// cannot be built fails the test with the reason; elsewhere it skips.
//
// Package netlab is test machinery: it imports only the standard
// library.
package netlab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// namePrefix starts the name of every namespace a lab makes.
const namePrefix = "p2pl"

// cmdTimeout bounds each ip or nft command.
const cmdTimeout = 10 * time.Second

// PublicNet is the public segment's prefix; its /24 addresses are
// handed out from .10 up.
const PublicNet = "198.51.100"

// NATKind is how a router maps private addresses to its public one.
type NATKind int

const (
	// Cone is an endpoint-independent mapping (nft masquerade keeps the
	// source port when it can): hole punching works through it.
	Cone NATKind = iota
	// Symmetric maps each connection to a random port
	// (masquerade random,fully-random): hole punching fails through it.
	Symmetric
)

// Lab is one test's network.
type Lab struct {
	t      testing.TB
	prefix string
	bridge string // namespace of the public bridge

	mu      sync.Mutex // guards the following
	nss     []string
	nextPub int
	nextNet int
	ports   int
	nextIn  map[string]int // next host number in each other public range
	nets    []string       // the public ranges on the segment (PublicNet first)
	wans    []wan          // every namespace on the public segment
}

// wan is a namespace's interface on the public segment.
type wan struct{ ns, ifname, net string }

// Node is a namespace with an address: a host on the public segment or
// behind a router.
type Node struct {
	lab  *Lab
	NS   string // the namespace's name
	Addr string // its IPv4 address
}

// Router is a NAT router between the public segment and a private one.
type Router struct {
	Node        // its public side
	LAN  string // its private address, the gateway of its host
	net  int
}

// Available reports why a lab cannot be built here, or "" when it can.
func Available() string {
	if os.Geteuid() != 0 {
		return "network namespace lab needs root"
	}
	for _, c := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Sprintf("network namespace lab needs the %s command (Debian: apt-get install iproute2 nftables)", c)
		}
	}
	return ""
}

// New builds an empty lab with its public segment, or skips (fails under
// CI=true) when it cannot.
func New(t testing.TB) *Lab {
	t.Helper()
	if why := Available(); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("netlab: %s (CI=true: these tests must run)", why)
		}
		t.Skipf("netlab: %s", why)
	}
	sweepStale(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	l := &Lab{t: t, prefix: fmt.Sprintf("%s-%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(rnd[:])), nextPub: 10, nextNet: 1}
	t.Cleanup(l.close)
	l.bridge = l.newNS("sw")
	l.run(l.bridge, "ip", "link", "add", "br0", "type", "bridge")
	l.run(l.bridge, "ip", "link", "set", "br0", "up")
	return l
}

// runStart is when this process started, for the sweep.
var runStart = time.Now()

// sweepStale deletes namespaces of earlier runs: named with the lab's
// prefix, made by a process that no longer exists, before this run.
func sweepStale(t testing.TB) {
	ents, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range ents {
		parts := strings.SplitN(e.Name(), "-", 4)
		if len(parts) < 4 || parts[0] != namePrefix {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + parts[1]); err == nil {
			continue // its process still runs
		}
		if info, err := e.Info(); err == nil && info.ModTime().After(runStart) {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", e.Name()).CombinedOutput(); err != nil {
			t.Logf("netlab: deleting stale namespace %s: %v: %s", e.Name(), err, out)
		}
	}
}

// close deletes every namespace of the lab.
func (l *Lab) close() {
	l.mu.Lock()
	nss := l.nss
	l.nss = nil
	l.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", nss[i]).CombinedOutput(); err != nil {
			l.t.Errorf("netlab: deleting namespace %s: %v: %s", nss[i], err, out)
		}
	}
}

// newNS creates a namespace named after role, with loopback up.
func (l *Lab) newNS(role string) string {
	name := l.prefix + "-" + role
	l.runRoot("ip", "netns", "add", name)
	l.mu.Lock()
	l.nss = append(l.nss, name)
	l.mu.Unlock()
	l.run(name, "ip", "link", "set", "lo", "up")
	return name
}

// runRoot runs a command in the root namespace (only ip netns add/del
// and ip -n, which act inside namespaces), failing the test on error.
func (l *Lab) runRoot(args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// run runs a command inside ns, failing the test on error.
func (l *Lab) run(ns string, args ...string) {
	l.t.Helper()
	l.runRoot(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Run runs a command inside n's namespace and fails the test on error.
func (n *Node) Run(args ...string) {
	n.lab.t.Helper()
	n.lab.run(n.NS, args...)
}

// attach joins ns to the public bridge with a veth pair whose ns end is
// called ifname, and gives that end the next public address.
func (l *Lab) attach(ns, ifname string) string { return l.attachIn(ns, ifname, PublicNet) }

// attachIn is attach with an address from net, a /24 prefix such as
// "192.0.2". Every range on the segment is on-link for every namespace
// on it, so hosts of different ranges (different /16s, as different
// networks of the internet look to a peer) reach each other directly.
func (l *Lab) attachIn(ns, ifname, net string) string {
	l.mu.Lock()
	l.ports++
	port := fmt.Sprintf("p%d", l.ports)
	var addr string
	if net == PublicNet {
		addr = fmt.Sprintf("%s.%d", net, l.nextPub)
		l.nextPub++
	} else {
		if l.nextIn == nil {
			l.nextIn = map[string]int{}
		}
		n := max(l.nextIn[net], 10)
		l.nextIn[net] = n + 1
		addr = fmt.Sprintf("%s.%d", net, n)
	}
	if len(l.nets) == 0 {
		l.nets = []string{PublicNet}
	}
	isNew := !slices.Contains(l.nets, net)
	if isNew {
		l.nets = append(l.nets, net)
	}
	nets := slices.Clone(l.nets)
	others := slices.Clone(l.wans)
	l.wans = append(l.wans, wan{ns, ifname, net})
	l.mu.Unlock()
	l.runRoot("ip", "-n", l.bridge, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns)
	l.runRoot("ip", "-n", l.bridge, "link", "set", port, "master", "br0", "up")
	l.runRoot("ip", "-n", ns, "addr", "add", addr+"/24", "dev", ifname)
	l.runRoot("ip", "-n", ns, "link", "set", ifname, "up")
	for _, n := range nets {
		if n != net {
			l.runRoot("ip", "-n", ns, "route", "add", n+".0/24", "dev", ifname)
		}
	}
	if isNew {
		for _, w := range others {
			l.runRoot("ip", "-n", w.ns, "route", "add", net+".0/24", "dev", w.ifname)
		}
	}
	return addr
}

// AddPublicHostIn adds a host on the public segment with an address
// from net, another /24 documentation range such as "192.0.2" or
// "203.0.113": a peer in another network, for what needs reports from
// several networks (confirming an observed address, a NAT's type).
func (l *Lab) AddPublicHostIn(role, net string) *Node {
	ns := l.newNS(role)
	return &Node{lab: l, NS: ns, Addr: l.attachIn(ns, "eth0", net)}
}

// AddPublicHost adds a host on the public segment.
func (l *Lab) AddPublicHost(role string) *Node {
	ns := l.newNS(role)
	return &Node{lab: l, NS: ns, Addr: l.attach(ns, "eth0")}
}

// AddNAT adds a router of the given kind on the public segment with a
// private segment 10.N.0.0/24 behind it, and one host on that segment
// (10.N.0.2, default route through the router's 10.N.0.1). It returns
// the router and the host.
func (l *Lab) AddNAT(role string, kind NATKind) (*Router, *Node) {
	l.mu.Lock()
	n := l.nextNet
	l.nextNet++
	l.mu.Unlock()
	rns := l.newNS(role + "-nat")
	r := &Router{Node: Node{lab: l, NS: rns, Addr: l.attach(rns, "wan")}, LAN: fmt.Sprintf("10.%d.0.1", n), net: n}
	hns := l.newNS(role)
	l.runRoot("ip", "-n", rns, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", hns)
	l.runRoot("ip", "-n", rns, "addr", "add", r.LAN+"/24", "dev", "lan")
	l.runRoot("ip", "-n", rns, "link", "set", "lan", "up")
	host := &Node{lab: l, NS: hns, Addr: fmt.Sprintf("10.%d.0.2", n)}
	l.runRoot("ip", "-n", hns, "addr", "add", host.Addr+"/24", "dev", "eth0")
	l.runRoot("ip", "-n", hns, "link", "set", "eth0", "up")
	l.runRoot("ip", "-n", hns, "route", "add", "default", "via", r.LAN)
	l.run(rns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	masq := "masquerade"
	if kind == Symmetric {
		masq = "masquerade random,fully-random"
	}
	rules := fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" %s
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "wan" accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state established,related accept
		iifname "wan" drop
	}
}
`, masq)
	l.nft(rns, rules)
	return r, host
}

// Forward makes the router forward port (proto "tcp" or "udp") of its
// public address to the same port of its host: the port forward a user
// sets up by hand on a home router.
func (r *Router) Forward(proto string, port int, host *Node) {
	r.lab.t.Helper()
	r.lab.nft(r.NS, fmt.Sprintf(`table ip forward {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan" %[1]s dport %[2]d dnat to %[3]s
	}
}
add rule ip filter forward iifname "wan" ip daddr %[3]s %[1]s dport %[2]d accept
`, proto, port, host.Addr))
}

// nft loads rules into ns's nftables.
func (l *Lab) nft(ns, rules string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: nft in %s: %v: %s\n%s", ns, err, out, rules)
	}
}

// Proc is a process running in a namespace. Its standard output is read
// line by line; standard error goes to the test log.
type Proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// Start starts bin with args inside n's namespace. The process is
// killed and waited for at the end of the test, if it is still running.
func (n *Node) Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS, bin}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &logWriter{t: t, prefix: n.NS}
	if err := cmd.Start(); err != nil {
		t.Fatalf("netlab: starting %s in %s: %v", bin, n.NS, err)
	}
	p := &Proc{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		cmd.Wait()
	}()
	t.Cleanup(p.Stop)
	return p
}

// Lines returns the process's standard output, line by line; it is
// closed when the output ends.
func (p *Proc) Lines() <-chan string { return p.lines }

// Wait waits up to d for the process to exit by itself, discarding the
// output it still writes, and reports whether it did. A process that
// exits closes its connections the way a program does (a QUIC peer then
// learns at once that they are gone), which a killed one cannot.
func (p *Proc) Wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case _, ok := <-p.lines:
			if !ok {
				<-p.done
				return true
			}
		case <-t.C:
			return false
		}
	}
}

// Stop kills the process and waits for it.
func (p *Proc) Stop() {
	p.cmd.Process.Kill()
	for range p.lines { // let the reader finish
	}
	<-p.done
}

// logWriter sends a process's standard error to the test log.
type logWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.t.Logf("%s: %s", w.prefix, w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

var _ io.Writer = (*logWriter)(nil)
