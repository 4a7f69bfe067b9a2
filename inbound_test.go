package p2pnet

import (
	"errors"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// deadlineStream is the part of a stream a negotiation uses: reads of
// what the test gives it, which fail once the deadline has passed, and
// writes that succeed. It records every deadline set.
type deadlineStream struct {
	network.Stream // nil: other methods are not used

	mu        sync.Mutex
	data      []byte
	deadline  time.Time
	deadlines []time.Time
	changed   chan struct{} // closed and replaced when data or the deadline changes
}

func newDeadlineStream() *deadlineStream {
	return &deadlineStream{changed: make(chan struct{})}
}

func (s *deadlineStream) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *deadlineStream) give(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data = append(s.data, b...)
	s.changedLocked()
}

func (s *deadlineStream) Read(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if !s.deadline.IsZero() && !time.Now().Before(s.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		if len(s.data) > 0 {
			n := copy(b, s.data)
			s.data = s.data[n:]
			return n, nil
		}
		ch := s.changed
		s.mu.Unlock()
		<-ch // a deadline in the past is set by the negotiation's timer
		s.mu.Lock()
	}
}

func (s *deadlineStream) Write(b []byte) (int, error) { return len(b), nil }

func (s *deadlineStream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = t
	s.deadlines = append(s.deadlines, t)
	s.changedLocked()
	return nil
}

func (s *deadlineStream) setDeadlines() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.deadlines...)
}

// readUntilError reads from n until a read fails, and reports when.
func readUntilError(n *negotiation) <-chan time.Time {
	out := make(chan time.Time, 1)
	go func() {
		var b [8]byte
		for {
			if _, err := n.Read(b[:]); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					panic(err)
				}
				out <- time.Now()
				return
			}
		}
	}()
	return out
}

// TestNegotiationSilentStream: a stream that sends nothing fails its
// reads NegotiationFirstByteTimeout after it arrived, not before; the
// cleared deadline is left to the handler.
func TestNegotiationSilentStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newDeadlineStream()
		start := time.Now()
		n := watchNegotiation(s, start)
		failed := readUntilError(n)
		time.Sleep(NegotiationFirstByteTimeout - time.Nanosecond)
		synctest.Wait()
		select {
		case <-failed:
			t.Fatal("the read failed before NegotiationFirstByteTimeout")
		default:
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if at := <-failed; at.Sub(start) != NegotiationFirstByteTimeout {
			t.Errorf("the read failed after %v; want %v", at.Sub(start), NegotiationFirstByteTimeout)
		}
		n.finish()
		if d := s.setDeadlines(); len(d) != 2 || !d[1].IsZero() {
			t.Errorf("deadlines set: %v; want one in the past, then none", d)
		}
	})
}

// TestNegotiationSpokenStream: a stream that has sent a byte fails its
// reads NegotiationTimeout after it arrived.
func TestNegotiationSpokenStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newDeadlineStream()
		start := time.Now()
		n := watchNegotiation(s, start)
		time.Sleep(time.Second)
		s.give([]byte{19})
		failed := readUntilError(n)
		time.Sleep(NegotiationTimeout - time.Second - time.Nanosecond)
		synctest.Wait()
		select {
		case <-failed:
			t.Fatal("the read failed before NegotiationTimeout")
		default:
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if at := <-failed; at.Sub(start) != NegotiationTimeout {
			t.Errorf("the read failed after %v; want %v", at.Sub(start), NegotiationTimeout)
		}
		n.finish()
	})
}

// TestNegotiationFinished: once negotiation has ended in time, the
// stream's deadlines are never touched, then or later.
func TestNegotiationFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newDeadlineStream()
		n := watchNegotiation(s, time.Now())
		s.give([]byte{1})
		var b [1]byte
		if _, err := n.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		n.finish()
		time.Sleep(2 * NegotiationTimeout)
		synctest.Wait()
		if d := s.setDeadlines(); len(d) != 0 {
			t.Errorf("deadlines set: %v; want none", d)
		}
	})
}
