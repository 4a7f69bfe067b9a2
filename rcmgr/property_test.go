package rcmgr

import (
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// propLimits are small enough that random operations hit every limit.
func propLimits() Limits {
	small := func(mem int64, conns, streams, fd int) Limit {
		return Limit{
			Memory: mem, FD: fd,
			Conns: conns, ConnsInbound: (conns + 1) * 2 / 3, ConnsOutbound: (conns + 1) * 2 / 3,
			Streams: streams, StreamsInbound: (streams + 1) * 2 / 3, StreamsOutbound: (streams + 1) * 2 / 3,
		}
	}
	return Limits{
		System:               small(64<<10, 9, 24, 6),
		Transient:            small(16<<10, 4, 6, 3),
		AllowlistedSystem:    small(32<<10, 4, 8, 3),
		AllowlistedTransient: small(8<<10, 2, 4, 2),
		ServiceDefault:       small(24<<10, 0, 8, 0),
		ServicePeerDefault:   small(8<<10, 0, 3, 0),
		ProtocolDefault:      small(24<<10, 0, 10, 0),
		ProtocolPeerDefault:  small(8<<10, 0, 2, 0),
		PeerDefault:          small(20<<10, 2, 8, 2),
		Conn:                 small(6<<10, 1, 0, 1),
		Stream:               small(6<<10, 0, 1, 0),
	}
}

// propState is what the property test has open.
type propState struct {
	conns   []network.ConnManagementScope
	streams []network.StreamManagementScope
	spans   []network.ResourceScopeSpan
	// reservations lists the memory reserved, by scope, to release later.
	reservations []reservation
}

type reservation struct {
	s network.ResourceScope
	n int
}

// TestRandomOperations applies random sequences of operations and checks
// after every step that no use is negative, no limit is exceeded, and the
// use of every scope matches what is open; and at the end that everything
// returns to zero and unused scopes are collected.
func TestRandomOperations(t *testing.T) {
	const seeds, steps = 20, 1500
	var ok, refused [numOps]int
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(seed)))
			m := newTestManager(t, propLimits(),
				WithLoopbackExempt(false),
				WithConnLimitsPerIP([]SubnetLimit{{PrefixLen: 32, Conns: 3}}, nil),
				WithAllowlist(addr(t, "/ip4/10.0.0.0/ipcidr/8"), addr(t, "/ip4/192.0.2.9/p2p/"+testPeer(t, 0).String())))
			peers := []peer.ID{testPeer(t, 0), testPeer(t, 1), testPeer(t, 2), testPeer(t, 3)}
			endpoints := []string{"/ip4/127.0.0.1/tcp/1", "/ip4/192.0.2.1/tcp/1", "/ip4/10.1.1.1/tcp/1", "/ip4/192.0.2.9/tcp/1", "/ip6/2001:db8::1/udp/1/quic-v1"}
			var st propState
			for step := range steps {
				op, err := st.step(t, m, rng, peers, endpoints)
				switch {
				case err == nil:
					ok[op]++
				case errors.Is(err, network.ErrResourceLimitExceeded):
					refused[op]++
				default:
					t.Fatalf("step %d: unexpected error %v", step, err)
				}
				checkInvariants(t, m)
			}
			// End everything, in random order.
			var ends []func()
			for _, s := range st.spans {
				ends = append(ends, s.Done)
			}
			for _, s := range st.streams {
				ends = append(ends, s.Done)
			}
			for _, c := range st.conns {
				ends = append(ends, c.Done)
			}
			rng.Shuffle(len(ends), func(i, j int) { ends[i], ends[j] = ends[j], ends[i] })
			for _, end := range ends {
				end()
				checkInvariants(t, m)
			}
			checkEmpty(t, m)
		})
	}
	// Every operation must have succeeded, and every one that can be
	// refused must have been, or the test proves little.
	for op := range numOps {
		if ok[op] == 0 || (refusable(op) && refused[op] == 0) {
			t.Errorf("operation %d: %d succeeded, %d refused", op, ok[op], refused[op])
		}
	}
}

// The operations of the property test.
const (
	opOpenConn = iota
	opSetPeer
	opConnDone
	opOpenStream
	opSetProtocol
	opSetService
	opStreamDone
	opReserve
	opRelease
	opBeginSpan
	opSpanDone
	numOps
)

// refusable reports whether a limit can refuse op.
func refusable(op int) bool {
	switch op {
	case opOpenConn, opSetPeer, opOpenStream, opSetProtocol, opSetService, opReserve:
		return true
	}
	return false
}

// step applies one random operation and says which. Operations that
// find nothing to act on count as successes.
func (st *propState) step(t *testing.T, m *Manager, rng *rand.Rand, peers []peer.ID, endpoints []string) (int, error) {
	pick := func(n int) int { return rng.Intn(n) }
	dir := network.Direction(1 + pick(2))
	op := pick(numOps)
	return op, st.apply(t, m, rng, op, dir, peers, endpoints)
}

// apply applies operation op. Using a span whose owner has ended is not
// an error here: the span is closed, which TestSpans checks.
func (st *propState) apply(t *testing.T, m *Manager, rng *rand.Rand, op int, dir network.Direction, peers []peer.ID, endpoints []string) error {
	pick := func(n int) int { return rng.Intn(n) }
	switch op {
	case opOpenConn:
		c, err := m.OpenConnection(dir, pick(2) == 0, addr(t, endpoints[pick(len(endpoints))]))
		if err == nil {
			st.conns = append(st.conns, c)
		}
		return err
	case opSetPeer:
		if len(st.conns) == 0 {
			return nil
		}
		c := st.conns[pick(len(st.conns))]
		if c.PeerScope() != nil {
			return nil
		}
		return c.SetPeer(peers[pick(len(peers))])
	case opConnDone:
		if len(st.conns) == 0 {
			return nil
		}
		i := pick(len(st.conns))
		st.conns[i].Done()
		st.conns = slices.Delete(st.conns, i, i+1)
	case opOpenStream:
		s, err := m.OpenStream(peers[pick(len(peers))], dir)
		if err == nil {
			st.streams = append(st.streams, s)
		}
		return err
	case opSetProtocol:
		if len(st.streams) == 0 {
			return nil
		}
		s := st.streams[pick(len(st.streams))]
		if s.ProtocolScope() != nil {
			return nil
		}
		return s.SetProtocol(protocol.ID(fmt.Sprint("/p/", pick(3))))
	case opSetService:
		if len(st.streams) == 0 {
			return nil
		}
		s := st.streams[pick(len(st.streams))]
		if s.ServiceScope() != nil {
			return nil
		}
		return s.SetService(fmt.Sprint("svc", pick(2)))
	case opStreamDone:
		if len(st.streams) == 0 {
			return nil
		}
		i := pick(len(st.streams))
		st.streams[i].Done()
		st.streams = slices.Delete(st.streams, i, i+1)
	case opReserve:
		s := st.anyScope(rng)
		if s == nil {
			return nil
		}
		n := 1 + pick(4<<10)
		prios := []uint8{network.ReservationPriorityLow, network.ReservationPriorityMedium, network.ReservationPriorityHigh, network.ReservationPriorityAlways}
		err := ignoreClosed(s.ReserveMemory(n, prios[pick(len(prios))]))
		if err == nil {
			st.reservations = append(st.reservations, reservation{s, n})
		}
		return err
	case opRelease:
		if len(st.reservations) > 0 {
			i := pick(len(st.reservations))
			st.reservations[i].s.ReleaseMemory(st.reservations[i].n)
			st.reservations = slices.Delete(st.reservations, i, i+1)
		}
	case opSpanDone:
		if len(st.spans) > 0 {
			i := pick(len(st.spans))
			st.spans[i].Done()
			st.spans = slices.Delete(st.spans, i, i+1)
		}
	case opBeginSpan:
		s := st.anyScope(rng)
		if s == nil {
			return nil
		}
		sp, err := s.BeginSpan()
		if err == nil {
			st.spans = append(st.spans, sp)
		}
		return ignoreClosed(err)
	}
	return nil
}

// anyScope picks an open conn, stream or span.
func (st *propState) anyScope(rng *rand.Rand) network.ResourceScope {
	n := len(st.conns) + len(st.streams) + len(st.spans)
	if n == 0 {
		return nil
	}
	i := rng.Intn(n)
	if i < len(st.conns) {
		return st.conns[i]
	}
	i -= len(st.conns)
	if i < len(st.streams) {
		return st.streams[i]
	}
	return st.spans[i-len(st.streams)]
}

// ignoreClosed drops the error of using a span whose owner ended.
func ignoreClosed(err error) error {
	if errors.Is(err, network.ErrResourceScopeClosed) {
		return nil
	}
	return err
}
