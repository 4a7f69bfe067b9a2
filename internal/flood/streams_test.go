package flood

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
)

// holdProto is served by holdServer.
const holdProto protocol.ID = "/flood/hold/1.0.0"

// holdServer answers a one-byte request with one byte, then holds the
// stream open until the dialer closes it, so that the streams it serves
// stay open for as long as the attacker wants.
type holdServer struct {
	ended chan struct{} // receives once per handler that returned

	mu     sync.Mutex // guards the following
	active int        // handlers running
	peak   int        // the most handlers that ran at once
}

func newHoldServer(capacity int) *holdServer {
	return &holdServer{ended: make(chan struct{}, capacity)}
}

func (h *holdServer) handle(s network.Stream) {
	h.mu.Lock()
	h.active++
	h.peak = max(h.peak, h.active)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.active--
		h.mu.Unlock()
		h.ended <- struct{}{}
	}()
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return
	}
	if _, err := s.Write(b[:]); err != nil {
		s.Reset()
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

func (h *holdServer) stats() (active, peak int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active, h.peak
}

// request sends holdServer's one-byte request on s and reads the answer.
func holdRequest(s io.ReadWriter) error {
	if _, err := s.Write([]byte{7}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return err
	}
	if b[0] != 7 {
		return fmt.Errorf("answer %d; want 7", b[0])
	}
	return nil
}

// TestStreamFlood opens 200 streams at once on one connection, each
// making a request, against a victim that lets a peer hold 16 inbound
// streams. Exactly 16 are served and held; the others are refused by the
// resource manager, which the attacker sees as resets. The connection
// survives, serves again once the attacker lets go, and a well-behaved
// peer is served throughout.
func TestStreamFlood(t *testing.T) {
	const (
		limit = 16  // inbound streams a peer may hold
		flood = 200 // streams the attacker opens at once
	)
	rm := newManager(t, func(l *rcmgr.Limits) {
		l.PeerDefault.StreamsInbound = limit
		// Room for the yamux windows (256 KiB) of every stream of the
		// flood, so that all refusals come from the stream count.
		l.PeerDefault.Memory = 128 << 20
	})
	victim := newHost(t, p2pnet.ResourceManager(rm))
	hs := newHoldServer(flood)
	victim.SetStreamHandler(holdProto, hs.handle)
	vi := info(victim)
	good := newHost(t)
	atk := newAttacker(t)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := atk.dial(ctx, vi)
	if err != nil {
		t.Fatal(err)
	}
	base := liveHeap()

	during := goVisit(good, vi)
	release := make(chan struct{})
	answers := make(chan error, flood)
	var attackers sync.WaitGroup
	stop := sync.OnceFunc(func() {
		close(release)
		attackers.Wait()
	})
	defer stop()
	for range flood {
		attackers.Go(func() {
			s, err := conn.stream(ctx, holdProto)
			if err != nil {
				answers <- fmt.Errorf("opening a stream: %w", err)
				return
			}
			err = holdRequest(s)
			answers <- err
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
		switch err := <-answers; {
		case err == nil:
			granted++
		case errors.Is(err, network.ErrReset):
			refused++
		default:
			t.Errorf("an attacker's stream failed with %v; want an answer or a reset", err)
		}
	}

	// The peak: the attacker holds what it was granted.
	t.Logf("%d streams: %d served, %d refused; refusals by the peer scope: %d", flood, granted, refused,
		refusals(rm, rcmgr.KindPeer, rcmgr.ResourceStreamsInbound))
	if granted != limit || refused != flood-limit {
		t.Errorf("%d streams served and %d refused; want %d and %d", granted, refused, limit, flood-limit)
	}
	if n := refusals(rm, rcmgr.KindPeer, rcmgr.ResourceStreamsInbound); n != uint64(refused) {
		t.Errorf("the peer scope counted %d refusals of inbound streams; the attacker saw %d", n, refused)
	}
	if _, peak := hs.stats(); peak != granted {
		t.Errorf("%d handlers ran at once; want %d", peak, granted)
	}
	if st := peerStat(t, rm, atk.id); st.NumStreamsInbound != limit {
		t.Errorf("the attacker's peer scope holds %d inbound streams; want %d", st.NumStreamsInbound, limit)
	}
	vconns := victim.Network().ConnsToPeer(atk.id)
	if len(vconns) != 1 {
		t.Fatalf("the victim has %d connections to the attacker; want 1", len(vconns))
	}
	if n := len(vconns[0].GetStreams()); n != limit {
		t.Errorf("the victim's connection to the attacker carries %d streams; want %d", n, limit)
	}
	checkLimits(t, rm)
	checkHeap(t, "at the peak of the flood", base, heapSlack)
	// One more is refused too, on the same connection.
	if s, err := conn.stream(ctx, holdProto); err != nil {
		t.Errorf("opening one more stream: %v", err)
	} else if err := holdRequest(s); !errors.Is(err, network.ErrReset) {
		t.Errorf("one stream past the limit: %v; want a reset", err)
	} else {
		s.Reset()
	}
	checkVisit(t, "as the flood began", <-during)
	mustVisit(t, "at the peak of the flood", good, vi)

	// The attacker lets go: its handlers end and its streams are released.
	stop()
	for range granted {
		<-hs.ended
	}
	if st := peerStat(t, rm, atk.id); st.NumStreamsInbound != 0 {
		t.Errorf("after the flood the attacker's peer scope holds %d inbound streams; want 0", st.NumStreamsInbound)
	}

	// The connection keeps working.
	select {
	case <-conn.dropped:
		t.Fatal("the victim dropped the attacker's connection")
	default:
	}
	s, err := conn.stream(ctx, holdProto)
	if err != nil {
		t.Fatal(err)
	}
	if err := holdRequest(s); err != nil {
		t.Fatalf("a request on the flooding connection after the flood: %v", err)
	}
	s.Close()
	<-hs.ended
	if got := victim.Network().ConnsToPeer(atk.id); len(got) != 1 || got[0] != vconns[0] {
		t.Errorf("the victim's connections to the attacker changed during the flood")
	}

	mustVisit(t, "after the flood", good, vi)
	checkHeap(t, "after the flood", base, heapSlack)
	checkLimits(t, rm)

	atk.close()
	victim.Close()
	checkReleased(t, rm)
}

// TestNegotiationFlood opens 200 streams at once on one connection that
// never finish naming their protocol: each sends the first byte of
// multistream-select's header and stops. Streams whose protocol is not
// yet known count against the transient scope, which all peers share; the
// per-peer limit must hold the attacker to its share of it. Exactly 16
// stall in negotiation; the others are refused. A well-behaved peer,
// whose streams need the transient scope too, is served throughout.
func TestNegotiationFlood(t *testing.T) {
	const (
		limit = 16  // inbound streams a peer may hold
		flood = 200 // streams the attacker opens at once
	)
	rm := newManager(t, func(l *rcmgr.Limits) {
		l.PeerDefault.StreamsInbound = limit
		l.PeerDefault.Memory = 128 << 20
	})
	victim := newHost(t, p2pnet.ResourceManager(rm))
	vi := info(victim)
	good := newHost(t)
	atk := newAttacker(t)
	watch := watchConns(victim.Network(), atk.id, 1)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := atk.dial(ctx, vi)
	if err != nil {
		t.Fatal(err)
	}
	await(t, ctx, watch.connected, "the victim's connection to the attacker")
	base := liveHeap()

	during := goVisit(good, vi)
	answers := make(chan error, flood)
	var attackers sync.WaitGroup
	defer attackers.Wait()
	defer atk.close()
	for range flood {
		attackers.Go(func() {
			s, err := conn.OpenStream(ctx)
			if err != nil {
				answers <- fmt.Errorf("opening a stream: %w", err)
				return
			}
			// 19 is the length of "/multistream/1.0.0\n", which never
			// follows.
			if _, err := s.Write([]byte{19}); err != nil {
				answers <- err
				return
			}
			var b [1]byte
			_, err = s.Read(b[:])
			answers <- err
			s.Reset()
		})
	}
	// The refused streams are reset; the others wait for the victim to
	// give up (after p2pnet.NegotiationTimeout) or the connection to end.
	for i := range flood - limit {
		select {
		case err := <-answers:
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("an attacker's stream failed with %v; want a reset", err)
			}
		case <-ctx.Done():
			t.Fatalf("%d streams refused; want %d", i, flood-limit)
		}
	}

	// The peak.
	n := refusals(rm, rcmgr.KindPeer, rcmgr.ResourceStreamsInbound)
	st := peerStat(t, rm, atk.id)
	t.Logf("%d streams: %d stalled in negotiation, %d refused; refusals by the peer scope: %d, by the transient scope: %d",
		flood, st.NumStreamsInbound, flood-limit, n, refusals(rm, rcmgr.KindTransient, rcmgr.ResourceStreamsInbound))
	if n != flood-limit {
		t.Errorf("the peer scope counted %d refusals of inbound streams; want %d", n, flood-limit)
	}
	if st.NumStreamsInbound != limit {
		t.Errorf("the attacker's peer scope holds %d inbound streams; want %d", st.NumStreamsInbound, limit)
	}
	if tr := transientStat(rm); tr.NumStreamsInbound < limit {
		t.Errorf("the transient scope holds %d inbound streams; want at least the attacker's %d", tr.NumStreamsInbound, limit)
	}
	checkLimits(t, rm)
	checkHeap(t, "at the peak of the flood", base, heapSlack)
	checkVisit(t, "as the flood began", <-during)
	mustVisit(t, "at the peak of the flood", good, vi)
	if n := refusals(rm, rcmgr.KindTransient, rcmgr.ResourceStreamsInbound); n != 0 {
		t.Errorf("the transient scope refused %d streams; want none", n)
	}

	// The attacker hangs up; the victim resets the stalled streams.
	conn.Close()
	await(t, ctx, watch.disconnected, "the victim to notice the attacker hanging up")
	if st := peerStat(t, rm, atk.id); st.NumStreamsInbound != 0 {
		t.Errorf("after the flood the attacker's peer scope holds %d inbound streams; want 0", st.NumStreamsInbound)
	}
	mustVisit(t, "after the flood", good, vi)
	checkHeap(t, "after the flood", base, heapSlack)

	atk.close()
	attackers.Wait()
	victim.Close()
	checkReleased(t, rm)
}
