// Package benchproto holds the two stream protocols the benchmarks
// serve: a sink that reports how much it read, and an echo. Handlers
// allocate nothing of their own per stream, so that a benchmark counts
// the stack's allocations.
//
// Package benchproto is test machinery; it imports network and protocol.
package benchproto

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

const (
	// SinkID is Sink's protocol.
	SinkID protocol.ID = "/p2pnet/bench/sink/1.0.0"
	// EchoID is Echo's protocol.
	EchoID protocol.ID = "/p2pnet/bench/echo/1.0.0"
)

// Sink reads until EOF, then answers the number of bytes it read as 8
// bytes, big-endian, and closes.
func Sink(s network.Stream) {
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	s.Write(b[:])
	s.Close()
}

// echoBufs holds Echo's buffers, so that a benchmark counts the stack's
// allocations and not io.Copy's 32 KiB buffer.
var echoBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// Echo writes back what it reads until EOF, then closes.
func Echo(s network.Stream) {
	bp := echoBufs.Get().(*[]byte)
	defer echoBufs.Put(bp)
	for {
		n, err := s.Read(*bp)
		if n > 0 {
			if _, werr := s.Write((*bp)[:n]); werr != nil {
				s.Reset()
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				s.Close()
			} else {
				s.Reset()
			}
			return
		}
	}
}
