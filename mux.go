package p2pnet

import (
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// Mux is the host's protocol router seen as go-libp2p's protocol.Switch
// (its Router half): it lists the protocols the host serves and adds and
// removes their handlers. It is a view of the host, not a copy: its
// changes are the host's, and like SetStreamHandler they are pushed to
// connected peers by identify and emitted as EvtLocalProtocolsUpdated.
// Handlers are network.StreamHandler values, which get the stream with
// its protocol negotiated (s.Protocol()), where go-libp2p's take the
// protocol and an io.ReadWriteCloser. A Mux is safe for concurrent use.
type Mux struct {
	h *Host
}

// Mux returns the host's protocol router.
func (h *Host) Mux() *Mux { return &Mux{h: h} }

// Protocols returns the protocols the host serves, sorted: those added
// with AddHandler and the names of those added with AddHandlerWithFunc.
func (m *Mux) Protocols() []protocol.ID { return m.h.Protocols() }

// AddHandler serves pid with handler, replacing any handler registered
// under pid; it is Host.SetStreamHandler, and panics on a nil handler or
// an invalid protocol ID.
func (m *Mux) AddHandler(pid protocol.ID, handler network.StreamHandler) {
	m.h.SetStreamHandler(pid, handler)
}

// AddHandlerWithFunc serves every protocol that match accepts with
// handler; pid names the registration (for RemoveHandler, Protocols and
// what identify announces), and match should accept it. A handler added
// with AddHandler for the exact protocol wins over match functions. It
// is Host.SetStreamHandlerMatch, and panics on a nil match or handler.
func (m *Mux) AddHandlerWithFunc(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	m.h.SetStreamHandlerMatch(pid, match, handler)
}

// RemoveHandler stops serving the registration named pid, if any; it is
// Host.RemoveStreamHandler.
func (m *Mux) RemoveHandler(pid protocol.ID) {
	m.h.RemoveStreamHandler(pid)
}
