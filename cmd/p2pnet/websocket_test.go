package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/internal/testcert"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/transport/websocket"

	ma "github.com/multiformats/go-multiaddr"
)

// TestPingPerfWebSocket: `listen --listen …/ws` prints a dialable /ws
// address, and ping and perf reach it, by IP and by name.
func TestPingPerfWebSocket(t *testing.T) {
	addr := startListener(t, "/ip4/127.0.0.1/tcp/0/ws")
	if !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") || !strings.Contains(addr, "/ws/p2p/12D3KooW") {
		t.Fatalf("listen printed %q; want a loopback /ws address with /p2p/", addr)
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
}

// TestListenTLSWebSocket: with --tls-cert and --tls-key, `listen` serves
// /tls/ws with that certificate: a host trusting its authority connects
// by name and pings. Without them, or with only one, it fails.
func TestListenTLSWebSocket(t *testing.T) {
	dir := t.TempDir()
	roots, cert := testcert.Server(t, "localhost")
	certFile, keyFile := testcert.WritePEM(t, dir, cert)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := signalContext
	signalContext = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	defer func() { signalContext = old }()
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"listen", "--listen", "/ip4/127.0.0.1/tcp/0/tls/ws", "--tls-cert", certFile, "--tls-key", keyFile}, pw, &stderr)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("listen printed no address; stderr: %s", stderr.String())
	}
	addr := ma.StringCast(sc.Text())
	go io.Copy(io.Discard, pr)
	ai, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil || len(ai.Addrs) != 1 || !strings.HasSuffix(ai.Addrs[0].String(), "/tls/ws") {
		t.Fatalf("listen printed %s (%v); want a /tls/ws address", addr, err)
	}
	port, _ := ai.Addrs[0].ValueForProtocol(ma.P_TCP)
	h, err := p2pnet.New(p2pnet.ListenAddrStrings(), p2pnet.WebSocketOptions(websocket.WithDialTLSConfig(&tls.Config{RootCAs: roots})))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	byName := ma.StringCast("/dns4/localhost/tcp/" + port + "/wss")
	if err := h.Connect(cctx, peer.AddrInfo{ID: ai.ID, Addrs: []ma.Multiaddr{byName}}); err != nil {
		t.Fatalf("connecting to %s: %v", byName, err)
	}
	if _, err := ping.PingOnce(cctx, h, ai.ID); err != nil {
		t.Errorf("ping over /tls/ws: %v", err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("listen exited %d: %s", code, stderr.String())
	}

	for _, args := range [][]string{
		{"listen", "--listen", "/ip4/127.0.0.1/tcp/0/tls/ws"},
		{"listen", "--listen", "/ip4/127.0.0.1/tcp/0/tls/ws", "--tls-cert", certFile},
	} {
		if code, _, errs := runCmd(t, args...); code == 0 {
			t.Errorf("p2pnet %q succeeded; stderr %s", args, errs)
		}
	}
}
