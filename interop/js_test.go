package interop

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// jsDir holds the js-libp2p programs and their pinned dependencies.
const jsDir = "js"

// jsStartTimeout bounds a js-libp2p node's start, up to printing its
// address.
const jsStartTimeout = 30 * time.Second

// startJSListener runs js/listener.mjs, a js-libp2p node listening on
// loopback TCP with only the given security protocols ("noise", "tls" or
// both, comma-separated), and returns its address. The node is stopped
// when the test ends; what it wrote to stderr is logged if the test
// failed.
func startJSListener(t *testing.T, security string) peer.AddrInfo {
	t.Helper()
	addr := startJSNode(t, "js-libp2p listener", "libp2p", "listener.mjs", security)
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		t.Fatalf("the js-libp2p listener printed %s: %v", addr, err)
	}
	return *ai
}

// startJSNode runs `node script args...` in interop/js, which must have
// the npm package pkg installed, and returns the multiaddr the node
// prints as its first line. The node exits when its standard input
// closes (so it dies with this process), is killed 5 s after the test
// ends if it has not, and what it wrote to stderr is logged if the test
// failed. what names the node in messages.
func startJSNode(t *testing.T, what, pkg, script string, args ...string) ma.Multiaddr {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js 20 or later) is needed for the js-libp2p tests: %v", err)
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", pkg, "package.json")); err != nil {
		t.Fatalf("%s is not installed: run `npm ci --prefix interop/js` from the repository root (%v)", pkg, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = jsDir
	cmd.WaitDelay = 5 * time.Second
	stdout := &firstLine{line: make(chan string, 1)}
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting the %s: %v", what, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cancel() // kills the node
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("%s (%v) stderr:\n%s", what, waitErr, stderr.String())
		}
	})

	var line string
	select {
	case line = <-stdout.line:
	case <-exited:
		t.Fatalf("the %s exited before printing its address: %v\n%s", what, waitErr, stderr.String())
	case <-time.After(jsStartTimeout):
		t.Fatalf("the %s printed no address within %v\n%s", what, jsStartTimeout, stderr.String())
	}
	addr, err := ma.NewMultiaddr(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the %s printed %q: %v", what, line, err)
	}
	return addr
}

// firstLine is an io.Writer that sends the first line written to it on
// line and discards everything else.
type firstLine struct {
	mu   sync.Mutex // guards the following
	buf  []byte
	sent bool
	line chan string // capacity 1
}

func (w *firstLine) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(b), nil
	}
	w.buf = append(w.buf, b...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.line <- string(w.buf[:i])
		w.sent = true
		w.buf = nil
	}
	return len(b), nil
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecurityFallbackJS: p2pnet hosts preferring either protocol connect
// to js-libp2p listeners that speak only one, and both sides then use
// the connection: an echo and a ping from us, and a ping from the
// js-libp2p node to us over the same connection. A second connection
// after a disconnect agrees on the same protocol.
func TestSecurityFallbackJS(t *testing.T) {
	for _, order := range securityOrders {
		for _, security := range securities {
			t.Run(order.name+"/"+security+"-only", func(t *testing.T) {
				js := startJSListener(t, security)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				us := defaultHost(t, order.opts...)
				for round := range 2 {
					if err := us.Connect(ctx, js); err != nil {
						t.Fatalf("round %d: connecting to a %s-only js-libp2p node at %v: %v", round, security, js.Addrs, err)
					}
					checkSecurity(t, us, js.ID, securityIDs[security])
					exchange(ctx, t, us, js.ID)
					pingBack(ctx, t, us, js.ID)
					us.Network().ClosePeer(js.ID)
				}
			})
		}
	}
}

// pingBack asks the js-libp2p node p to ping us over the connection we
// opened, and checks its answer.
func pingBack(ctx context.Context, t *testing.T, us *p2pnet.Host, p peer.ID) {
	t.Helper()
	s, err := us.NewStream(ctx, p, "/interop/ping-back/1.0.0")
	if err != nil {
		t.Fatalf("ping-back stream: %v", err)
	}
	defer s.Close()
	if err := s.CloseWrite(); err != nil {
		t.Fatalf("ping-back: %v", err)
	}
	answer, err := io.ReadAll(s)
	if err != nil || string(answer) != "ok\n" {
		t.Errorf("js-libp2p pinging us: %q, %v", answer, err)
	}
}
