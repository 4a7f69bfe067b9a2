package network

import (
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	"github.com/multiformats/go-multiaddr"
)

// NullResourceManager is a ResourceManager that limits nothing and
// accounts for nothing: every open succeeds with a NullScope. It serves
// tests and stands in where no manager is configured.
type NullResourceManager struct{}

var _ ResourceManager = (*NullResourceManager)(nil)

// ViewSystem calls f with a NullScope.
func (n *NullResourceManager) ViewSystem(f func(ResourceScope) error) error {
	return f(&NullScope{})
}

// ViewTransient calls f with a NullScope.
func (n *NullResourceManager) ViewTransient(f func(ResourceScope) error) error {
	return f(&NullScope{})
}

// ViewService calls f with a NullScope.
func (n *NullResourceManager) ViewService(svc string, f func(ServiceScope) error) error {
	return f(&NullScope{})
}

// ViewProtocol calls f with a NullScope.
func (n *NullResourceManager) ViewProtocol(p protocol.ID, f func(ProtocolScope) error) error {
	return f(&NullScope{})
}

// ViewPeer calls f with a NullScope.
func (n *NullResourceManager) ViewPeer(p peer.ID, f func(PeerScope) error) error {
	return f(&NullScope{})
}

// OpenConnection returns a NullScope.
func (n *NullResourceManager) OpenConnection(dir Direction, usefd bool, endpoint multiaddr.Multiaddr) (ConnManagementScope, error) {
	return &NullScope{}, nil
}

// OpenStream returns a NullScope.
func (n *NullResourceManager) OpenStream(p peer.ID, dir Direction) (StreamManagementScope, error) {
	return &NullScope{}, nil
}

// Close does nothing.
func (n *NullResourceManager) Close() error {
	return nil
}

// NullScope is every kind of scope at once, and accounts for nothing:
// reservations succeed, Stat is zero, and the scopes it hands out are
// NullScopes.
type NullScope struct{}

var (
	_ ResourceScope         = (*NullScope)(nil)
	_ ResourceScopeSpan     = (*NullScope)(nil)
	_ ServiceScope          = (*NullScope)(nil)
	_ ProtocolScope         = (*NullScope)(nil)
	_ PeerScope             = (*NullScope)(nil)
	_ ConnManagementScope   = (*NullScope)(nil)
	_ ConnScope             = (*NullScope)(nil)
	_ StreamScope           = (*NullScope)(nil)
	_ StreamManagementScope = (*NullScope)(nil)
)

// ReserveMemory succeeds.
func (n *NullScope) ReserveMemory(size int, prio uint8) error { return nil }

// ReleaseMemory does nothing.
func (n *NullScope) ReleaseMemory(size int) {}

// Stat returns a zero ScopeStat.
func (n *NullScope) Stat() ScopeStat { return ScopeStat{} }

// BeginSpan returns a NullScope.
func (n *NullScope) BeginSpan() (ResourceScopeSpan, error) { return &NullScope{}, nil }

// Done does nothing.
func (n *NullScope) Done() {}

// Name returns "".
func (n *NullScope) Name() string { return "" }

// Protocol returns "".
func (n *NullScope) Protocol() protocol.ID { return "" }

// Peer returns "".
func (n *NullScope) Peer() peer.ID { return "" }

// PeerScope returns a NullScope.
func (n *NullScope) PeerScope() PeerScope { return &NullScope{} }

// SetPeer succeeds.
func (n *NullScope) SetPeer(peer.ID) error { return nil }

// ProtocolScope returns a NullScope.
func (n *NullScope) ProtocolScope() ProtocolScope { return &NullScope{} }

// SetProtocol succeeds.
func (n *NullScope) SetProtocol(proto protocol.ID) error { return nil }

// ServiceScope returns a NullScope.
func (n *NullScope) ServiceScope() ServiceScope { return &NullScope{} }

// SetService succeeds.
func (n *NullScope) SetService(srv string) error { return nil }
