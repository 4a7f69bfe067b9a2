package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport/websocket"
	"github.com/p2pnet/p2pnet/transport/webtransport"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	ma "github.com/multiformats/go-multiaddr"
)

// browserDir holds the browser page (index.html, page.js) and its pinned
// dependencies (js-libp2p and esbuild).
const browserDir = "browser"

// Bounds of the browser test.
const (
	browserTestTimeout = 3 * time.Minute  // everything, browser start included
	browserPageTimeout = 30 * time.Second // what the page allows itself
	browserEchoSize    = 1 << 20
)

// browserAgent is the p2pnet node's agent version in the browser test.
const browserAgent = "p2pnet-browser-test"

// browserResult is what the page puts in window.p2pnetResult.
type browserResult struct {
	OK          bool    `json:"ok"`
	Error       string  `json:"error"`
	RemotePeer  string  `json:"remotePeer"`
	RemoteAddr  string  `json:"remoteAddr"`
	Encryption  string  `json:"encryption"`
	Multiplexer string  `json:"multiplexer"`
	RTTMs       float64 `json:"rttMs"`
	Identify    struct {
		Peer            string   `json:"peer"`
		AgentVersion    string   `json:"agentVersion"`
		ProtocolVersion string   `json:"protocolVersion"`
		Protocols       []string `json:"protocols"`
		ListenAddrs     []string `json:"listenAddrs"`
		ObservedAddr    string   `json:"observedAddr"`
	} `json:"identify"`
	Echo struct {
		Bytes    int    `json:"bytes"`
		Sent     string `json:"sent"`
		Received string `json:"received"`
		Match    bool   `json:"match"`
	} `json:"echo"`
}

// browserCase is one way for the page to reach a p2pnet node.
type browserCase struct {
	name       string // the subtest's
	listen     string // the node's listen address
	transport  string // the node's ConnectionState.Transport for the browser's connection
	encryption string // what the page reports of its connection
	muxer      string
}

// browserCases are the transports a browser can use to reach a p2pnet
// node; the page dials whatever address it is given. Over WebTransport,
// js-libp2p reports the connection's security and streams as the
// transport's own ("native", "/webtransport"): Noise only authenticates
// the session, and WebTransport streams carry the libp2p streams.
var browserCases = []browserCase{
	{name: "WebSocket", listen: "/ip4/127.0.0.1/tcp/0/ws", transport: websocket.Name, encryption: "/noise", muxer: "/yamux/1.0.0"},
	{name: "WebTransport", listen: "/ip4/127.0.0.1/udp/0/quic-v1/webtransport", transport: webtransport.Name, encryption: "native", muxer: "/webtransport"},
}

// TestBrowser runs a js-libp2p node in a page in headless Chromium that
// reaches a p2pnet node over each of browserCases: it dials, identifies
// (agent, protocols, the dialed address among the listen addresses),
// pings, and echoes 1 MiB with SHA-256 checksums compared on both sides;
// the p2pnet node identifies the browser's node. Chromium is Debian's
// chromium package; without it the test skips, except under CI=true,
// where it fails.
func TestBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTestTimeout)
	defer cancel()
	pageURL := servePage(t, ctx)

	var console, output lockedBuffer
	browser := startChromium(t, ctx, chromium, &output)
	for _, bc := range browserCases {
		t.Run(bc.name, func(t *testing.T) {
			testBrowser(t, browser, pageURL, bc, &console)
		})
	}
	if t.Failed() {
		t.Logf("the pages' console:\n%s", console.String())
		t.Logf("Chromium's output:\n%s", output.String())
	}
}

func testBrowser(t *testing.T, browser context.Context, pageURL string, bc browserCase, console *lockedBuffer) {
	h, err := p2pnet.New(p2pnet.ListenAddrStrings(bc.listen), p2pnet.UserAgent(browserAgent))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	// The echo handler waits for the node's identify of the browser
	// before answering, so that it is over when the page has its echo;
	// it reports what it received and what identify learnt.
	type echoed struct {
		sum       string
		n         int
		agent     string
		transport string
		err       error
	}
	echoes := make(chan echoed, 1)
	h.SetStreamHandler(wsEchoID, func(s network.Stream) {
		var e echoed
		defer func() { echoes <- e }()
		<-h.Identify().IdentifyWait(s.Conn())
		if v, err := h.Peerstore().Get(s.Conn().RemotePeer(), "AgentVersion"); err == nil {
			e.agent, _ = v.(string)
		}
		e.transport = s.Conn().ConnState().Transport
		b, err := io.ReadAll(s)
		if err != nil {
			e.err = err
			s.Reset()
			return
		}
		sum := sha256.Sum256(b)
		e.sum, e.n = hex.EncodeToString(sum[:]), len(b)
		if _, err := s.Write(b); err != nil {
			e.err = err
			s.Reset()
			return
		}
		s.Close()
	})

	addrs := h.P2PAddrs()
	if len(addrs) != 1 {
		t.Fatalf("the node listens on %v; want one address", addrs)
	}
	dial := addrs[0]
	q := url.Values{
		"addr":    {dial.String()},
		"echo":    {wsEchoID},
		"size":    {fmt.Sprint(browserEchoSize)},
		"timeout": {fmt.Sprint(browserPageTimeout.Milliseconds())},
	}
	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	if err := logConsole(tab, console); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(pageURL+"?"+q.Encode())); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	// The page sets its result once it is done, or has failed, within
	// browserPageTimeout.
	res, err := chromedp.Run(tab, chromedp.Poll[browserResult]("window.p2pnetResult",
		chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(browserPageTimeout+10*time.Second)))
	if err != nil {
		t.Fatalf("waiting for the page's result: %v", err)
	}
	if !res.OK {
		t.Fatalf("the page failed: %s", res.Error)
	}
	t.Logf("page: connected over %s (%s, %s), ping %.0f ms, echoed %d bytes; identify: %s",
		res.RemoteAddr, res.Encryption, res.Multiplexer, res.RTTMs, res.Echo.Bytes, res.Identify.AgentVersion)

	// What the page saw.
	if res.RemotePeer != h.ID().String() || res.Identify.Peer != h.ID().String() {
		t.Errorf("the page reached %s (identify: %s); want %s", res.RemotePeer, res.Identify.Peer, h.ID())
	}
	if want, _ := peer.SplitAddr(dial); !ma.StringCast(res.RemoteAddr).Equal(dial) && !ma.StringCast(res.RemoteAddr).Equal(want) {
		t.Errorf("the page's connection goes to %s; it dialed %s", res.RemoteAddr, dial)
	}
	if res.Encryption != bc.encryption || res.Multiplexer != bc.muxer {
		t.Errorf("the page's connection: encryption %q, multiplexer %q; want %q, %q", res.Encryption, res.Multiplexer, bc.encryption, bc.muxer)
	}
	if res.RTTMs < 0 {
		t.Errorf("ping RTT %v ms", res.RTTMs)
	}
	if !res.Echo.Match || res.Echo.Bytes != browserEchoSize {
		t.Errorf("echo: %d bytes back, checksum sent %s, received %s", res.Echo.Bytes, res.Echo.Sent, res.Echo.Received)
	}
	if res.Identify.AgentVersion != browserAgent {
		t.Errorf("identify: agent %q; want %q", res.Identify.AgentVersion, browserAgent)
	}
	for _, want := range []string{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", wsEchoID} {
		if !slices.Contains(res.Identify.Protocols, want) {
			t.Errorf("identify: protocols %v lack %s", res.Identify.Protocols, want)
		}
	}
	listen, _ := peer.SplitAddr(dial)
	if !slices.ContainsFunc(res.Identify.ListenAddrs, func(s string) bool {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return false
		}
		a, _ = peer.SplitAddr(a)
		return a.Equal(listen)
	}) {
		t.Errorf("identify: listen addresses %v lack %s", res.Identify.ListenAddrs, listen)
	}

	// What the node saw.
	select {
	case e := <-echoes:
		if e.err != nil {
			t.Errorf("the node's echo: %v", e.err)
		}
		if e.n != browserEchoSize || e.sum != res.Echo.Sent {
			t.Errorf("the node received %d bytes with SHA-256 %s; the page sent %d with %s", e.n, e.sum, browserEchoSize, res.Echo.Sent)
		}
		if e.transport != bc.transport {
			t.Errorf("the node's connection is over %q; want %q", e.transport, bc.transport)
		}
		if e.agent == "" {
			t.Error("the node learnt no agent version from the browser's identify")
		}
	default:
		t.Error("the node's echo handler did not run")
	}
}

// chromiumPath returns the Chromium to run: $P2PNET_CHROMIUM, or chromium
// on $PATH. Without one the test skips, or fails under CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("P2PNET_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "Chromium is needed for the browser test (Debian: apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// servePage bundles browser/page.js with esbuild into a fresh directory
// and serves it, with index.html, on loopback until the test ends. It
// returns the page's URL.
func servePage(t *testing.T, ctx context.Context) string {
	t.Helper()
	esbuild := filepath.Join(browserDir, "node_modules", ".bin", "esbuild")
	for _, pkg := range []string{"esbuild", "libp2p", "@libp2p/websockets"} {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("%s is not installed: run `npm ci --prefix interop/browser` from the repository root (%v)", pkg, err)
		}
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, filepath.Join("node_modules", ".bin", "esbuild"), "page.js",
		"--bundle", "--format=esm", "--platform=browser", "--target=chrome120", "--log-level=warning",
		"--outfile="+filepath.Join(dir, "page.js"))
	cmd.Dir = browserDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bundling the page with %s: %v\n%s", esbuild, err, out)
	}
	html, err := os.ReadFile(filepath.Join(browserDir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), html, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("page server: %v", err)
		}
	})
	return "http://" + l.Addr().String() + "/"
}

// startChromium starts headless Chromium and returns its browser context;
// the browser stops when the test ends. What it prints goes to output.
func startChromium(t *testing.T, ctx context.Context, path string, output io.Writer) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(output),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now, so that its start counts in no page's time.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v\n%s", path, err, output)
	}
	return browser
}

// logConsole writes what tab's pages log, and their uncaught exceptions,
// to console.
func logConsole(tab context.Context, console io.Writer) error {
	return chromedp.Listen(tab, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			}
			fmt.Fprintf(console, "console.%s: %s\n", ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			what := d.Text
			if d.Exception != nil {
				what += " " + d.Exception.Description
			}
			fmt.Fprintf(console, "exception at %s:%d: %s\n", d.URL, d.LineNumber, what)
		}
	})
}
