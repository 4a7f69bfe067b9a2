package quic_test

import (
	"context"
	"errors"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
)

// TestHolePunch: A dials B as the client of a simultaneous connect while
// B "dials" A as the server, which punches and waits: each side ends up
// with one connection, the same one, and B's listener does not see it.
func TestHolePunch(t *testing.T) {
	for _, ip := range []string{"/ip4/127.0.0.1", "/ip6/::1"} {
		t.Run(ip, func(t *testing.T) {
			a, b := newNode(t), newNode(t)
			la := listen(t, a, ip+"/udp/0/quic-v1")
			lb := listen(t, b, ip+"/udp/0/quic-v1")
			ready := make(chan struct{}, 1)
			quic.SetPunchHook(b.tr, func() { ready <- struct{}{} })

			type result struct {
				c   transport.CapableConn
				err error
			}
			punched := make(chan result, 1)
			go func() {
				ctx := network.WithSimultaneousConnect(context.Background(), false, "test")
				c, err := b.tr.Dial(ctx, la.Multiaddr(), a.id)
				punched <- result{c, err}
			}()
			<-ready // B punches and waits for A's connection
			ctx := network.WithSimultaneousConnect(context.Background(), true, "test")
			ca, err := a.tr.Dial(ctx, lb.Multiaddr(), b.id)
			if err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			r := <-punched
			if r.err != nil {
				t.Fatalf("hole-punching dial: %v", r.err)
			}
			cb := r.c.(*quic.Conn)
			defer cb.Close()
			if cb.RemotePeer() != a.id || ca.RemotePeer() != b.id {
				t.Fatal("peers wrong")
			}
			if !cb.RemoteMultiaddr().Equal(la.Multiaddr()) {
				t.Errorf("punched connection from %s; want A's listen address %s", cb.RemoteMultiaddr(), la.Multiaddr())
			}
			// It is the connection A dialed.
			echo(t, ca.(*quic.Conn), cb)
			echo(t, cb, ca.(*quic.Conn))
			// B's listener got nothing: once closed, Accept reports that.
			lb.Close()
			if c, err := lb.Accept(); err == nil {
				c.Close()
				t.Error("the punched connection was also accepted")
			}
		})
	}
}

// TestHolePunchErrors: punching needs a listener and a peer ID, one at a
// time per peer and address, and stops when the transport closes.
func TestHolePunchErrors(t *testing.T) {
	a, b := newNode(t), newNode(t)
	la := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	server := network.WithSimultaneousConnect(context.Background(), false, "test")

	if _, err := b.tr.Dial(server, la.Multiaddr(), a.id); !errors.Is(err, quic.ErrNoListener) {
		t.Errorf("punching without a listener: %v", err)
	}
	listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	if _, err := b.tr.Dial(server, la.Multiaddr(), ""); err == nil {
		t.Error("punching without a peer ID succeeded")
	}

	ready := make(chan struct{}, 1)
	quic.SetPunchHook(b.tr, func() { ready <- struct{}{} })
	errs := make(chan error, 1)
	go func() {
		_, err := b.tr.Dial(server, la.Multiaddr(), a.id)
		errs <- err
	}()
	<-ready
	if _, err := b.tr.Dial(server, la.Multiaddr(), a.id); !errors.Is(err, quic.ErrHolePunchInProgress) {
		t.Errorf("second punch to the same peer and address: %v", err)
	}
	b.tr.Close()
	if err := <-errs; !errors.Is(err, quic.ErrTransportClosed) {
		t.Errorf("punch when the transport closed: %v", err)
	}
	// A cancelled context ends a punch too.
	c := newNode(t)
	listen(t, c, "/ip4/127.0.0.1/udp/0/quic-v1")
	ctx, cancel := context.WithCancel(server)
	cancel()
	if _, err := c.tr.Dial(ctx, ma.StringCast(la.Multiaddr().String()), a.id); !errors.Is(err, context.Canceled) {
		t.Errorf("punch with a cancelled context: %v", err)
	}
}
