package rcmgr

import (
	"testing"

	"github.com/p2pnet/p2pnet/network"
)

// benchManager returns a manager with the default limits and a
// connection to a peer, as a stream finds them.
func benchManager(b *testing.B) (*Manager, network.ConnManagementScope) {
	m := newTestManager(b, DefaultLimits())
	c, err := m.OpenConnection(network.DirInbound, true, addr(b, "/ip4/192.0.2.1/tcp/4001"))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.SetPeer(testPeer(b, 1)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Done)
	return m, c
}

// BenchmarkOpenStream is what every stream costs: open its scope, set its
// protocol, reserve a buffer, end it.
func BenchmarkOpenStream(b *testing.B) {
	m, c := benchManager(b)
	p := c.PeerScope().Peer()
	b.ReportAllocs()
	for b.Loop() {
		s, err := m.OpenStream(p, network.DirInbound)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.SetProtocol("/bench/1.0.0"); err != nil {
			b.Fatal(err)
		}
		if err := s.ReserveMemory(4<<10, network.ReservationPriorityHigh); err != nil {
			b.Fatal(err)
		}
		s.Done()
	}
}

// BenchmarkOpenStreamParallel is BenchmarkOpenStream from every core at
// once, which measures contention on the manager's lock.
func BenchmarkOpenStreamParallel(b *testing.B) {
	m, c := benchManager(b)
	p := c.PeerScope().Peer()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := m.OpenStream(p, network.DirInbound)
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.SetProtocol("/bench/1.0.0"); err != nil {
				b.Error(err)
			}
			if err := s.ReserveMemory(4<<10, network.ReservationPriorityHigh); err != nil {
				b.Error(err)
			}
			s.Done()
		}
	})
}

// BenchmarkReserveMemory reserves and releases a buffer in a stream with
// a protocol and a service, the longest chain of scopes there is.
func BenchmarkReserveMemory(b *testing.B) {
	m, c := benchManager(b)
	s, err := m.OpenStream(c.PeerScope().Peer(), network.DirInbound)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Done()
	if err := s.SetProtocol("/bench/1.0.0"); err != nil {
		b.Fatal(err)
	}
	if err := s.SetService("bench"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.ReserveMemory(4<<10, network.ReservationPriorityMedium); err != nil {
			b.Fatal(err)
		}
		s.ReleaseMemory(4 << 10)
	}
}
