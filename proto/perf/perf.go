// Package perf implements the libp2p perf protocol, /perf/1.0.0
// (https://github.com/libp2p/specs/blob/master/perf/perf.md), which
// measures throughput between two peers.
//
// The client opens a stream, sends the number of bytes it wants back as a
// big-endian uint64, uploads any number of bytes and closes its side for
// writing. The server reads the number, reads and discards until the
// client's side ends, then sends the requested number of bytes and closes
// the stream. [Service] is the server; [Run] is the client.
//
// The spec warns that perf lets a client make the server work hard and
// should not be served by default on public nodes. The server bounds its
// memory (one buffer per stream, reserved in the stream's scope) and drops
// streams that make no progress for [IdleTimeout].
//
// Package perf may import network, peer and protocol of p2pnet's, and the
// standard library. It never imports the host: it declares the [Host] it
// needs.
package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// ID is the protocol ID of perf.
const ID protocol.ID = "/perf/1.0.0"

// ServiceName is the resource manager service that perf streams attach
// to.
const ServiceName = "libp2p.perf"

// HeaderSize is the size of the request header: the number of bytes the
// client wants to download, a big-endian uint64.
const HeaderSize = 8

// BufferSize is the size of the buffer each side reads into and writes
// from, reserved in the stream's scope for the life of the transfer.
const BufferSize = 64 << 10

// IdleTimeout is how long the server waits for a read or a write to make
// progress before it resets the stream.
const IdleTimeout = 30 * time.Second

// ErrShortHeader is the error of a stream that ends before its 8-byte
// header.
var ErrShortHeader = errors.New("perf: stream ended within the 8-byte header")

// Host is what perf needs of a libp2p host.
type Host interface {
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
	// NewStream opens a stream to p speaking the first of pids the peer
	// supports.
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// bufPool holds *[]byte buffers of BufferSize bytes.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, BufferSize)
	return &b
}}

// ReadHeader reads the request header from r and returns the number of
// bytes the client wants to download. A stream that ends before 8 bytes
// gives an error matching ErrShortHeader.
func ReadHeader(r io.Reader) (uint64, error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, ErrShortHeader
		}
		return 0, fmt.Errorf("perf: reading the header: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// AppendHeader appends the request header asking for download bytes.
func AppendHeader(dst []byte, download uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, download)
}

// Service serves perf requests.
type Service struct {
	h      Host
	tracer Tracer // nil: none

	wg sync.WaitGroup // counts handlers running

	mu      sync.Mutex // guards the following
	closed  bool
	streams map[network.Stream]struct{}
}

// NewService starts serving perf on h.
func NewService(h Host, opts ...Option) *Service {
	s := &Service{h: h, streams: map[network.Stream]struct{}{}}
	for _, o := range opts {
		o(s)
	}
	h.SetStreamHandler(ID, s.handle)
	return s
}

// Close stops serving perf: it removes the handler, resets the streams
// being served and waits for their handlers to return.
func (s *Service) Close() error {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	streams := make([]network.Stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	if first {
		s.h.RemoveStreamHandler(ID)
	}
	for _, st := range streams {
		st.Reset()
	}
	s.wg.Wait()
	return nil
}

// track registers a stream being served; it reports false once the
// service is closed.
func (s *Service) track(st network.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

// untrack undoes track.
func (s *Service) untrack(st network.Stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.wg.Done()
}

// handle serves one perf stream.
func (s *Service) handle(st network.Stream) {
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	received, sent, err := serve(st)
	if s.tracer != nil {
		s.tracer.Served(received, sent, err)
	}
	if err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// serve runs the server side of the protocol on st, and returns what it
// received and sent.
func serve(st network.Stream) (received, sent uint64, err error) {
	scope := st.Scope()
	if err := scope.SetService(ServiceName); err != nil {
		return received, sent, err
	}
	if err := scope.ReserveMemory(BufferSize, network.ReservationPriorityHigh); err != nil {
		return received, sent, err
	}
	defer scope.ReleaseMemory(BufferSize)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	if err := st.SetReadDeadline(time.Now().Add(IdleTimeout)); err != nil {
		return received, sent, err
	}
	download, err := ReadHeader(st)
	if err != nil {
		return received, sent, err
	}
	n, err := drain(st, buf)
	received = n
	if err != nil {
		return received, sent, err
	}
	if err := st.SetReadDeadline(time.Time{}); err != nil {
		return received, sent, err
	}
	clear(buf)
	for download > 0 {
		n := uint64(len(buf))
		if download < n {
			n = download
		}
		if err := st.SetWriteDeadline(time.Now().Add(IdleTimeout)); err != nil {
			return received, sent, err
		}
		if _, err := st.Write(buf[:n]); err != nil {
			return received, sent, err
		}
		download -= n
		sent += n
	}
	return received, sent, nil
}

// drain reads and discards until EOF, allowing IdleTimeout for each read,
// and returns the number of bytes read.
func drain(st network.Stream, buf []byte) (uint64, error) {
	var total uint64
	for {
		n, err := st.Read(buf)
		total += uint64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if err := st.SetReadDeadline(time.Now().Add(IdleTimeout)); err != nil {
			return total, err
		}
	}
}
