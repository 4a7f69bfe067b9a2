package compat

import (
	"fmt"
	"io"

	lprotocol "github.com/libp2p/go-libp2p/core/protocol"

	p2pnet "github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
)

// mux is the host's protocol router seen as go-libp2p's protocol.Switch.
// Handlers added through it get the stream, as a go-libp2p
// network.Stream, for their io.ReadWriteCloser, with its protocol
// negotiated, as go-libp2p's host hands them.
type mux struct{ h *p2pnet.Host }

var _ lprotocol.Switch = mux{}

func (m mux) AddHandler(pid lprotocol.ID, hf lprotocol.HandlerFunc) {
	m.h.Mux().AddHandler(toProtocol(pid), func(s network.Stream) { hf(lprotocol.ID(s.Protocol()), stream{s}) })
}

func (m mux) AddHandlerWithFunc(pid lprotocol.ID, match func(lprotocol.ID) bool, hf lprotocol.HandlerFunc) {
	if match == nil {
		panic(fmt.Sprintf("compat: AddHandlerWithFunc(%s) with a nil match function", pid))
	}
	m.h.Mux().AddHandlerWithFunc(toProtocol(pid),
		func(p protocol.ID) bool { return match(lprotocol.ID(p)) },
		func(s network.Stream) { hf(lprotocol.ID(s.Protocol()), stream{s}) })
}

func (m mux) RemoveHandler(pid lprotocol.ID) { m.h.Mux().RemoveHandler(toProtocol(pid)) }

func (m mux) Protocols() []lprotocol.ID { return Libp2pProtocolIDs(m.h.Mux().Protocols()) }

// Negotiate is not supported (an error matching errors.ErrUnsupported):
// the p2pnet host negotiates every inbound stream itself before its
// handler runs, and takes no stream from outside its swarm.
func (m mux) Negotiate(io.ReadWriteCloser) (lprotocol.ID, lprotocol.HandlerFunc, error) {
	return "", nil, fmt.Errorf("compat: Mux().Negotiate: %w", ErrUnsupported)
}

// Handle is not supported, like Negotiate.
func (m mux) Handle(io.ReadWriteCloser) error {
	return fmt.Errorf("compat: Mux().Handle: %w", ErrUnsupported)
}
