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
// past DefaultRetryThreshold unverified ones clients must prove their
// address; a client that did is counted as verified.
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
	if hs := b.HandshakeStats(); hs.InProgress != 0 || hs.Unverified != 0 {
		t.Errorf("after the connection was accepted: %+v", hs)
	}
	b.unverified.Store(DefaultRetryThreshold - 1)
	if b.verifySourceAddress(nil) {
		t.Errorf("address validation required with %d unverified handshakes in progress", DefaultRetryThreshold-1)
	}
	b.unverified.Store(DefaultRetryThreshold)
	if !b.verifySourceAddress(nil) {
		t.Errorf("no address validation with %d unverified handshakes in progress", DefaultRetryThreshold)
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
	if hs := b.HandshakeStats(); hs.InProgress != 0 || hs.Unverified != DefaultRetryThreshold || hs.Retries < 2 {
		t.Errorf("after a client connected with a Retry: %+v; want no handshake in progress, %d unverified (as set), 2 Retries or more",
			hs, DefaultRetryThreshold)
	}
	b.unverified.Store(0)
}
