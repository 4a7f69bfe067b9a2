package quic

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestPunchSchedule: packets of random bytes go out at once and then at
// intervals of 10 to 200 ms, until HolePunchTimeout, exactly.
func TestPunchSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var sent []time.Time
		var payloads [][]byte
		send := func(b []byte) error {
			sent = append(sent, time.Now())
			payloads = append(payloads, append([]byte(nil), b...))
			return nil
		}
		ctx, cancel := context.WithTimeoutCause(context.Background(), HolePunchTimeout, ErrHolePunchTimeout)
		defer cancel()
		_, err := punch(ctx, send, nil, nil)
		if !errors.Is(err, ErrHolePunchTimeout) {
			t.Fatalf("punch = %v; want ErrHolePunchTimeout", err)
		}
		if d := time.Since(start); d != HolePunchTimeout {
			t.Errorf("punch gave up after %v; want %v", d, HolePunchTimeout)
		}
		if len(sent) < 2 || sent[0] != start {
			t.Fatalf("sent %d packets, the first at %v", len(sent), sent[0].Sub(start))
		}
		for i := 1; i < len(sent); i++ {
			if d := sent[i].Sub(sent[i-1]); d < punchMinInterval || d > punchMaxInterval {
				t.Errorf("interval %d is %v; want %v to %v", i, d, punchMinInterval, punchMaxInterval)
			}
		}
		// At most every 10 ms, at least every 200 ms.
		if n := len(sent); n > int(HolePunchTimeout/punchMinInterval)+1 || n < int(HolePunchTimeout/punchMaxInterval) {
			t.Errorf("%d packets in %v", n, HolePunchTimeout)
		}
		if len(payloads[0]) != punchPacketSize || string(payloads[0]) == string(payloads[1]) {
			t.Errorf("payloads %x, %x; want %d random bytes each", payloads[0], payloads[1], punchPacketSize)
		}
	})
}

// TestPunchDelivery: a connection arriving ends the punch at once.
func TestPunchDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := make(chan *Conn, 1)
		want := &Conn{}
		n := 0
		var third time.Time
		send := func([]byte) error {
			if n++; n == 3 {
				third = time.Now()
				got <- want // as the listener would, meanwhile
			}
			return nil
		}
		c, err := punch(context.Background(), send, got, nil)
		if err != nil || c != want {
			t.Fatalf("punch = %p, %v; want %p", c, err, want)
		}
		if n != 3 {
			t.Errorf("%d packets sent; want 3", n)
		}
		if !time.Now().Equal(third) {
			t.Errorf("punch returned %v after the connection arrived", time.Since(third))
		}
		// A failing send ends the punch with its error.
		boom := errors.New("boom")
		if _, err := punch(context.Background(), func([]byte) error { return boom }, got, nil); !errors.Is(err, boom) {
			t.Errorf("punch with a failing send = %v", err)
		}
	})
}
