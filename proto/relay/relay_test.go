package relay_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a relay and the peers connected to it, in memory.
type world struct {
	t     *testing.T
	r     *fakehost.Host
	svc   *relay.Service
	peers []*fakehost.Host
}

func newWorld(t *testing.T, n int, opts ...relay.Option) *world {
	t.Helper()
	w := &world{t: t, r: fakehost.New(t)}
	w.r.SetAddrs("/ip4/127.0.0.1/tcp/4001")
	svc, err := relay.New(w.r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	for i := range n {
		p := fakehost.New(t)
		addr := ma.StringCast("/ip4/10.0.0." + string(rune('1'+i)) + "/tcp/1")
		fakehost.Connect(p, w.r, addr, ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
		w.peers = append(w.peers, p)
	}
	t.Cleanup(func() {
		svc.Close()
		w.r.Wait()
		for _, p := range w.peers {
			p.Wait()
		}
		w.r.CheckScopes()
	})
	return w
}

func hop(ctx context.Context, t *testing.T, h *fakehost.Host, relayID peer.ID, req *relay.HopMessage) (network.Stream, *relay.HopMessage) {
	t.Helper()
	s, err := h.NewStream(ctx, relayID, relay.ProtoHop)
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.WriteMessage(s, req); err != nil {
		t.Fatal(err)
	}
	var resp relay.HopMessage
	if err := relay.ReadMessage(s, &resp); err != nil {
		t.Fatalf("reading the hop answer: %v", err)
	}
	return s, &resp
}

func reserve(ctx context.Context, t *testing.T, w *world, h *fakehost.Host) *relay.HopMessage {
	t.Helper()
	s, resp := hop(ctx, t, h, w.r.ID(), &relay.HopMessage{Type: relay.HopReserve})
	s.Close()
	return resp
}

// acceptStops makes h accept every circuit and hand its stream to got.
func acceptStops(h *fakehost.Host, got chan<- network.Stream) {
	h.SetStreamHandler(relay.ProtoStop, func(s network.Stream) {
		var m relay.StopMessage
		if err := relay.ReadMessage(s, &m); err != nil || m.Type != relay.StopConnect {
			s.Reset()
			return
		}
		if err := relay.WriteMessage(s, &relay.StopMessage{Type: relay.StopStatus, Status: relay.StatusOK}); err != nil {
			s.Reset()
			return
		}
		got <- s
	})
}

func TestReserveVoucherAndLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1)
		resp := reserve(t.Context(), t, w, w.peers[0])
		if resp.Type != relay.HopStatus || resp.Status != relay.StatusOK || resp.Reservation == nil {
			t.Fatalf("reservation answer %+v", resp)
		}
		if got, want := resp.Reservation.ExpireTime(), time.Now().Add(relay.DefaultReservationTTL); !got.Equal(want.Truncate(time.Second)) {
			t.Errorf("expires %v, want %v", got, want)
		}
		if resp.Limit == nil || resp.Limit.Duration != 120 || resp.Limit.Data != 128<<10 {
			t.Errorf("limit %+v, want 120 s and 128 KiB", resp.Limit)
		}
		if len(resp.Reservation.Addrs) != 1 || resp.Reservation.Addrs[0].String() != "/ip4/127.0.0.1/tcp/4001/p2p/"+w.r.ID().String() {
			t.Errorf("relay addresses %v", resp.Reservation.Addrs)
		}
		v, err := relay.ConsumeVoucher(resp.Reservation.Voucher)
		if err != nil {
			t.Fatalf("voucher: %v", err)
		}
		if v.Relay != w.r.ID() || v.Peer != w.peers[0].ID() || v.Expiration.Unix() != int64(resp.Reservation.Expire) {
			t.Errorf("voucher %+v", v)
		}
	})
}

func TestReservationExpiryAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, relay.WithResources(relay.Resources{ReservationTTL: time.Hour}))
		reserve(t.Context(), t, w, w.peers[0])
		time.Sleep(30 * time.Minute)
		reserve(t.Context(), t, w, w.peers[0]) // refresh: now expires at 1h30
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if n := w.svc.NumReservations(); n != 1 {
			t.Fatalf("%d reservations 29 min after refresh... want 1", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := w.svc.NumReservations(); n != 0 {
			t.Fatalf("%d reservations after the TTL, want 0", n)
		}
	})
}

func TestDisconnectDropsReservation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1)
		reserve(t.Context(), t, w, w.peers[0])
		if n := w.svc.NumReservations(); n != 1 {
			t.Fatalf("%d reservations", n)
		}
		for _, c := range w.r.Network().ConnsToPeer(w.peers[0].ID()) {
			c.(*fakehost.Conn).Disconnect()
		}
		synctest.Wait()
		if n := w.svc.NumReservations(); n != 0 {
			t.Fatalf("%d reservations after the peer left, want 0", n)
		}
	})
}

// circuit reserves for w.peers[1] and connects w.peers[0] to it.
func circuit(t *testing.T, w *world) (initiator, target network.Stream, limit *relay.Limit) {
	t.Helper()
	got := make(chan network.Stream, 1)
	acceptStops(w.peers[1], got)
	reserve(t.Context(), t, w, w.peers[1])
	s, resp := hop(t.Context(), t, w.peers[0], w.r.ID(), &relay.HopMessage{Type: relay.HopConnect, Peer: &relay.Peer{ID: w.peers[1].ID()}})
	if resp.Status != relay.StatusOK {
		t.Fatalf("connect: %v", resp.Status)
	}
	return s, <-got, resp.Limit
}

func TestCircuitDataLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 10000
		w := newWorld(t, 2, relay.WithLimit(time.Minute, limit))
		a, b, lim := circuit(t, w)
		if lim == nil || lim.Data != limit || lim.Duration != 60 {
			t.Fatalf("limit %+v", lim)
		}
		go func() {
			buf := make([]byte, 3*limit)
			a.Write(buf) // fails once the relay stops reading
		}()
		n, err := io.Copy(io.Discard, b)
		if err != nil || n != limit {
			t.Fatalf("target read %d bytes, %v; want %d and EOF", n, err, limit)
		}
		if _, err := a.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("initiator read %v, want EOF", err)
		}
		synctest.Wait()
		if n := w.svc.NumCircuits(); n != 0 {
			t.Fatalf("%d circuits after the limit", n)
		}
		a.Reset()
		b.Reset()
	})
}

func TestCircuitDurationLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, relay.WithLimit(2*time.Minute, 0))
		a, b, _ := circuit(t, w)
		start := time.Now()
		if _, err := a.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "hello" {
			t.Fatalf("target read %q, %v", got, err)
		}
		if d := time.Since(start); d != 2*time.Minute {
			t.Fatalf("circuit lasted %v, want 2m0s", d)
		}
		if _, err := a.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("initiator read %v, want EOF", err)
		}
		synctest.Wait()
		if n := w.svc.NumCircuits(); n != 0 {
			t.Fatalf("%d circuits after the limit", n)
		}
		a.Reset()
		b.Reset()
	})
}

type denyAll struct{}

func (denyAll) AllowReserve(peer.ID, ma.Multiaddr) bool          { return false }
func (denyAll) AllowConnect(peer.ID, ma.Multiaddr, peer.ID) bool { return false }

func TestRefusals(t *testing.T) {
	connectTo := func(p peer.ID) *relay.HopMessage {
		return &relay.HopMessage{Type: relay.HopConnect, Peer: &relay.Peer{ID: p}}
	}
	t.Run("NO_RESERVATION", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 2)
			s, resp := hop(t.Context(), t, w.peers[0], w.r.ID(), connectTo(w.peers[1].ID()))
			s.Close()
			wantStatus(t, resp, relay.StatusNoReservation)
		})
	})
	t.Run("RESERVATION_REFUSED total", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 2, relay.WithResources(relay.Resources{MaxReservations: 1}))
			wantStatus(t, reserve(t.Context(), t, w, w.peers[0]), relay.StatusOK)
			wantStatus(t, reserve(t.Context(), t, w, w.peers[1]), relay.StatusReservationRefused)
		})
	})
	t.Run("RESERVATION_REFUSED per IP", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 0, relay.WithResources(relay.Resources{MaxReservationsPerIP: 1}))
			for range 2 {
				p := fakehost.New(t)
				fakehost.Connect(p, w.r, ma.StringCast("/ip4/10.9.9.9/tcp/1"), nil)
				w.peers = append(w.peers, p)
			}
			wantStatus(t, reserve(t.Context(), t, w, w.peers[0]), relay.StatusOK)
			wantStatus(t, reserve(t.Context(), t, w, w.peers[1]), relay.StatusReservationRefused)
		})
	})
	t.Run("PERMISSION_DENIED", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 2, relay.WithACL(denyAll{}))
			wantStatus(t, reserve(t.Context(), t, w, w.peers[0]), relay.StatusPermissionDenied)
			s, resp := hop(t.Context(), t, w.peers[0], w.r.ID(), connectTo(w.peers[1].ID()))
			s.Close()
			wantStatus(t, resp, relay.StatusPermissionDenied)
		})
	})
	t.Run("RESOURCE_LIMIT_EXCEEDED", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 2, relay.WithResources(relay.Resources{MaxCircuitsPerPeer: 1}))
			a, b, _ := circuit(t, w)
			s, resp := hop(t.Context(), t, w.peers[0], w.r.ID(), connectTo(w.peers[1].ID()))
			s.Close()
			wantStatus(t, resp, relay.StatusResourceLimitExceeded)
			a.Reset()
			b.Reset()
		})
	})
	t.Run("CONNECTION_FAILED", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 2)
			w.peers[1].SetStreamHandler(relay.ProtoStop, func(s network.Stream) {
				var m relay.StopMessage
				relay.ReadMessage(s, &m)
				relay.WriteMessage(s, &relay.StopMessage{Type: relay.StopStatus, Status: relay.StatusConnectionFailed})
				s.Close()
			})
			reserve(t.Context(), t, w, w.peers[1])
			s, resp := hop(t.Context(), t, w.peers[0], w.r.ID(), connectTo(w.peers[1].ID()))
			s.Close()
			wantStatus(t, resp, relay.StatusConnectionFailed)
		})
	})
	t.Run("UNEXPECTED_MESSAGE", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1)
			s, resp := hop(t.Context(), t, w.peers[0], w.r.ID(), &relay.HopMessage{Type: relay.HopStatus, Status: relay.StatusOK})
			s.Close()
			wantStatus(t, resp, relay.StatusUnexpectedMessage)
		})
	})
	t.Run("MALFORMED_MESSAGE", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1)
			s, err := w.peers[0].NewStream(t.Context(), w.r.ID(), relay.ProtoHop)
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte{3, 0xff, 0xff, 0xff}) // a field tag that does not parse
			var resp relay.HopMessage
			if err := relay.ReadMessage(s, &resp); err != nil {
				t.Fatal(err)
			}
			wantStatus(t, &resp, relay.StatusMalformedMessage)
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("after the refusal: %v, want EOF", err)
			}
			s.Close()
		})
	})
}

func wantStatus(t *testing.T, m *relay.HopMessage, want relay.Status) {
	t.Helper()
	if m.Type != relay.HopStatus || m.Status != want {
		t.Fatalf("answer type %d status %v, want STATUS %v", m.Type, m.Status, want)
	}
}
