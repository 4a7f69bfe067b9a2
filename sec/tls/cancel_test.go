package tls

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// TestHandshakeContext checks that a handshake stalled by the remote ends
// exactly when its context does, and closes the connection.
func TestHandshakeContext(t *testing.T) {
	const timeout = 3 * time.Second
	stalls := []struct {
		name   string
		remote func(net.Conn) // what the remote does; it returns when its conn is closed
	}{
		{"remote silent", func(c net.Conn) {
			c.Read(make([]byte, 1)) // reads one byte, so our first write stays blocked
		}},
		{"remote reads and never answers", func(c net.Conn) {
			io.Copy(io.Discard, c)
		}},
	}
	tr := newTransport(t, ed25519Key(t, 0), yamux)
	remotePeer := peerID(t, ed25519Key(t, 1))
	for _, stall := range stalls {
		for _, inbound := range []bool{false, true} {
			name := stall.name + "/outbound"
			if inbound {
				name = stall.name + "/inbound"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					local, remote := net.Pipe()
					defer remote.Close()
					done := make(chan struct{})
					go func() {
						stall.remote(remote)
						close(done)
					}()
					ctx, cancel := context.WithTimeout(t.Context(), timeout)
					defer cancel()
					start := time.Now()
					var err error
					if inbound {
						_, err = tr.SecureInbound(ctx, local, "")
					} else {
						_, err = tr.SecureOutbound(ctx, local, remotePeer)
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("error = %v, want context.DeadlineExceeded", err)
					}
					if d := time.Since(start); d != timeout {
						t.Errorf("handshake returned after %s, want %s", d, timeout)
					}
					checkClosed(t, local)
					remote.Close()
					<-done
				})
			})
		}
	}
}

func TestHandshakeCanceledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTransport(t, ed25519Key(t, 0), yamux)
		local, remote := net.Pipe()
		defer remote.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		start := time.Now()
		if _, err := tr.SecureOutbound(ctx, local, peerID(t, ed25519Key(t, 1))); !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("took %s", d)
		}
		checkClosed(t, local)
	})
}
