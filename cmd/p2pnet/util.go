package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/swarm"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// ---- flag values ----

// parseSeconds parses a duration as ping(8) takes it, a number of
// seconds ("1", "0.2"), or as Go writes it ("200ms", "1m30s").
func parseSeconds(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(math.Round(f * float64(time.Second))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want seconds (1, 0.2) or a duration (200ms, 1m)")
	}
	return d, nil
}

// durationFlag is a flag.Value holding a duration given as seconds or as
// a Go duration (see parseSeconds), at least min; 0 is accepted too when
// zeroOK.
type durationFlag struct {
	d      time.Duration
	min    time.Duration
	zeroOK bool
}

func (f *durationFlag) String() string {
	if f == nil {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := parseSeconds(s)
	switch {
	case err != nil:
		return err
	case d == 0 && f.zeroOK:
	case d <= 0:
		return errors.New("must be positive")
	case d < f.min:
		return fmt.Errorf("must be at least %v", f.min)
	}
	f.d = d
	return nil
}

// countFlag is a flag.Value holding a count of at least 1; 0 means not
// set.
type countFlag int

func (c *countFlag) String() string { return strconv.Itoa(int(*c)) }

func (c *countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return errors.New("want a whole number")
	case n < 1:
		return errors.New("must be at least 1")
	}
	*c = countFlag(n)
	return nil
}

// choiceFlag is a flag.Value holding one of a few words.
type choiceFlag struct {
	value   string
	choices []string
}

func (c *choiceFlag) String() string {
	if c == nil {
		return ""
	}
	return c.value
}

func (c *choiceFlag) Set(s string) error {
	for _, ch := range c.choices {
		if strings.EqualFold(s, ch) {
			c.value = ch
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(c.choices))
}

// orList writes words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// sizeUnits are the units parseSize knows, matched without regard to
// case: decimal with B (kB = 1000 bytes), binary with iB or alone (KiB =
// K = 1024 bytes), as iperf3 takes K, M and G.
var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// decimal matches a non-negative decimal number.
var decimal = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// parseSize parses a byte count: a number, possibly with a fraction,
// and a unit such as "1.5GiB", "100MB", "64KiB" or "1048576". A fraction
// of a byte is rounded to the nearest byte.
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	lower := strings.ToLower(t)
	mult := uint64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, ok := new(big.Rat).SetString(t)
	if !ok || !decimal.MatchString(t) {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit, such as 1048576, 64KiB, 1.5GiB or 100MB", s)
	}
	n.Mul(n, new(big.Rat).SetInt(new(big.Int).SetUint64(mult)))
	// Round half up: floor(n + 1/2).
	n.Add(n, big.NewRat(1, 2))
	whole := new(big.Int).Quo(n.Num(), n.Denom())
	if !whole.IsUint64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return whole.Uint64(), nil
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
	case n >= 1<<40:
		return fmt.Sprintf("%.2f TiB", float64(n)/(1<<40))
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

// bitsPerSecond is the rate of n bytes in d, 0 when d is not positive.
func bitsPerSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds()
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round3 rounds x to three decimals, for JSON: milliseconds to the
// microsecond.
func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// ---- connecting to a peer ----

// parsePeerAddr parses MADDR/p2p/ID.
func parsePeerAddr(s string) (*peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("failed to parse multiaddr %q: ", s))
		return nil, usagef("address %q: %s", s, cleanMessage(msg))
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return nil, usagef("address %q must end in /p2p/ and the peer ID", s)
	}
	if len(info.Addrs) == 0 {
		return nil, usagef("address %q has no transport part before /p2p/", s)
	}
	return info, nil
}

// cidrsFlag collects a repeated CIDR flag (--public-cidr), each range
// checked as it is given.
type cidrsFlag []string

func (f *cidrsFlag) String() string { return strings.Join(*f, ",") }

func (f *cidrsFlag) Set(s string) error {
	if _, err := netip.ParsePrefix(s); err != nil {
		return fmt.Errorf("want an address range such as 198.51.100.0/24 or 2001:db8::/32")
	}
	*f = append(*f, s)
	return nil
}

// publicCIDRHelp is the help of --public-cidr.
const publicCIDRHelp = "count the addresses in `CIDR` as public for hole punching (repeatable), beyond the global unicast " +
	"addresses outside the private, shared and documentation ranges: a lab of network namespaces can so use 198.51.100.0/24"

// clientTarget holds the flags of commands that connect to one peer.
type clientTarget struct {
	timeout      durationFlag
	allowLimited *bool
	// refuseLimited: the command offers --allow-limited, so a peer
	// reachable only over a limited connection is an error without it.
	refuseLimited bool
	// listen and publicCIDRs are --listen and --public-cidr, for a
	// command that takes part in hole punching (holePunchFlags).
	listen      stringsFlag
	publicCIDRs cidrsFlag
}

// holePunchFlags adds --listen and --public-cidr to fl: with a listen
// address, a command connected to a peer through a relay takes part in
// hole punching from that address, as any host does.
func (c *clientTarget) holePunchFlags(fl *flag.FlagSet) {
	fl.Var(&c.listen, "listen", "listen on `MADDR` (repeatable), the address hole punching through a relay punches from "+
		"(TCP or QUIC, port 0 for any); default: none, so a connection through a relay stays relayed")
	fl.Var(&c.publicCIDRs, "public-cidr", publicCIDRHelp)
}

// clientFlags adds the connecting flags to fl: --timeout, and
// --allow-limited if the command offers it.
func clientFlags(fl *flag.FlagSet, allowLimited bool) *clientTarget {
	c := &clientTarget{timeout: durationFlag{d: 30 * time.Second, min: time.Millisecond}, allowLimited: new(bool)}
	fl.Var(&c.timeout, "timeout", "give up connecting after `DURATION` (seconds or a duration)")
	if allowLimited {
		fl.BoolVar(c.allowLimited, "allow-limited", false, "run over a limited (relayed) connection too")
		c.refuseLimited = true
	}
	return c
}

// streamContext returns ctx for opening streams: allowed on limited
// connections if --allow-limited says so.
func (c *clientTarget) streamContext(ctx context.Context) context.Context {
	if *c.allowLimited {
		return network.WithAllowLimitedConn(ctx, "p2pnet command line")
	}
	return ctx
}

// session is a host connected to the peer a command works with.
type session struct {
	h    *p2pnet.Host
	peer peer.ID
	// addr is the address of the connection, dns names resolved.
	addr ma.Multiaddr
	// connectTime is how long connecting took.
	connectTime time.Duration
}

// connect starts a host that does not listen and connects it to the
// peer at addr (MADDR/p2p/ID).
func (c *clientTarget) connect(ctx context.Context, addr string) (*session, error) {
	info, err := parsePeerAddr(addr)
	if err != nil {
		return nil, err
	}
	opts := []p2pnet.Option{p2pnet.ListenAddrs()}
	if len(c.listen) > 0 {
		for _, l := range c.listen {
			if _, err := ma.NewMultiaddr(l); err != nil {
				return nil, usagef("--listen %q: %s", l, cleanMessage(strings.TrimPrefix(err.Error(), fmt.Sprintf("failed to parse multiaddr %q: ", l))))
			}
		}
		opts = []p2pnet.Option{p2pnet.ListenAddrStrings(c.listen...)}
	}
	if len(c.publicCIDRs) > 0 {
		opts = append(opts, p2pnet.PublicCIDRs(c.publicCIDRs...))
	}
	h, err := p2pnet.New(opts...)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(c.streamContext(ctx), c.timeout.d)
	defer cancel()
	start := time.Now()
	if len(c.listen) > 0 {
		if err := connectRelay(cctx, h, info.Addrs[0]); err != nil {
			h.Close()
			return nil, err
		}
	}
	if err := h.Connect(cctx, *info); err != nil {
		h.Close()
		ce := &connectError{peer: info.ID, addr: info.Addrs[0], err: err}
		if ctx.Err() == nil && cctx.Err() != nil {
			ce.timeout = c.timeout.d
		}
		return nil, ce
	}
	s := &session{h: h, peer: info.ID, addr: info.Addrs[0], connectTime: time.Since(start)}
	if err := c.checkLimited(h, info.ID); err != nil {
		h.Close()
		return nil, err
	}
	if conns := h.Network().ConnsToPeer(info.ID); len(conns) > 0 {
		s.addr = conns[0].RemoteMultiaddr()
		// Once identify has told which protocols the peer serves,
		// opening a stream for one it lacks fails at once with a clear
		// error, instead of with the reset that follows its refusal.
		select {
		case <-h.Identify().IdentifyWait(conns[0]):
		case <-cctx.Done():
		}
	}
	return s, nil
}

// connectRelay connects h to the relay of addr, if addr is a circuit
// address (/…/p2p/RELAY/p2p-circuit), and waits for identify on that
// connection: then h knows the address the relay observes it at (its
// listen port, as the NAT maps it), which it offers when the peer starts
// a hole punch as soon as the relayed connection arrives.
func connectRelay(ctx context.Context, h *p2pnet.Host, addr ma.Multiaddr) error {
	relay, _ := ma.SplitFunc(addr, func(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT })
	if len(relay) == len(addr) {
		return nil // not a circuit address
	}
	info, err := peer.AddrInfoFromP2pAddr(relay)
	if err != nil || len(info.Addrs) == 0 {
		return nil // h.Connect says what is wrong with the address
	}
	if err := h.Connect(ctx, *info); err != nil {
		ce := &connectError{peer: info.ID, addr: info.Addrs[0], err: err}
		return &explained{msg: "relay: " + ce.Error(), err: ce}
	}
	for _, c := range h.Network().ConnsToPeer(info.ID) {
		select {
		case <-h.Identify().IdentifyWait(c):
		case <-ctx.Done():
		}
	}
	return nil
}

// connectError is a failure to connect, worded for a person: the peer
// and address once, then why.
type connectError struct {
	peer    peer.ID
	addr    ma.Multiaddr
	err     error
	timeout time.Duration // the --timeout that expired, if it did
}

func (e *connectError) Error() string {
	msg := fmt.Sprintf("connecting to %s at %s: %s", e.peer, e.addr, reason(e.err))
	var de *swarm.DialError
	if errors.As(e.err, &de) {
		switch len(de.Addrs) {
		case 0:
		case 1:
			msg = fmt.Sprintf("connecting to %s at %s: %s", e.peer, de.Addrs[0].Addr, reason(de.Addrs[0].Err))
		default:
			msg = fmt.Sprintf("connecting to %s: %s", e.peer, reason(de))
		}
	}
	if e.timeout > 0 {
		msg += fmt.Sprintf(" (--timeout %v)", e.timeout)
	}
	return msg
}

func (e *connectError) Unwrap() error { return e.err }

// ---- errors for people ----

// explained is an error whose message is written for a person, with the
// error it explains underneath for errors.Is and errors.As.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// withReason wraps err with what failed, saying why in reason's words.
func withReason(what string, err error) error {
	return &explained{msg: what + ": " + reason(err), err: err}
}

// errorText is err's message as a command prints it: one line, each
// layer once. Errors made with withReason, and connecting errors, are
// worded already; others are as their packages wrote them.
func errorText(err error) string {
	return cleanMessage(oneLine(err.Error()))
}

// reason says why an operation failed, from what the error is rather
// than its layered message where the layers are known: "connection
// refused", "timed out", "the node there is …".
func reason(err error) string {
	var (
		de       *swarm.DialError
		mismatch *sec.MismatchError
		up       *upgrader.UpgradeError
		ns       *multistream.NotSupportedError
		errno    syscall.Errno
	)
	switch {
	case errors.As(err, &de):
		return dialReason(de)
	case errors.As(err, &mismatch):
		return fmt.Sprintf("the node there is %s", mismatch.Actual)
	case errors.As(err, &up) && notMultistream(err):
		return "the remote did not speak multistream-select (is it a libp2p node?)"
	case errors.As(err, &up) && (errors.Is(up.Err, io.EOF) || errors.Is(up.Err, io.ErrUnexpectedEOF)):
		return "the remote closed the connection during the " + up.Step + " (a libp2p node refusing us, or not a libp2p node)"
	case errors.As(err, &up):
		return up.Step + " failed: " + reason(up.Err)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &ns):
		names := make([]string, len(ns.Protocols))
		for i, p := range ns.Protocols {
			names[i] = string(p)
		}
		return "the peer does not serve " + orList(names)
	case errors.Is(err, io.EOF) && errors.Is(err, net.ErrClosed):
		return "the remote closed the connection"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return cleanMessage(oneLine(err.Error()))
}

// notMultistream reports whether err says the remote answered with
// something other than multistream-select.
func notMultistream(err error) bool {
	for _, e := range []error{multistream.ErrHeaderMismatch, multistream.ErrMalformed,
		multistream.ErrTooLarge, multistream.ErrUnexpectedResponse} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// dialReason says why each address of a failed dial failed.
func dialReason(de *swarm.DialError) string {
	if len(de.Addrs) == 0 {
		if de.Cause == nil {
			return "no address to dial"
		}
		return reason(de.Cause)
	}
	parts := make([]string, len(de.Addrs))
	for i, a := range de.Addrs {
		parts[i] = a.Addr.String() + ": " + reason(a.Err)
	}
	return strings.Join(parts, "; ")
}

// layerTags are the prefixes the packages of p2pnet put on their error
// messages ("yamux: ", "multistream: ").
var layerTags = map[string]bool{
	"p2pnet": true, "swarm": true, "upgrader": true, "multistream": true, "noise": true, "tls": true,
	"yamux": true, "quic": true, "tcp": true, "ping": true, "perf": true, "identify": true,
	"rcmgr": true, "crypto": true, "peer": true, "resolver": true,
}

// cleanMessage drops the repeats of a package's prefix from an error
// message: "yamux: stream reset: yamux: connection closed: yamux: read:
// EOF" becomes "yamux: stream reset: connection closed: read: EOF". The
// command's own "p2pnet CMD:" counts, so a leading "p2pnet: " goes.
func cleanMessage(msg string) string {
	seen := map[string]bool{"p2pnet": true}
	parts := strings.Split(msg, ": ")
	out := parts[:0]
	for _, p := range parts {
		if layerTags[p] {
			if seen[p] {
				continue
			}
			seen[p] = true
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// oneLine joins a multi-line error message (errors.Join, a dial error
// that lists every address) into one line.
func oneLine(msg string) string {
	lines := strings.Split(msg, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// ---- output ----

// printer writes a command's results: lines of text, or with --json one
// JSON object per line.
type printer struct {
	w    io.Writer
	json bool
}

// textf prints a line of text, unless the output is JSON.
func (p printer) textf(format string, a ...any) {
	if !p.json {
		fmt.Fprintf(p.w, format+"\n", a...)
	}
}

// emit prints v as a JSON line, if the output is JSON.
func (p printer) emit(v any) {
	if p.json {
		json.NewEncoder(p.w).Encode(v)
	}
}

// errorLine is the JSON line of a failure.
type errorLine struct {
	Type  string `json:"type"` // "error"
	Peer  string `json:"peer,omitempty"`
	Error string `json:"error"`
}

// fail prints err as a JSON line if the output is JSON, and returns it
// for run to print on stderr.
func (p printer) fail(peerID string, err error) error {
	if p.json && !errors.Is(err, errUsage) {
		p.emit(errorLine{Type: "error", Peer: peerID, Error: errorText(err)})
	}
	return err
}

// ---- for listen and limits ----

// logFlags are the logging flags of commands that run long.
type logFlags struct {
	level  choiceFlag
	format choiceFlag
}

// addLogFlags adds --log-level and --log-format to fs.
func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{
		level:  choiceFlag{value: "info", choices: []string{"debug", "info", "warn", "error"}},
		format: choiceFlag{value: "text", choices: []string{"text", "json"}},
	}
	fs.Var(&l.level, "log-level", "log messages of `LEVEL` and above: debug, info, warn or error")
	fs.Var(&l.format, "log-format", "log as `FORMAT`: text (key=value) or json (one object a line)")
	return l
}

// logger returns a logger writing to w as the flags say.
func (l *logFlags) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(l.level.value)) // one of the choices: never fails
	opts := &slog.HandlerOptions{Level: level}
	if l.format.value == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// connAttrs are the log attributes of a connection: peer, address,
// direction and transport, and for a transport that is upgraded (TCP,
// WebSocket) the security protocol and the muxer. QUIC brings its own.
func connAttrs(c network.Conn) []any {
	st := c.ConnState()
	attrs := []any{"peer", c.RemotePeer(), "addr", c.RemoteMultiaddr(), "dir", c.Stat().Direction}
	if st.Transport != "" {
		attrs = append(attrs, "transport", st.Transport)
	}
	if st.Security != "" {
		attrs = append(attrs, "security", st.Security)
	}
	if st.StreamMultiplexer != "" {
		attrs = append(attrs, "muxer", st.StreamMultiplexer)
	}
	return attrs
}

// memorySize matches a memory limit that rcmgr writes with a unit.
var memorySize = regexp.MustCompile(`"Memory":"([0-9]+)(KiB|MiB|GiB|TiB)"`)

// writeLimits writes l as JSON that rcmgr.LoadLimits reads, with every
// memory size a number of bytes, like every count: one form for all.
// (rcmgr writes a size with a unit when one divides it.)
func writeLimits(w io.Writer, l rcmgr.Limits) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	b = memorySize.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := memorySize.FindSubmatch(m)
		n, _ := strconv.ParseUint(string(sub[1]), 10, 64) // digits only; limits fit in int64
		shift := map[string]uint{"KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[string(sub[2])]
		return fmt.Appendf(nil, `"Memory":%d`, n<<shift)
	})
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// checkLimited fails when the command refuses limited connections and
// every connection to p is limited, naming what the relay allows.
func (c *clientTarget) checkLimited(h *p2pnet.Host, p peer.ID) error {
	if !c.refuseLimited || *c.allowLimited {
		return nil
	}
	conns := h.Network().ConnsToPeer(p)
	for _, cn := range conns {
		if !cn.Stat().Limited {
			return nil
		}
	}
	if len(conns) == 0 {
		return nil
	}
	what := "a limited amount of data and time"
	if l, ok := conns[0].(interface{ Limit() (time.Duration, int64) }); ok {
		if d, data := l.Limit(); d > 0 || data > 0 {
			var parts []string
			if data > 0 {
				parts = append(parts, formatBytes(uint64(data))+" each way")
			}
			if d > 0 {
				parts = append(parts, d.String())
			}
			what = strings.Join(parts, " and ")
		}
	}
	return fmt.Errorf("%s is reachable only through a relay at %s, which allows %s per connection; run with --allow-limited to use it anyway",
		p, conns[0].RemoteMultiaddr(), what)
}
