package compat_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/p2pnet/p2pnet/compat/internal/mixnet"
)

// kinds runs f for each kind of host, as a subtest.
func kinds(t *testing.T, f func(t *testing.T, k mixnet.Kind)) {
	for _, k := range []mixnet.Kind{mixnet.P2PNet, mixnet.Libp2p} {
		t.Run(k.String(), func(t *testing.T) { f(t, k) })
	}
}

// pairs runs f for each (dialer kind, listener kind) pair but
// go-libp2p to go-libp2p, as a subtest.
func pairs(t *testing.T, f func(t *testing.T, a, b mixnet.Kind)) {
	for _, p := range [][2]mixnet.Kind{{mixnet.P2PNet, mixnet.P2PNet}, {mixnet.P2PNet, mixnet.Libp2p}, {mixnet.Libp2p, mixnet.P2PNet}} {
		t.Run(p[0].String()+"->"+p[1].String(), func(t *testing.T) { f(t, p[0], p[1]) })
	}
}

func newHost(t *testing.T, k mixnet.Kind) host.Host {
	t.Helper()
	h, err := mixnet.NewHost(k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

func connect(t *testing.T, ctx context.Context, a, b host.Host) {
	t.Helper()
	if err := a.Connect(ctx, info(b)); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

func subscribe(t *testing.T, h host.Host, evt any) event.Subscription {
	t.Helper()
	sub, err := h.EventBus().Subscribe(evt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// next returns the first event on sub that ok accepts.
func next[T any](t *testing.T, ctx context.Context, sub event.Subscription, ok func(T) bool) T {
	t.Helper()
	for {
		select {
		case e, more := <-sub.Out():
			if !more {
				t.Fatal("subscription closed")
			}
			if ev, is := e.(T); is && ok(ev) {
				return ev
			}
		case <-ctx.Done():
			var zero T
			t.Fatalf("no %T: %v", zero, ctx.Err())
			return zero
		}
	}
}

// identified connects a to b and waits until a has identified b.
func identified(t *testing.T, ctx context.Context, a, b host.Host) event.EvtPeerIdentificationCompleted {
	t.Helper()
	sub := subscribe(t, a, new(event.EvtPeerIdentificationCompleted))
	connect(t, ctx, a, b)
	return next(t, ctx, sub, func(e event.EvtPeerIdentificationCompleted) bool { return e.Peer == b.ID() })
}

func echo(s network.Stream) {
	io.Copy(s, s)
	s.Close()
}

// roundTrip writes msg on s, closes its write side and reads the reply.
func roundTrip(s network.Stream, msg string) (string, error) {
	if _, err := s.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := s.CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(s)
	return string(b), err
}

type ioRWC = io.ReadWriteCloser
