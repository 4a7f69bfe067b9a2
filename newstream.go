package p2pnet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// NewStream opens a stream to p for the first of pids the peer supports,
// connecting first if needed. With one protocol the negotiation is lazy:
// it travels with the first write, costs no round trip of its own, and a
// refusal shows as an error wrapping multistream.ErrNotSupported on the
// first read. With several, the host uses what identify learned about
// the peer, and otherwise negotiates before returning.
func (h *Host) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if len(pids) == 0 {
		return nil, errors.New("p2pnet: NewStream needs at least one protocol")
	}
	s, err := h.swarm.NewStream(ctx, p)
	if err != nil {
		return nil, err
	}
	pid := pids[0]
	if len(pids) > 1 {
		if known, _ := h.ps.FirstSupportedProtocol(p, pids...); known != "" {
			pid = known
		} else {
			if d, ok := ctx.Deadline(); ok {
				s.SetDeadline(d)
			}
			pid, err = multistream.SelectOneOf(pids, s)
			s.SetDeadline(time.Time{})
			if err != nil {
				s.Reset()
				return nil, fmt.Errorf("p2pnet: negotiating with %s: %w", p, err)
			}
			if err := s.SetProtocol(pid); err != nil {
				s.Reset()
				return nil, err
			}
			h.ps.AddProtocols(p, pid)
			return s, nil
		}
	}
	if err := s.SetProtocol(pid); err != nil {
		s.Reset()
		return nil, err
	}
	return &lazyStream{Stream: s, lazy: multistream.NewLazyClient(s, pid)}, nil
}

// lazyStream is a stream whose protocol proposal travels with its first
// write.
type lazyStream struct {
	network.Stream
	lazy *multistream.LazyConn
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.lazy.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.lazy.Write(b) }
func (s *lazyStream) CloseWrite() error           { return s.lazy.CloseWrite() }
func (s *lazyStream) Close() error                { return s.lazy.Close() }
