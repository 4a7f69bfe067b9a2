package swarm

import (
	"fmt"

	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// AddTransport registers t for the protocol codes t.Protocols() returns.
// It fails with ErrTransportExists when another transport already handles
// one of them, and with ErrSwarmClosed after Close.
func (s *Swarm) AddTransport(t transport.Transport) error {
	codes := t.Protocols()
	if len(codes) == 0 {
		return fmt.Errorf("swarm: transport %T handles no protocol", t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSwarmClosed
	}
	for _, code := range codes {
		if _, ok := s.transports[code]; ok {
			return fmt.Errorf("%w: %s", ErrTransportExists, protocolName(code))
		}
	}
	for _, code := range codes {
		s.transports[code] = t
	}
	return nil
}

// transportFor returns the transport that handles addr, or nil. An
// address with a /p2p-circuit component belongs to the transport
// registered for P_CIRCUIT; any other address to the transport registered
// for its last component that has one (so /udp/1/quic-v1 goes to QUIC,
// /tcp/1 to TCP, /tcp/1/ws to WebSocket if registered, else TCP, whose
// CanDial then refuses it).
func (s *Swarm) transportFor(addr ma.Multiaddr) transport.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if isRelayAddr(addr) {
		return s.transports[ma.P_CIRCUIT]
	}
	for i := len(addr) - 1; i >= 0; i-- {
		if t, ok := s.transports[addr[i].Code()]; ok {
			return t
		}
	}
	return nil
}

// dialTransport returns the transport that can dial addr as it is, or nil.
func (s *Swarm) dialTransport(addr ma.Multiaddr) transport.Transport {
	t := s.transportFor(addr)
	if t == nil || !t.CanDial(addr) {
		return nil
	}
	return t
}

func protocolName(code int) string {
	if p := ma.ProtocolWithCode(code); p.Code != 0 {
		return p.Name
	}
	return fmt.Sprintf("protocol %d", code)
}
