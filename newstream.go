package p2pnet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/protocol"
)

// NewStream opens a stream to p for the first of pids the peer supports,
// connecting first if needed.
//
// With one protocol the negotiation is lazy: the proposal travels with the
// first write and costs no round trip of its own. A peer that refuses the
// protocol drops whatever was written before its answer arrived; the
// refusal, an error matching multistream.ErrNotSupported, is reported:
//
//   - by NewStream itself, before any data is sent, when identify has
//     completed on the connection and the peer's protocol list lacks the
//     protocol: the host then negotiates before returning (one round trip),
//     since a peer may serve protocols it does not list (handlers set with
//     SetStreamHandlerMatch are listed by their registration name);
//   - otherwise by the first Read, by every Write after the answer has
//     been read, and always by Close and CloseWrite, which wait for the
//     answer if no one has read it yet, so a stream that is only written
//     learns of the refusal from Close. They wait until the read deadline
//     (SetDeadline, SetReadDeadline) or for multistream.AnswerTimeout,
//     then fail with an error matching os.ErrDeadlineExceeded (Close
//     closes the stream anyway). The answer is read from the stream:
//     CloseRead before it has been read gives it up, and Close and
//     CloseWrite then report that failure to read it.
//
// With several protocols, the host uses what identify learned about the
// peer, and otherwise negotiates before returning. Negotiation before
// returning is bounded by ctx's deadline, or by multistream.AnswerTimeout
// when it has none.
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
		known, _ := h.ps.FirstSupportedProtocol(p, pids...)
		if known == "" {
			return h.negotiate(ctx, s, p, pids)
		}
		pid = known
	} else if h.identifiedWithout(s.Conn(), p, pid) {
		return h.negotiate(ctx, s, p, pids)
	}
	if err := s.SetProtocol(pid); err != nil {
		s.Reset()
		return nil, err
	}
	return &lazyStream{Stream: s, lazy: multistream.NewLazyClient(s, pid)}, nil
}

// identifiedWithout reports whether identify has completed on c and the
// protocols p listed lack pid. It does not wait for identify.
func (h *Host) identifiedWithout(c network.Conn, p peer.ID, pid protocol.ID) bool {
	select {
	case <-h.ids.IdentifyWait(c):
	default:
		return false // not yet: no waiting
	}
	// Identify ends the same way when it fails (a peer without identify).
	// A successful identify stores the agent version with the protocol
	// list; without it, the peerstore knows nothing of p's protocols.
	if _, err := h.ps.Get(p, identify.AgentVersionKey); err != nil {
		return false
	}
	known, _ := h.ps.FirstSupportedProtocol(p, pid) // allocates nothing
	return known == ""
}

// negotiate selects the first of pids p supports on s before returning,
// and remembers that p supports it.
func (h *Host) negotiate(ctx context.Context, s network.Stream, p peer.ID, pids []protocol.ID) (network.Stream, error) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Now().Add(multistream.AnswerTimeout)
	}
	s.SetDeadline(d)
	pid, err := multistream.SelectOneOf(pids, s)
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

// lazyStream is a stream whose protocol proposal travels with its first
// write; see multistream.LazyConn for when the answer is reported.
type lazyStream struct {
	network.Stream
	lazy *multistream.LazyConn
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.lazy.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.lazy.Write(b) }
func (s *lazyStream) CloseWrite() error           { return s.lazy.CloseWrite() }
func (s *lazyStream) Close() error                { return s.lazy.Close() }

// SetDeadline and SetReadDeadline go through the LazyConn, whose Close and
// CloseWrite wait for the answer until the read deadline.
func (s *lazyStream) SetDeadline(t time.Time) error     { return s.lazy.SetDeadline(t) }
func (s *lazyStream) SetReadDeadline(t time.Time) error { return s.lazy.SetReadDeadline(t) }
