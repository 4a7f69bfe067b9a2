// Package ping implements the libp2p ping protocol, /ipfs/ping/1.0.0
// (https://github.com/libp2p/specs/blob/master/ping/ping.md): the dialer
// sends 32 random bytes, the listener echoes them, and the dialer measures
// the round trip. The dialer may repeat on the same stream.
//
// [Service] is the listening side, registered on a host; [Ping] and
// [PingOnce] are the dialing side.
//
// The listener drops a stream that stays idle (no complete payload read or
// echoed) for [IdleTimeout], and, as the spec asks, serves at most
// [MaxStreamsPerPeer] streams of one peer at a time.
//
// Package ping may import network, peer, peerstore and protocol of
// p2pnet's, and the standard library. It never imports the host: it
// declares the [Host] it needs.
package ping

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"
)

// ID is the protocol ID of ping.
const ID protocol.ID = "/ipfs/ping/1.0.0"

// ServiceName is the resource manager service that ping streams attach
// to.
const ServiceName = "libp2p.ping"

// PayloadSize is the size of a ping payload, in bytes.
const PayloadSize = 32

// IdleTimeout is how long the listener waits for a complete payload, or
// for its echo to be written, before it resets the stream. It is
// go-libp2p's value.
const IdleTimeout = 10 * time.Second

// MaxStreamsPerPeer is how many ping streams of one peer the listener
// serves at the same time; it resets streams beyond. The spec says a
// listener SHOULD accept at most two.
const MaxStreamsPerPeer = 2

// ErrPayloadMismatch is the error of a ping whose echo differs from the
// payload sent.
var ErrPayloadMismatch = errors.New("ping: echoed payload differs from the one sent")

// Host is what ping needs of a libp2p host.
type Host interface {
	// Peerstore returns the host's peerstore; ping records every
	// successful round trip in it (Peerstore.RecordLatency).
	Peerstore() peerstore.Peerstore
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
	// NewStream opens a stream to p speaking the first of pids the peer
	// supports.
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// Service answers pings: it echoes every 32-byte payload it reads until
// the dialer closes its side of the stream.
type Service struct {
	h      Host
	tracer Tracer // nil: none

	wg sync.WaitGroup // counts handlers running

	mu      sync.Mutex // guards the following
	closed  bool
	streams map[network.Stream]struct{}
	perPeer map[peer.ID]int
}

// payloadPool holds *[PayloadSize]byte buffers.
var payloadPool = sync.Pool{New: func() any { return new([PayloadSize]byte) }}

// NewService starts answering pings on h.
func NewService(h Host, opts ...Option) *Service {
	s := &Service{
		h:       h,
		streams: map[network.Stream]struct{}{},
		perPeer: map[peer.ID]int{},
	}
	for _, o := range opts {
		o(s)
	}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close stops answering pings: it removes the handler, resets the streams
// being served and waits for their handlers to return.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	streams := make([]network.Stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()

	s.h.RemoveStreamHandler(ID)
	for _, st := range streams {
		st.Reset()
	}
	s.wg.Wait()
	return nil
}

// track registers a stream being served; it reports false when the
// service is closed or the peer has MaxStreamsPerPeer streams already.
func (s *Service) track(st network.Stream, p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.perPeer[p] >= MaxStreamsPerPeer {
		return false
	}
	s.perPeer[p]++
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

// untrack undoes track.
func (s *Service) untrack(st network.Stream, p peer.ID) {
	s.mu.Lock()
	delete(s.streams, st)
	if s.perPeer[p]--; s.perPeer[p] <= 0 {
		delete(s.perPeer, p)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// handle serves one ping stream.
func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	if !s.track(st, p) {
		st.Reset()
		return
	}
	defer s.untrack(st, p)
	echoes, err := serve(st)
	if s.tracer != nil {
		s.tracer.Served(echoes, err)
	}
	if err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// serve echoes payloads until the dialer closes its side (nil) or
// something fails, and returns how many it echoed.
func serve(st network.Stream) (echoes int, err error) {
	scope := st.Scope()
	if err := scope.SetService(ServiceName); err != nil {
		return echoes, err
	}
	if err := scope.ReserveMemory(PayloadSize, network.ReservationPriorityAlways); err != nil {
		return echoes, err
	}
	defer scope.ReleaseMemory(PayloadSize)
	buf := payloadPool.Get().(*[PayloadSize]byte)
	defer payloadPool.Put(buf)
	for {
		if err := st.SetDeadline(time.Now().Add(IdleTimeout)); err != nil {
			return echoes, err
		}
		if _, err := io.ReadFull(st, buf[:]); err != nil {
			if err == io.EOF {
				return echoes, nil // closed between payloads: done
			}
			return echoes, err
		}
		if _, err := st.Write(buf[:]); err != nil {
			return echoes, err
		}
		echoes++
	}
}
