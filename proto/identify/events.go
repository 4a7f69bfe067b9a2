package identify

import (
	"slices"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Result is what a peer told about itself in answer to identify.
type Result struct {
	ListenAddrs     []ma.Multiaddr
	Protocols       []protocol.ID
	ProtocolVersion string
	AgentVersion    string
	// ObservedAddr is the address the peer sees us at; nil if it did not
	// say.
	ObservedAddr ma.Multiaddr
}

// Events are the callbacks through which a Service reports what it
// learns, for the host's event bus; any may be nil. They run on the
// service's goroutines, one call at a time per connection, and must not
// block.
type Events struct {
	// Identified follows each identify exchange that succeeded, once
	// what it told is stored.
	Identified func(c network.Conn, r Result)
	// Failed follows each identify exchange that failed, except when the
	// service is closing.
	Failed func(c network.Conn, err error)
	// ProtocolsUpdated follows a push, or an identify answer about a peer
	// whose protocols we knew, that changed the peer's protocols.
	ProtocolsUpdated func(p peer.ID, added, removed []protocol.ID)
}

// WithEvents makes the service report through ev. Default: no reports.
func WithEvents(ev Events) Option {
	return func(c *config) { c.events = ev }
}

// protocolDiff returns what is in now and not in old, and the reverse.
func protocolDiff(old, now []protocol.ID) (added, removed []protocol.ID) {
	for _, p := range now {
		if !slices.Contains(old, p) {
			added = append(added, p)
		}
	}
	for _, p := range old {
		if !slices.Contains(now, p) {
			removed = append(removed, p)
		}
	}
	return added, removed
}
