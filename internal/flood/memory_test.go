package flood

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
)

// reserveProto is served by reserveServer.
const reserveProto protocol.ID = "/flood/reserve/1.0.0"

// reservePriority is the priority at which reserveServer reserves.
const reservePriority = network.ReservationPriorityMedium

// reserveServer serves a protocol that lets the dialer choose how much
// memory the server spends, as a careless upload handler would: the
// dialer sends an 8-byte big-endian size n, the server reserves n bytes in
// the stream's scope, allocates them, reads n bytes into them, answers
// one byte and holds the memory until the dialer closes the stream. A
// refused reservation resets the stream.
type reserveServer struct {
	ended chan struct{} // receives once per handler that returned

	mu        sync.Mutex // guards the following
	held      int64      // bytes reserved and allocated by handlers
	peak      int64      // the most bytes held at once
	granted   int
	refusedBy map[rcmgr.ScopeKind]int // refusals, by the kind of scope that refused
	errs      []error                 // refusals that were not *rcmgr.LimitErrors
}

func newReserveServer(capacity int) *reserveServer {
	return &reserveServer{ended: make(chan struct{}, capacity), refusedBy: map[rcmgr.ScopeKind]int{}}
}

func (r *reserveServer) handle(s network.Stream) {
	defer func() { r.ended <- struct{}{} }()
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.Reset()
		return
	}
	size := binary.BigEndian.Uint64(hdr[:])
	if size > math.MaxInt {
		size = math.MaxInt
	}
	n := int(size)
	if err := s.Scope().ReserveMemory(n, reservePriority); err != nil {
		kind, kerr := limitKind(err)
		r.mu.Lock()
		if kerr != nil {
			r.errs = append(r.errs, kerr)
		} else {
			r.refusedBy[kind]++
		}
		r.mu.Unlock()
		s.Reset()
		return
	}
	defer s.Scope().ReleaseMemory(n)
	r.mu.Lock()
	r.granted++
	r.held += int64(n)
	r.peak = max(r.peak, r.held)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.held -= int64(n)
		r.mu.Unlock()
	}()

	buf := make([]byte, n)
	if _, err := io.ReadFull(s, buf); err != nil {
		s.Reset()
		return
	}
	if _, err := s.Write([]byte{1}); err != nil {
		s.Reset()
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset()
		return
	}
	runtime.KeepAlive(buf) // held until the dialer lets go
	s.Close()
}

// reserveRequest asks for size bytes on s, sends them (unless they are
// more than payload holds) and reads the answer.
func reserveRequest(s io.ReadWriter, size uint64, payload []byte) error {
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], size)
	if _, err := s.Write(hdr[:]); err != nil {
		return err
	}
	if size <= uint64(len(payload)) {
		if _, err := s.Write(payload[:size]); err != nil {
			return err
		}
	}
	var b [1]byte
	_, err := io.ReadFull(s, b[:])
	return err
}

// TestMemoryFlood opens 48 streams at once on one connection, each asking
// the victim to reserve memory for it: half ask for 1 TiB, which the
// stream scope refuses, and half for 8 MiB, of which the peer scope (64
// MiB, at the handler's priority 38.25 MiB, less the yamux windows) grants
// a few and refuses the rest. The granted memory is really allocated and
// held until the attacker lets go, so the heap grows by what the limit
// allows and no more. A well-behaved peer is served throughout.
func TestMemoryFlood(t *testing.T) {
	const (
		peerMemory   = 64 << 20 // memory a peer may hold
		streamMemory = 16 << 20 // memory a stream may hold
		flood        = 48       // streams the attacker opens at once
		huge         = 1 << 40  // what half the streams ask for
		large        = 8 << 20  // what the other half ask for
	)
	rm := newManager(t, func(l *rcmgr.Limits) {
		l.PeerDefault.Memory = peerMemory
		l.Stream.Memory = streamMemory
		// The peer's share of the protocol must not bind before the
		// peer's own limit does.
		pp := l.ProtocolPeerDefault
		pp.Memory = rcmgr.Unlimited.Memory
		l.ProtocolPeer = map[protocol.ID]rcmgr.Limit{reserveProto: pp}
	})
	// What the handler may hold at its priority, windows not counted.
	allowed := int64(reservePriority+1) * peerMemory / 256
	victim := newHost(t, p2pnet.ResourceManager(rm))
	rs := newReserveServer(flood + 1)
	victim.SetStreamHandler(reserveProto, rs.handle)
	vi := info(victim)
	good := newHost(t)
	atk := newAttacker(t)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := atk.dial(ctx, vi)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, large)
	base := liveHeap()

	during := goVisit(good, vi)
	release := make(chan struct{})
	type answer struct {
		size uint64
		err  error
	}
	answers := make(chan answer, flood)
	var attackers sync.WaitGroup
	stop := sync.OnceFunc(func() {
		close(release)
		attackers.Wait()
	})
	defer stop()
	for i := range flood {
		size := uint64(huge)
		if i%2 == 1 {
			size = large
		}
		attackers.Go(func() {
			s, err := conn.stream(ctx, reserveProto)
			if err != nil {
				answers <- answer{size, fmt.Errorf("opening a stream: %w", err)}
				return
			}
			err = reserveRequest(s, size, payload)
			answers <- answer{size, err}
			if err != nil {
				s.Reset()
				return
			}
			<-release
			s.Close()
		})
	}
	granted, refused := 0, 0
	for range flood {
		a := <-answers
		switch {
		case a.err == nil && a.size == large:
			granted++
		case a.err == nil:
			t.Errorf("the victim granted %d bytes", a.size)
		case errors.Is(a.err, network.ErrReset):
			refused++
		default:
			t.Errorf("an attacker's stream failed with %v; want an answer or a reset", a.err)
		}
	}

	// The peak: the attacker holds what it was granted, and the victim
	// holds that memory for real.
	rs.mu.Lock()
	peak, refusedBy, errs, served := rs.peak, rs.refusedBy, rs.errs, rs.granted
	rs.mu.Unlock()
	st := peerStat(t, rm, atk.id)
	t.Logf("%d streams: %d granted %d MiB each, %d refused (by the stream scope %d, by the peer scope %d); "+
		"the handlers held at most %.1f MiB, the peer scope %.1f MiB of %d MiB; refusals counted by the manager: stream %d, peer %d",
		flood, granted, large>>20, refused, refusedBy[rcmgr.KindStream], refusedBy[rcmgr.KindPeer],
		float64(peak)/(1<<20), float64(st.Memory)/(1<<20), peerMemory>>20,
		refusals(rm, rcmgr.KindStream, rcmgr.ResourceMemory), refusals(rm, rcmgr.KindPeer, rcmgr.ResourceMemory))
	for _, err := range errs {
		t.Error(err)
	}
	if granted < 1 || int64(granted)*large > allowed {
		t.Errorf("%d streams of %d bytes granted; want 1 to %d", granted, large, allowed/large)
	}
	if served != granted || granted+refused != flood {
		t.Errorf("the handlers granted %d, the attacker saw %d granted and %d refused of %d", served, granted, refused, flood)
	}
	if refusedBy[rcmgr.KindStream] != flood/2 || refusedBy[rcmgr.KindPeer] != flood/2-granted || len(refusedBy) != 2 {
		t.Errorf("refusals by kind of scope %v; want %d by the stream scope and %d by the peer scope",
			refusedBy, flood/2, flood/2-granted)
	}
	if n := refusals(rm, rcmgr.KindStream, rcmgr.ResourceMemory); n != flood/2 {
		t.Errorf("the manager counted %d refusals by stream scopes; want %d", n, flood/2)
	}
	// The manager counts the refused growths of yamux windows too.
	if n := refusals(rm, rcmgr.KindPeer, rcmgr.ResourceMemory); n < uint64(flood/2-granted) {
		t.Errorf("the manager counted %d refusals by the peer scope; want at least %d", n, flood/2-granted)
	}
	if peak != int64(granted)*large || peak > allowed {
		t.Errorf("the handlers held %d bytes at most; want %d, at most %d", peak, int64(granted)*large, allowed)
	}
	if st.Memory < peak || st.Memory > peerMemory {
		t.Errorf("the attacker's peer scope holds %d bytes; want between the %d the handlers hold and the limit %d", st.Memory, peak, peerMemory)
	}
	checkLimits(t, rm)
	// Everything the victim holds for the attacker (the handlers' buffers
	// and the streams' receive windows) fits in the peer's limit.
	checkHeap(t, "at the peak of the flood", base, peerMemory+heapSlack)
	checkVisit(t, "as the flood began", <-during)
	mustVisit(t, "at the peak of the flood", good, vi)

	// The attacker lets go; the victim releases the memory.
	stop()
	for range flood {
		<-rs.ended
	}
	rs.mu.Lock()
	held := rs.held
	rs.mu.Unlock()
	if held != 0 {
		t.Errorf("the handlers still hold %d bytes", held)
	}
	// What the peer holds now is its connection's: a request gets through.
	s, err := conn.stream(ctx, reserveProto)
	if err != nil {
		t.Fatal(err)
	}
	if err := reserveRequest(s, large, payload); err != nil {
		t.Fatalf("a request on the flooding connection after the flood: %v", err)
	}
	s.Close()
	<-rs.ended

	mustVisit(t, "after the flood", good, vi)
	checkHeap(t, "after the flood", base, heapSlack)
	checkLimits(t, rm)

	atk.close()
	victim.Close()
	checkReleased(t, rm)
}
