package quic

import (
	"context"
	"crypto/rand"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// TestHandshakeCounting: inbound handshakes count while in progress, and
// past maxUnverifiedHandshakes clients must prove their address.
func TestHandshakeCounting(t *testing.T) {
	newTransport := func() (*Transport, peer.ID) {
		priv, _, err := ic.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := New(priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		id, _ := peer.IDFromPrivateKey(priv)
		return tr, id
	}
	a, _ := newTransport()
	b, bid := newTransport()
	l, err := b.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := a.Dial(context.Background(), l.Multiaddr(), bid)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if n := b.handshakes.Load(); n != 0 {
		t.Errorf("%d handshakes in progress after the connection was accepted", n)
	}
	if b.verifySourceAddress(nil) {
		t.Error("address validation required with no handshake in progress")
	}
	b.handshakes.Store(maxUnverifiedHandshakes)
	if !b.verifySourceAddress(nil) {
		t.Errorf("no address validation with %d handshakes in progress", maxUnverifiedHandshakes)
	}
	// Such a client still connects, after a Retry.
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c2, err := a.Dial(context.Background(), l.Multiaddr(), bid)
	if err != nil {
		t.Fatalf("dial with address validation: %v", err)
	}
	defer c2.Close()
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	if n := b.handshakes.Load(); n != maxUnverifiedHandshakes {
		t.Errorf("%d handshakes counted; want %d", n, maxUnverifiedHandshakes)
	}
	b.handshakes.Store(0)
}
