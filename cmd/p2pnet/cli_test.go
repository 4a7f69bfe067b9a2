package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/swarm"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// A peer ID and an address nobody listens on, for errors that come
// before any dial.
const (
	somePeer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	someAddr = "/ip4/127.0.0.1/tcp/1/p2p/" + somePeer
)

// TestHelp: help goes to stdout when asked for, with each command's
// arguments and an example; without a command, the usage goes to stderr.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		code, out, errs := runCmd(t, args...)
		if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: p2pnet COMMAND") {
			t.Errorf("p2pnet %q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	code, out, errs := runCmd(t)
	if code != 2 || out != "" || !strings.HasPrefix(errs, "usage: p2pnet COMMAND") {
		t.Errorf("p2pnet: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			code, out, errs := runCmd(t, args...)
			if code != 0 || errs != "" {
				t.Errorf("p2pnet %q: exit %d, stderr %q", args, code, errs)
				continue
			}
			if !strings.HasPrefix(out, "usage: "+synopsis(c)+"\n") || !strings.Contains(out, "\nexamples:\n  p2pnet "+c.name+" ") ||
				!strings.Contains(out, "\nflags") {
				t.Errorf("p2pnet %q printed:\n%s", args, out)
			}
			if c.args != "" && (!strings.Contains(out, "\narguments:\n  "+c.args+"\n") || !strings.Contains(out, "\nflags (before or after the arguments):\n")) {
				t.Errorf("p2pnet %q does not explain %s:\n%s", args, c.args, out)
			}
		}
	}
	// -h anywhere, even with arguments.
	code, out, _ = runCmd(t, "ping", someAddr, "-h")
	if code != 0 || !strings.Contains(out, "\n  -c N\n") || !strings.Contains(out, "\n  --json\n") || !strings.Contains(out, "(default 10s)") {
		t.Errorf("ping ADDR -h: exit %d:\n%s", code, out)
	}
}

// TestUsageErrors: a bad command line exits 2, saying what is wrong on
// the first line of stderr and the usage on the second, before
// connecting to anything.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ping", "-i", "0", someAddr}, `p2pnet ping: invalid value "0" for flag -i: must be positive`},
		{[]string{"ping", "-i", "-1s", someAddr}, `p2pnet ping: invalid value "-1s" for flag -i: must be positive`},
		{[]string{"ping", "-i", "5ms", someAddr}, `p2pnet ping: invalid value "5ms" for flag -i: must be at least 10ms`},
		{[]string{"ping", "-i", "0.001", someAddr}, `p2pnet ping: invalid value "0.001" for flag -i: must be at least 10ms`},
		{[]string{"ping", someAddr, "-i", "soon"}, `p2pnet ping: invalid value "soon" for flag -i: want seconds (1, 0.2) or a duration (200ms, 1m)`},
		{[]string{"ping", "-c", "0", someAddr}, `p2pnet ping: invalid value "0" for flag -c: must be at least 1`},
		{[]string{"ping", "-c", "-3", someAddr}, `p2pnet ping: invalid value "-3" for flag -c: must be at least 1`},
		{[]string{"ping", "-c", "2.5", someAddr}, `p2pnet ping: invalid value "2.5" for flag -c: want a whole number`},
		{[]string{"ping", "-W", "0", someAddr}, `p2pnet ping: invalid value "0" for flag -W: must be positive`},
		{[]string{"ping", "-w", "-1", someAddr}, `p2pnet ping: invalid value "-1" for flag -w: must be positive`},
		{[]string{"ping", "--timeout", "NaN", someAddr}, `p2pnet ping: invalid value "NaN" for flag -timeout: "NaN" is not a duration`},
		{[]string{"ping", someAddr, "-c"}, `p2pnet ping: flag needs an argument: -c`},
		{[]string{"ping", "--allow-limited", someAddr}, `p2pnet ping: flag provided but not defined: -allow-limited`},
		{[]string{"ping"}, `p2pnet ping: missing MADDR/p2p/ID`},
		{[]string{"ping", someAddr, someAddr}, `p2pnet ping: unexpected argument "` + someAddr + `" after MADDR/p2p/ID`},
		{[]string{"ping", "nonsense"}, `p2pnet ping: address "nonsense": must begin with /`},
		{[]string{"ping", "/ip4/127.0.0.1/tcp/1"}, `p2pnet ping: address "/ip4/127.0.0.1/tcp/1" must end in /p2p/ and the peer ID`},
		{[]string{"ping", "/p2p/" + somePeer}, `p2pnet ping: address "/p2p/` + somePeer + `" has no transport part before /p2p/`},
		{[]string{"perf", "-t", "1s", "--upload", "1MiB", someAddr}, `p2pnet perf: -t measures for a time, --upload and --download by size: give one or the other`},
		{[]string{"perf", "--upload", "0", "--download", "0", someAddr}, `p2pnet perf: nothing to measure: --upload and --download are both 0`},
		{[]string{"perf", "--upload", "lots", someAddr}, `p2pnet perf: invalid value "lots" for flag -upload: size "lots": want a number of bytes`},
		{[]string{"perf", "-t", "0", someAddr}, `p2pnet perf: invalid value "0" for flag -t: must be positive`},
		{[]string{"perf", "-i", "1ms", someAddr}, `p2pnet perf: invalid value "1ms" for flag -i: must be at least 10ms`},
		{[]string{"perf"}, `p2pnet perf: missing MADDR/p2p/ID`},
		{[]string{"version", "extra"}, `p2pnet version: unexpected argument "extra"`},
		{[]string{"demo", "extra"}, `p2pnet demo: unexpected argument "extra"`},
		{[]string{"demo", "--size", "1.5.5MiB"}, `p2pnet demo: invalid value "1.5.5MiB" for flag -size: size "1.5.5MiB"`},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(t, tt.args...)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		if code != 2 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], tt.want) ||
			!strings.HasPrefix(lines[1], "usage: p2pnet "+tt.args[0]+" [flags]") {
			t.Errorf("p2pnet %q: exit %d, stdout %q, stderr:\n%s\nwant exit 2, %q and the usage line", tt.args, code, out, errs, tt.want)
		}
	}
}

// TestVersion: 'version' and '--version' print the module version, the
// commit (unknown in tests) and the Go version.
func TestVersion(t *testing.T) {
	_, a, _ := runCmd(t, "version")
	code, b, errs := runCmd(t, "--version")
	if code != 0 || errs != "" || a != b {
		t.Fatalf("--version: exit %d, %q, stderr %q; version printed %q", code, b, errs, a)
	}
	if !strings.HasPrefix(a, "p2pnet ") || !strings.Contains(a, runtime.Version()) || strings.Count(a, "\n") != 1 {
		t.Errorf("version printed %q", a)
	}
	code, out, _ := runCmd(t, "version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v["type"] != "result" || v["go"] != runtime.Version() || v["version"] == "" {
		t.Errorf("version --json: exit %d, %q, %v", code, out, err)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "64kib": 64 << 10, "64K": 64 << 10, "1.5GiB": 3 << 29,
		"100MB": 100e6, "1.5 MB": 1.5e6, "0.5KiB": 512, ".5K": 512, "2.": 2, "1B": 1, "1.5": 2, "1.4": 1, "1TiB": 1 << 40,
		"18446744073709551615": 1<<64 - 1,
	}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KiB", "lots", "-1", "1e3", "0x10", "1/2", "1.5.5MiB", "16777216TiB", "18446744073709551616", "1 2MB"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, got)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	good := map[string]time.Duration{
		"1": time.Second, "0.2": 200 * time.Millisecond, "5": 5 * time.Second, "200ms": 200 * time.Millisecond,
		"1m30s": 90 * time.Second, "0": 0, "-1": -time.Second, "1e-2": 10 * time.Millisecond,
	}
	for in, want := range good {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "NaN", "Inf", "1e300", "5 s"} {
		if got, err := parseSeconds(in); err == nil {
			t.Errorf("parseSeconds(%q) = %v; want an error", in, got)
		}
	}
}

// TestParseFlagsAnywhere: flags before, between and after the
// positional arguments; "--" ends the flags.
func TestParseFlagsAnywhere(t *testing.T) {
	tests := []struct {
		args       []string
		positional []string
		n          int
		v          bool
	}{
		{[]string{"a", "-n", "3", "b", "-v"}, []string{"a", "b"}, 3, true},
		{[]string{"-v", "a", "--n=4"}, []string{"a"}, 4, true},
		{[]string{"a", "--", "-n", "5"}, []string{"a", "-n", "5"}, 0, false},
		{[]string{"-", "-v=false", "-n", "-7"}, []string{"-"}, -7, false},
	}
	for _, tt := range tests {
		fs := newFlags("test", io.Discard)
		n := fs.Int("n", 0, "")
		v := fs.Bool("v", false, "")
		if err := parseFlags(fs, tt.args); err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if fmt.Sprint(fs.Args()) != fmt.Sprint(tt.positional) || *n != tt.n || *v != tt.v {
			t.Errorf("%q: args %q, -n %d, -v %v; want %q, %d, %v", tt.args, fs.Args(), *n, *v, tt.positional, tt.n, tt.v)
		}
	}
	fs := newFlags("test", io.Discard)
	if err := parseFlags(fs, []string{"a", "-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h after an argument: %v", err)
	}
}

// TestReason: errors say each layer once, in words a user knows.
func TestReason(t *testing.T) {
	want, other := peer.ID("want"), peer.ID("other")
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	upgradeErr := func(err error) error {
		return &upgrader.UpgradeError{Step: "security handshake", Direction: network.DirOutbound, Peer: "peer " + want.String(), Addr: addr, Err: err}
	}
	yamuxEOF := fmt.Errorf("%w: %w", yamux.ErrStreamReset, fmt.Errorf("%w: %w", yamux.ErrConnClosed, fmt.Errorf("yamux: read: %w", io.EOF)))
	tests := []struct {
		err  error
		want string
	}{
		{yamuxEOF, "the remote closed the connection"},
		{fmt.Errorf("ping: reading: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), "connection reset by peer"},
		{upgradeErr(&sec.MismatchError{Expected: want, Actual: other}), "the node there is " + other.String()},
		{upgradeErr(fmt.Errorf("noise: handshake: %w", multistream.ErrHeaderMismatch)), "the remote did not speak multistream-select (is it a libp2p node?)"},
		{upgradeErr(fmt.Errorf("noise: reading: multistream: reading answer: %w", io.ErrUnexpectedEOF)), "the remote closed the connection during the security handshake (a libp2p node refusing us, or not a libp2p node)"},
		{upgradeErr(errors.New("noise: bad signature")), "security handshake failed: noise: bad signature"},
		{fmt.Errorf("p2pnet: negotiating with x: %w", &multistream.NotSupportedError{Protocols: []protocol.ID{"/a", "/b"}}), "the peer does not serve /a or /b"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "timed out"},
		{fmt.Errorf("x: %w", context.Canceled), "interrupted"},
		{&swarm.DialError{Peer: want, Cause: swarm.ErrAllDialsFailed, Addrs: []swarm.AddrError{
			{Addr: addr, Err: fmt.Errorf("tcp dial %s: %w", addr, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})},
			{Addr: ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1"), Err: fmt.Errorf("quic dial: %w", context.DeadlineExceeded)},
		}}, "/ip4/127.0.0.1/tcp/4001: connection refused; /ip4/127.0.0.1/udp/4001/quic-v1: timed out"},
	}
	for _, tt := range tests {
		if got := reason(tt.err); got != tt.want {
			t.Errorf("reason(%q) = %q; want %q", tt.err, got, tt.want)
		}
	}
	if got := cleanMessage(yamuxEOF.Error()); got != "yamux: stream reset: connection closed: read: EOF" {
		t.Errorf("cleanMessage = %q", got)
	}
	if got := errorText(errors.Join(errors.New("p2pnet: listen on /a: tcp: x"), errors.New("listen on /b: quic: y"))); got != "listen on /a: tcp: x; listen on /b: quic: y" {
		t.Errorf("errorText = %q", got)
	}
}

// TestConnectErrors: a failed connection names the peer and the address
// once.
func TestConnectErrors(t *testing.T) {
	// A listener that is not a libp2p node: it sends a line of HTTP.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + strings.Repeat("x", 200)))
			io.Copy(io.Discard, c) // until the dialer gives up
			c.Close()
		}
	}()
	defer func() {
		l.Close()
		<-done
	}()
	httpAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", l.Addr().(*net.TCPAddr).Port)
	node := startHost(t, nil)
	nodeAddr, _, _ := strings.Cut(node, "/p2p/")
	tests := []struct {
		addr, want string
	}{
		{someAddr, "p2pnet ping: connecting to " + somePeer + " at /ip4/127.0.0.1/tcp/1: connection refused\n"},
		{httpAddr + "/p2p/" + somePeer, "p2pnet ping: connecting to " + somePeer + " at " + httpAddr + ": the remote did not speak multistream-select (is it a libp2p node?)\n"},
		{nodeAddr + "/p2p/" + somePeer, "p2pnet ping: connecting to " + somePeer + " at " + nodeAddr + ": the node there is " + strings.TrimPrefix(node, nodeAddr+"/p2p/") + "\n"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(t, "ping", "-c", "1", tt.addr)
		if code != 1 || out != "" || errs != tt.want {
			t.Errorf("ping %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", tt.addr, code, out, errs, tt.want)
		}
	}
	code, out, errs := runCmd(t, "perf", "--json", someAddr)
	var line struct{ Type, Error string }
	if err := json.Unmarshal([]byte(out), &line); code != 1 || err != nil || line.Type != "error" ||
		line.Error != "connecting to "+somePeer+" at /ip4/127.0.0.1/tcp/1: connection refused" || errs != "p2pnet perf: "+line.Error+"\n" {
		t.Errorf("perf --json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestWriteLimits: every memory size is a number of bytes, and the
// output loads back as the same limits.
func TestWriteLimits(t *testing.T) {
	var b bytes.Buffer
	if err := writeLimits(&b, rcmgr.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `"Memory": "`) && !strings.Contains(b.String(), `"Memory": "unlimited"`) {
		t.Errorf("a memory size is a string:\n%s", b.String())
	}
	got, err := rcmgr.LoadLimits(&b)
	if err != nil {
		t.Fatal(err)
	}
	if want := rcmgr.DefaultLimits(); got.Transient != want.Transient || got.System != want.System || got.PeerDefault != want.PeerDefault {
		t.Errorf("loaded %+v; want %+v", got, want)
	}
}

// TestLogFlags: --log-level and --log-format choose the logger; other
// values are usage errors.
func TestLogFlags(t *testing.T) {
	fs := newFlags("test", io.Discard)
	lf := addLogFlags(fs)
	if err := parseFlags(fs, []string{"--log-level", "DEBUG", "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	log := lf.logger(&b)
	log.Debug("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["level"] != "DEBUG" {
		t.Errorf("logged %q: %v", b.String(), err)
	}

	fs = newFlags("test", io.Discard)
	lf = addLogFlags(fs)
	if err := parseFlags(fs, []string{"--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	log = lf.logger(&b)
	log.Info("quiet")
	log.Warn("loud")
	if strings.Contains(b.String(), "quiet") || !strings.Contains(b.String(), "level=WARN msg=loud") {
		t.Errorf("--log-level warn logged %q", b.String())
	}

	for _, args := range [][]string{{"--log-level", "chatty"}, {"--log-format", "xml"}} {
		fs := newFlags("test", io.Discard)
		addLogFlags(fs)
		err := parseFlags(fs, args)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(ue.msg, "want ") {
			t.Errorf("%q: %v; want a usage error listing the choices", args, err)
		}
	}
}

// TestConnAttrs: connections are logged with their transport; TCP ones
// with security and muxer too.
func TestConnAttrs(t *testing.T) {
	server, err := p2pnet.New(p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, tt := range []struct {
		proto int
		want  string
	}{
		{ma.P_TCP, "transport=tcp security=/noise muxer=/yamux/1.0.0"},
		{ma.P_QUIC_V1, "transport=quic-v1"},
	} {
		client, err := p2pnet.New(p2pnet.ListenAddrs())
		if err != nil {
			t.Fatal(err)
		}
		var addrs []ma.Multiaddr
		for _, a := range server.Addrs() {
			if _, err := a.ValueForProtocol(tt.proto); err == nil {
				addrs = append(addrs, a)
			}
		}
		if err := client.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: addrs}); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		lf := addLogFlags(newFlags("test", io.Discard))
		lf.logger(&b).Info("connected", connAttrs(client.Network().ConnsToPeer(server.ID())[0])...)
		if !strings.Contains(b.String(), "peer="+server.ID().String()) || !strings.Contains(b.String(), "dir=Outbound") ||
			!strings.HasSuffix(strings.TrimSpace(b.String()), tt.want) {
			t.Errorf("logged %q; want it to end with %q", b.String(), tt.want)
		}
		client.Close()
	}
}
