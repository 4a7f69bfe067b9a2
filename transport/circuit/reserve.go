package circuit

import (
	"context"
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/relay"

	ma "github.com/multiformats/go-multiaddr"
)

// Reservation is a slot a relay granted us.
type Reservation struct {
	// Expiration is when the reservation ends unless refreshed.
	Expiration time.Time
	// Addrs are the relay's addresses, with its /p2p ID.
	Addrs []ma.Multiaddr
	// LimitDuration and LimitData are the limits of circuits through
	// the relay; zero means none.
	LimitDuration time.Duration
	LimitData     int64
	// Voucher is the relay's signed voucher, or nil if it sent none or
	// it did not verify.
	Voucher *relay.Voucher
}

// Reserve asks the relay ri.ID for a reservation, connecting to it at
// ri.Addrs first if needed. A refusal is an error matching
// *relay.StatusError.
func Reserve(ctx context.Context, h Host, ri peer.AddrInfo) (*Reservation, error) {
	if len(ri.Addrs) > 0 {
		if err := h.Connect(ctx, ri); err != nil {
			return nil, fmt.Errorf("circuit: connecting to relay %s: %w", ri.ID, err)
		}
	}
	s, err := h.NewStream(ctx, ri.ID, relay.ProtoHop)
	if err != nil {
		return nil, fmt.Errorf("circuit: hop stream to relay %s: %w", ri.ID, err)
	}
	setHandshakeDeadline(ctx, s)
	if err := relay.WriteMessage(s, &relay.HopMessage{Type: relay.HopReserve}); err != nil {
		s.Reset()
		return nil, fmt.Errorf("circuit: reservation request to %s: %w", ri.ID, err)
	}
	var resp relay.HopMessage
	if err := relay.ReadMessage(s, &resp); err != nil {
		s.Reset()
		return nil, fmt.Errorf("circuit: reservation answer of %s: %w", ri.ID, err)
	}
	s.Close()
	if resp.Type != relay.HopStatus {
		return nil, fmt.Errorf("circuit: relay %s answered a reservation with hop message type %d: %w", ri.ID, resp.Type, relay.ErrMalformed)
	}
	if resp.Status != relay.StatusOK {
		return nil, fmt.Errorf("circuit: relay %s: %w", ri.ID, &relay.StatusError{Status: resp.Status, Op: "reservation"})
	}
	if resp.Reservation == nil {
		return nil, fmt.Errorf("circuit: relay %s granted no reservation: %w", ri.ID, relay.ErrMalformed)
	}
	r := &Reservation{Expiration: resp.Reservation.ExpireTime(), Addrs: resp.Reservation.Addrs}
	if resp.Limit != nil {
		r.LimitDuration = time.Duration(resp.Limit.Duration) * time.Second
		r.LimitData = int64(resp.Limit.Data)
	}
	if len(resp.Reservation.Voucher) > 0 {
		if v, err := relay.ConsumeVoucher(resp.Reservation.Voucher); err == nil && v.Relay == ri.ID {
			r.Voucher = v
		}
	}
	return r, nil
}
