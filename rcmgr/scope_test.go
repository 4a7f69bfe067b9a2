package rcmgr

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// stat returns the use of a top scope, or of a peer, protocol or service
// scope through its View.
func sysStat(t *testing.T, m *Manager) network.ScopeStat {
	t.Helper()
	var st network.ScopeStat
	m.ViewSystem(func(s network.ResourceScope) error { st = s.Stat(); return nil })
	return st
}

func transientStat(t *testing.T, m *Manager) network.ScopeStat {
	t.Helper()
	var st network.ScopeStat
	m.ViewTransient(func(s network.ResourceScope) error { st = s.Stat(); return nil })
	return st
}

func protoStat(t *testing.T, m *Manager, p protocol.ID) network.ScopeStat {
	t.Helper()
	var st network.ScopeStat
	m.ViewProtocol(p, func(s network.ProtocolScope) error { st = s.Stat(); return nil })
	return st
}

func want(t *testing.T, what string, got, want network.ScopeStat) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: use %+v, want %+v", what, got, want)
	}
}

func TestConnMovesFromTransientToPeer(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	p := testPeer(t, 1)
	c, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/192.0.2.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ReserveMemory(1000, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	held := network.ScopeStat{NumConnsInbound: 1, NumFD: 1, Memory: 1000}
	want(t, "conn", c.Stat(), held)
	want(t, "transient", transientStat(t, m), held)
	want(t, "system", sysStat(t, m), held)
	if c.PeerScope() != nil {
		t.Fatal("PeerScope before SetPeer is not nil")
	}
	checkInvariants(t, m)

	if err := c.SetPeer(p); err != nil {
		t.Fatal(err)
	}
	want(t, "transient after SetPeer", transientStat(t, m), network.ScopeStat{})
	want(t, "system after SetPeer", sysStat(t, m), held)
	want(t, "peer", c.PeerScope().Stat(), held)
	if got := c.PeerScope().Peer(); got != p {
		t.Fatalf("PeerScope().Peer() = %s, want %s", got, p)
	}
	checkInvariants(t, m)

	if err := c.SetPeer(p); !errors.Is(err, ErrAlreadyAttached) {
		t.Fatalf("second SetPeer: %v, want ErrAlreadyAttached", err)
	}
	// Memory reserved after the move goes to the peer, not the transient
	// scope.
	if err := c.ReserveMemory(24, network.ReservationPriorityLow); err != nil {
		t.Fatal(err)
	}
	if got := c.PeerScope().Stat().Memory; got != 1024 {
		t.Fatalf("peer memory %d, want 1024", got)
	}
	want(t, "transient", transientStat(t, m), network.ScopeStat{})
	c.Done()
	c.Done()
	checkEmpty(t, m)
}

func TestConnSetPeerRefusedChangesNothing(t *testing.T) {
	l := UnlimitedLimits()
	l.PeerDefault.ConnsOutbound = 0
	m := newTestManager(t, l)
	c, err := m.OpenConnection(network.DirOutbound, false, addr(t, "/ip4/192.0.2.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	before := transientStat(t, m)
	err = c.SetPeer(testPeer(t, 1))
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != KindPeer || le.Resource != ResourceConnsOutbound {
		t.Fatalf("SetPeer: %v, want a peer's outbound connection refusal", err)
	}
	if c.PeerScope() != nil {
		t.Fatal("refused SetPeer left a peer scope")
	}
	want(t, "transient", transientStat(t, m), before)
	checkInvariants(t, m)
	c.Done()
	checkEmpty(t, m)
}

func TestStreamMovesToProtocolAndService(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	p := testPeer(t, 1)
	const proto = protocol.ID("/test/1.0.0")
	s, err := m.OpenStream(p, network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveMemory(4096, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	held := network.ScopeStat{NumStreamsInbound: 1, Memory: 4096}
	want(t, "peer", s.PeerScope().Stat(), held)
	want(t, "transient", transientStat(t, m), held)
	want(t, "system", sysStat(t, m), held)
	if s.ProtocolScope() != nil || s.ServiceScope() != nil {
		t.Fatal("protocol or service scope before they are set")
	}

	if err := s.SetProtocol(proto); err != nil {
		t.Fatal(err)
	}
	want(t, "transient after SetProtocol", transientStat(t, m), network.ScopeStat{})
	want(t, "protocol", s.ProtocolScope().Stat(), held)
	want(t, "system", sysStat(t, m), held)
	if s.ProtocolScope().Protocol() != proto {
		t.Fatalf("ProtocolScope().Protocol() = %s", s.ProtocolScope().Protocol())
	}
	checkInvariants(t, m)

	if err := s.SetService("svc"); err != nil {
		t.Fatal(err)
	}
	want(t, "service", s.ServiceScope().Stat(), held)
	if s.ServiceScope().Name() != "svc" {
		t.Fatalf("ServiceScope().Name() = %s", s.ServiceScope().Name())
	}
	if err := s.ReserveMemory(1, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	held.Memory++
	for _, sc := range []network.ResourceScope{s.PeerScope(), s.ProtocolScope(), s.ServiceScope()} {
		want(t, "after SetService", sc.Stat(), held)
	}
	want(t, "system", sysStat(t, m), held)
	checkInvariants(t, m)

	if err := s.SetProtocol(proto); !errors.Is(err, ErrAlreadyAttached) {
		t.Fatalf("second SetProtocol: %v", err)
	}
	if err := s.SetService("svc"); !errors.Is(err, ErrAlreadyAttached) {
		t.Fatalf("second SetService: %v", err)
	}
	s.Done()
	checkEmpty(t, m)
}

func TestStreamServiceBeforeProtocol(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	s, err := m.OpenStream(testPeer(t, 1), network.DirOutbound)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetService("svc"); err != nil {
		t.Fatal(err)
	}
	one := network.ScopeStat{NumStreamsOutbound: 1}
	want(t, "transient", transientStat(t, m), one)
	want(t, "service", s.ServiceScope().Stat(), one)
	if err := s.SetProtocol("/p"); err != nil {
		t.Fatal(err)
	}
	want(t, "transient", transientStat(t, m), network.ScopeStat{})
	want(t, "service", s.ServiceScope().Stat(), one)
	want(t, "protocol", protoStat(t, m, "/p"), one)
	checkInvariants(t, m)
	s.Done()
	checkEmpty(t, m)
}

func TestRollbackWhenAncestorRefuses(t *testing.T) {
	l := UnlimitedLimits()
	l.System.Memory = 10000
	l.Transient.Memory = 5000
	l.PeerDefault.StreamsInbound = 1
	l.ProtocolPeerDefault.StreamsInbound = 0
	m := newTestManager(t, l)
	p := testPeer(t, 1)

	c, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/192.0.2.1/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}
	// The transient scope refuses: the conn and system hold nothing.
	err = c.ReserveMemory(6000, network.ReservationPriorityAlways)
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != KindTransient {
		t.Fatalf("reserve 6000: %v, want a refusal by the transient scope", err)
	}
	if c.Stat().Memory != 0 || sysStat(t, m).Memory != 0 || transientStat(t, m).Memory != 0 {
		t.Fatal("a refused reservation left memory reserved")
	}
	if err := c.SetPeer(p); err != nil {
		t.Fatal(err)
	}
	// Now the system scope refuses, after the conn and peer would have
	// accepted.
	if err := c.ReserveMemory(7000, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	err = c.ReserveMemory(3001, network.ReservationPriorityAlways)
	if !errors.As(err, &le) || le.Kind != KindSystem || le.Used != 7000 || le.Requested != 3001 {
		t.Fatalf("reserve 3001: %v, want a refusal by the system scope", err)
	}
	if c.Stat().Memory != 7000 || c.PeerScope().Stat().Memory != 7000 || sysStat(t, m).Memory != 7000 {
		t.Fatal("a refused reservation changed the use")
	}
	checkInvariants(t, m)

	// A stream refused by its peer leaves nothing in transient or system.
	s1, err := m.OpenStream(p, network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenStream(p, network.DirInbound); !errors.As(err, &le) || le.Kind != KindPeer {
		t.Fatalf("second inbound stream: %v, want a refusal by the peer", err)
	}
	if got := transientStat(t, m).NumStreamsInbound; got != 1 {
		t.Fatalf("transient holds %d inbound streams, want 1", got)
	}
	// SetProtocol refused by the protocol's per-peer scope: the protocol
	// scope gets nothing and the stream stays in the transient scope.
	if err := s1.SetProtocol("/p"); !errors.As(err, &le) || le.Kind != KindProtocolPeer {
		t.Fatalf("SetProtocol: %v, want a refusal by the protocol's peer scope", err)
	}
	if s1.ProtocolScope() != nil {
		t.Fatal("refused SetProtocol set the protocol")
	}
	want(t, "protocol", protoStat(t, m, "/p"), network.ScopeStat{})
	if got := transientStat(t, m).NumStreamsInbound; got != 1 {
		t.Fatalf("transient holds %d inbound streams, want 1", got)
	}
	checkInvariants(t, m)
	s1.Done()
	c.Done()
	checkEmpty(t, m)
}

func TestMemoryPriorityEdges(t *testing.T) {
	prios := []uint8{
		network.ReservationPriorityLow,
		network.ReservationPriorityMedium,
		network.ReservationPriorityHigh,
		network.ReservationPriorityAlways,
	}
	for _, limit := range []int64{1_000_003, 1 << 30, math.MaxInt64 - 1} {
		for _, prio := range prios {
			t.Run(fmt.Sprintf("limit=%d/prio=%d", limit, prio), func(t *testing.T) {
				l := UnlimitedLimits()
				l.System.Memory = limit
				m := newTestManager(t, l)
				// The threshold, computed in big enough arithmetic.
				edge := int64((uint64(limit) / 256 * (uint64(prio) + 1)) + (uint64(limit)%256)*(uint64(prio)+1)/256)
				if prio == network.ReservationPriorityAlways && edge != limit {
					t.Fatalf("priority 255 threshold %d, want the limit %d", edge, limit)
				}
				err := m.ViewSystem(func(s network.ResourceScope) error {
					span, err := s.BeginSpan()
					if err != nil {
						return err
					}
					defer span.Done()
					// One byte over the edge fails, exactly at it succeeds.
					if err := span.ReserveMemory(int(edge/2), prio); err != nil {
						return fmt.Errorf("half the threshold: %w", err)
					}
					rest := int(edge - edge/2)
					err = span.ReserveMemory(rest+1, prio)
					var le *LimitError
					if !errors.As(err, &le) || le.Allowed != edge || le.Limit != limit || le.Used != edge/2 {
						return fmt.Errorf("one byte over the edge: %v (%+v)", err, le)
					}
					if err := span.ReserveMemory(rest, prio); err != nil {
						return fmt.Errorf("exactly at the edge: %w", err)
					}
					if err := span.ReserveMemory(1, prio); err == nil {
						return errors.New("one byte past the edge succeeded")
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				checkEmpty(t, m)
			})
		}
	}
}

func TestUnlimitedMemoryCannotOverflow(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	err := m.ViewSystem(func(s network.ResourceScope) error {
		span, err := s.BeginSpan()
		if err != nil {
			return err
		}
		defer span.Done()
		if err := span.ReserveMemory(math.MaxInt, network.ReservationPriorityLow); err != nil {
			return err
		}
		if err := span.ReserveMemory(1, network.ReservationPriorityAlways); !errors.Is(err, network.ErrResourceLimitExceeded) {
			return fmt.Errorf("reserving past math.MaxInt64 bytes: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkEmpty(t, m)
}

func TestMemoryMisuse(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	s, err := m.OpenStream(testPeer(t, 1), network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveMemory(-1, network.ReservationPriorityAlways); !errors.Is(err, ErrNegativeMemory) {
		t.Fatalf("negative reservation: %v", err)
	}
	if err := s.ReserveMemory(10, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	s.ReleaseMemory(-5) // ignored
	s.ReleaseMemory(25) // releases only the 10 held
	want(t, "stream", s.Stat(), network.ScopeStat{NumStreamsInbound: 1})
	want(t, "system", sysStat(t, m), network.ScopeStat{NumStreamsInbound: 1})
	checkInvariants(t, m)
	s.Done()
	s.ReleaseMemory(10) // after Done: ignored
	checkEmpty(t, m)
}

func TestSpans(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	s, err := m.OpenStream(testPeer(t, 1), network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetProtocol("/p"); err != nil {
		t.Fatal(err)
	}
	span1, err := s.BeginSpan()
	if err != nil {
		t.Fatal(err)
	}
	span2, err := span1.BeginSpan()
	if err != nil {
		t.Fatal(err)
	}
	span3, err := span2.BeginSpan()
	if err != nil {
		t.Fatal(err)
	}
	sibling, err := span1.BeginSpan()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		s network.ResourceScope
		n int
	}{{span1, 100}, {span2, 50}, {span3, 10}, {sibling, 1}} {
		if err := r.s.ReserveMemory(r.n, network.ReservationPriorityAlways); err != nil {
			t.Fatal(err)
		}
	}
	mem := func(sc network.ResourceScope) int64 { return sc.Stat().Memory }
	if mem(s) != 161 || mem(span1) != 161 || mem(span2) != 60 || mem(span3) != 10 || mem(s.ProtocolScope()) != 161 || sysStat(t, m).Memory != 161 {
		t.Fatalf("memory: stream %d span1 %d span2 %d span3 %d", mem(s), mem(span1), mem(span2), mem(span3))
	}
	checkInvariants(t, m)

	// Done on span2 releases span2 and span3, and ends span3.
	span2.Done()
	if mem(s) != 101 || mem(span1) != 101 || mem(span2) != 0 || mem(span3) != 0 || sysStat(t, m).Memory != 101 {
		t.Fatalf("after span2.Done: stream %d span1 %d span2 %d span3 %d", mem(s), mem(span1), mem(span2), mem(span3))
	}
	if err := span3.ReserveMemory(1, network.ReservationPriorityAlways); !errors.Is(err, network.ErrResourceScopeClosed) {
		t.Fatalf("reserve in a span below a done span: %v", err)
	}
	if _, err := span2.BeginSpan(); !errors.Is(err, network.ErrResourceScopeClosed) {
		t.Fatalf("BeginSpan on a done span: %v", err)
	}
	span3.Done()
	span2.Done()
	checkInvariants(t, m)
	if mem(s) != 101 {
		t.Fatalf("repeated Done released again: stream holds %d", mem(s))
	}

	// Done on the stream ends the remaining spans.
	s.Done()
	if mem(span1) != 0 || mem(sibling) != 0 {
		t.Fatal("spans of a done stream still hold memory")
	}
	if err := sibling.ReserveMemory(1, network.ReservationPriorityAlways); !errors.Is(err, network.ErrResourceScopeClosed) {
		t.Fatalf("reserve in a span of a done stream: %v", err)
	}
	span1.Done()
	sibling.Done()
	checkEmpty(t, m)
}

func TestSpanKeepsPeerScopeAlive(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	p := testPeer(t, 1)
	var span network.ResourceScopeSpan
	err := m.ViewPeer(p, func(s network.PeerScope) error {
		var err error
		span, err = s.BeginSpan()
		if err != nil {
			return err
		}
		return span.ReserveMemory(77, network.ReservationPriorityAlways)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := liveScopes(m)[KindPeer]; n != 1 {
		t.Fatalf("%d peer scopes while a span holds one, want 1", n)
	}
	if got := sysStat(t, m).Memory; got != 77 {
		t.Fatalf("system memory %d, want 77", got)
	}
	span.Done()
	checkEmpty(t, m)
}

func TestViewReservationsKeepScopeAlive(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	reserve := func(s network.ResourceScope) error { return s.ReserveMemory(5, network.ReservationPriorityAlways) }
	release := func(s network.ResourceScope) error { s.ReleaseMemory(5); return nil }
	if err := m.ViewService("svc", func(s network.ServiceScope) error { return reserve(s) }); err != nil {
		t.Fatal(err)
	}
	if err := m.ViewProtocol("/p", func(s network.ProtocolScope) error { return reserve(s) }); err != nil {
		t.Fatal(err)
	}
	if got := liveScopes(m); got[KindService] != 1 || got[KindProtocol] != 1 {
		t.Fatalf("scopes holding memory were collected: %v", got)
	}
	if got := sysStat(t, m).Memory; got != 10 {
		t.Fatalf("system memory %d, want 10", got)
	}
	m.ViewService("svc", func(s network.ServiceScope) error { return release(s) })
	m.ViewProtocol("/p", func(s network.ProtocolScope) error { return release(s) })
	checkEmpty(t, m)
}

func TestGarbageCollection(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	var conns []network.ConnManagementScope
	var streams []network.StreamManagementScope
	for i := range 10 {
		p := testPeer(t, i)
		c, err := m.OpenConnection(network.DirOutbound, true, addr(t, "/ip4/192.0.2.1/tcp/1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetPeer(p); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		s, err := m.OpenStream(p, network.DirOutbound)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetProtocol(protocol.ID(fmt.Sprint("/p/", i%3))); err != nil {
			t.Fatal(err)
		}
		if err := s.SetService(fmt.Sprint("svc", i%2)); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	got := liveScopes(m)
	if got[KindPeer] != 10 || got[KindProtocol] != 3 || got[KindService] != 2 || got[KindProtocolPeer] != 10 || got[KindServicePeer] != 10 {
		t.Fatalf("live scopes %v", got)
	}
	checkInvariants(t, m)
	for _, s := range streams {
		s.Done()
	}
	// The peers' connections keep the peer scopes alive.
	got = liveScopes(m)
	if got[KindPeer] != 10 || got[KindProtocol] != 0 || got[KindService] != 0 || got[KindProtocolPeer] != 0 {
		t.Fatalf("live scopes after the streams ended: %v", got)
	}
	for _, c := range conns {
		c.Done()
	}
	checkEmpty(t, m)
}

func TestUnusedScopesAreSweptWithoutGC(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	for i := range 5 * idleSweep {
		s, err := m.OpenStream(testPeer(t, i), network.DirInbound)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetProtocol(protocol.ID(fmt.Sprint("/p/", i))); err != nil {
			t.Fatal(err)
		}
		s.Done()
		live := m.Summary().Live
		if n := live[KindPeer] + live[KindProtocol] + live[KindProtocolPeer]; n > 2*idleSweep {
			t.Fatalf("after %d streams, %d unused scopes linger", i+1, n)
		}
	}
	checkEmpty(t, m)
}

func TestClosedScopes(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	c, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/192.0.2.1/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.OpenStream(testPeer(t, 1), network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	c.Done()
	s.Done()
	closed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, network.ErrResourceScopeClosed) {
			t.Fatalf("%s: %v, want ErrResourceScopeClosed", what, err)
		}
	}
	closed("conn ReserveMemory", c.ReserveMemory(1, network.ReservationPriorityAlways))
	_, err = c.BeginSpan()
	closed("conn BeginSpan", err)
	closed("conn SetPeer", c.SetPeer(testPeer(t, 1)))
	closed("stream ReserveMemory", s.ReserveMemory(1, network.ReservationPriorityAlways))
	closed("stream SetProtocol", s.SetProtocol("/p"))
	closed("stream SetService", s.SetService("svc"))
	checkEmpty(t, m)

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/192.0.2.1/tcp/1"))
	closed("OpenConnection after Close", err)
	_, err = m.OpenStream(testPeer(t, 1), network.DirInbound)
	closed("OpenStream after Close", err)
}

func TestConcurrentUseEndsAtZero(t *testing.T) {
	l := DefaultLimits()
	m := newTestManager(t, l)
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := testPeer(t, w%3)
			for i := range rounds {
				if err := round(m, p, w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkEmpty(t, m)
}

// round opens a connection and a stream, moves them, reserves and
// releases memory in them and their spans, and ends them.
func round(m *Manager, p peer.ID, w, i int) error {
	c, err := m.OpenConnection(network.DirInbound, true, nil)
	if err != nil {
		return err
	}
	defer c.Done()
	if err := c.SetPeer(p); err != nil {
		return err
	}
	s, err := m.OpenStream(p, network.Direction(1+i%2))
	if err != nil {
		return err
	}
	defer s.Done()
	if err := s.SetProtocol(protocol.ID(fmt.Sprint("/p/", i%4))); err != nil {
		return err
	}
	if i%3 == 0 {
		if err := s.SetService(fmt.Sprint("svc", w%2)); err != nil {
			return err
		}
	}
	if err := s.ReserveMemory(4096, network.ReservationPriorityHigh); err != nil {
		return err
	}
	span, err := s.BeginSpan()
	if err != nil {
		return err
	}
	if err := span.ReserveMemory(1000+i, network.ReservationPriorityLow); err != nil {
		return err
	}
	if i%2 == 0 {
		span.Done()
	}
	if err := c.ReserveMemory(512, network.ReservationPriorityMedium); err != nil {
		return err
	}
	c.ReleaseMemory(512)
	s.ReleaseMemory(4096)
	return nil
}

func TestReleaseThroughKeptViewScope(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	var kept network.PeerScope
	err := m.ViewPeer(testPeer(t, 1), func(s network.PeerScope) error {
		kept = s
		return s.ReserveMemory(10, network.ReservationPriorityAlways)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Releasing through a scope kept past its View queues it for removal
	// once empty, as a View's end would.
	kept.ReleaseMemory(10)
	m.mu.Lock()
	queued := m.peers[testPeer(t, 1)].queued
	m.mu.Unlock()
	if !queued {
		t.Fatal("the emptied peer scope is not queued for removal")
	}
	checkEmpty(t, m)
	if err := kept.ReserveMemory(1, network.ReservationPriorityAlways); !errors.Is(err, network.ErrResourceScopeClosed) {
		t.Fatalf("reserving in a removed scope: %v", err)
	}
}

func TestUnusedScopesAreSweptAfterDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newTestManager(t, UnlimitedLimits())
		c, err := m.OpenConnection(network.DirOutbound, true, addr(t, "/ip4/192.0.2.1/tcp/1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Done()
		p := testPeer(t, 1)
		if err := c.SetPeer(p); err != nil {
			t.Fatal(err)
		}
		s, err := m.OpenStream(p, network.DirOutbound)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetProtocol("/p/1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetService("svc"); err != nil {
			t.Fatal(err)
		}
		s.Done()
		live := m.Summary().Live
		if live[KindProtocol] != 1 || live[KindService] != 1 {
			t.Fatalf("right after the stream ended: %v, want its protocol and service kept for a while", live)
		}
		time.Sleep(idleDelay - time.Nanosecond)
		synctest.Wait()
		if live := m.Summary().Live; live[KindProtocolPeer] != 1 {
			t.Fatalf("before the delay: %v", live)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		live = m.Summary().Live
		if live[KindProtocol]+live[KindProtocolPeer]+live[KindService]+live[KindServicePeer] != 0 || live[KindPeer] != 1 {
			t.Fatalf("after the delay: %v, want only the connection's peer", live)
		}
		m.mu.Lock()
		kept := m.protocols != nil || m.services != nil || m.idle != nil || m.sweepTimer != nil
		m.mu.Unlock()
		if kept {
			t.Error("the emptied maps, queue or timer are kept")
		}
		checkInvariants(t, m)
	})
}
