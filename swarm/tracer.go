package swarm

import (
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Tracer observes the swarm's connections, dials and streams, for
// metrics (package metrics implements it). The swarm calls it only when
// one is set (WithTracer); every method must be safe for concurrent use
// and must not block or call back into the swarm.
type Tracer interface {
	// ConnOpened follows the adding of a connection, before its
	// Connected notifications.
	ConnOpened(c network.Conn)
	// ConnClosed follows the first Close of a connection that
	// ConnOpened reported; open is how long it was open.
	ConnClosed(c network.Conn, open time.Duration)
	// DialDone follows each dial of one address by a transport: took is
	// how long the transport took, err is nil on success.
	DialDone(addr ma.Multiaddr, took time.Duration, err error)
	// DialSkipped reports an address of a peer that a DialPeer did not
	// dial, and why (backoff, gated, black-holed, ...).
	DialSkipped(addr ma.Multiaddr, err error)
	// StreamOpened follows the adding of a stream.
	StreamOpened(dir network.Direction)
	// StreamProtocol follows SetProtocol: old is the stream's earlier
	// protocol ("" when it had none).
	StreamProtocol(dir network.Direction, old, now protocol.ID)
	// StreamClosed follows the release of a stream: proto is its
	// protocol ("" when it never had one), in and out the bytes read and
	// written through it.
	StreamClosed(dir network.Direction, proto protocol.ID, in, out int64)
}

// WithTracer makes the swarm report to t. Default: none, and then the
// swarm's only cost is one nil check per connection, dial and stream
// event, and one predictable branch per Read and Write.
func WithTracer(t Tracer) Option {
	return func(c *config) error {
		c.tracer = t
		return nil
	}
}
