package compat

import (
	"fmt"
	"net"

	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

func toProtocol(id lprotocol.ID) protocol.ID { return protocol.ID(id) }

// rcmgr is p2pnet's resource manager seen as go-libp2p's.
type rcmgr struct{ m network.ResourceManager }

var _ lnetwork.ResourceManager = rcmgr{}

func (r rcmgr) ViewSystem(f func(lnetwork.ResourceScope) error) error {
	return r.m.ViewSystem(func(s network.ResourceScope) error { return f(scope{s}) })
}

func (r rcmgr) ViewTransient(f func(lnetwork.ResourceScope) error) error {
	return r.m.ViewTransient(func(s network.ResourceScope) error { return f(scope{s}) })
}

func (r rcmgr) ViewService(svc string, f func(lnetwork.ServiceScope) error) error {
	return r.m.ViewService(svc, func(s network.ServiceScope) error { return f(scope{s}) })
}

func (r rcmgr) ViewProtocol(p lprotocol.ID, f func(lnetwork.ProtocolScope) error) error {
	return r.m.ViewProtocol(toProtocol(p), func(s network.ProtocolScope) error { return f(scope{s}) })
}

func (r rcmgr) ViewPeer(p lpeer.ID, f func(lnetwork.PeerScope) error) error {
	return r.m.ViewPeer(peer.ID(p), func(s network.PeerScope) error { return f(scope{s}) })
}

func (r rcmgr) OpenConnection(dir lnetwork.Direction, usefd bool, endpoint ma.Multiaddr) (lnetwork.ConnManagementScope, error) {
	s, err := r.m.OpenConnection(network.Direction(dir), usefd, endpoint)
	if err != nil {
		return nil, Libp2pError(err)
	}
	return scope{s}, nil
}

// VerifySourceAddress reports false: p2pnet's resource manager does not
// ask for source-address verification (QUIC Retry is decided by the
// QUIC transport's own handshake limits).
func (r rcmgr) VerifySourceAddress(net.Addr) bool { return false }

func (r rcmgr) OpenStream(p lpeer.ID, dir lnetwork.Direction) (lnetwork.StreamManagementScope, error) {
	s, err := r.m.OpenStream(peer.ID(p), network.Direction(dir))
	if err != nil {
		return nil, Libp2pError(err)
	}
	return scope{s}, nil
}

// Close does nothing: the resource manager belongs to the host, which
// closes it.
func (r rcmgr) Close() error { return nil }

// scope is any p2pnet resource scope seen as the go-libp2p scope of the
// same kind. One type serves every kind: the methods of a kind are only
// reachable through a go-libp2p interface of that kind, which scope
// values are only handed out as when the p2pnet scope is of that kind.
type scope struct{ s network.ResourceScope }

var (
	_ lnetwork.ConnManagementScope   = scope{}
	_ lnetwork.StreamManagementScope = scope{}
	_ lnetwork.ServiceScope          = scope{}
	_ lnetwork.ProtocolScope         = scope{}
	_ lnetwork.PeerScope             = scope{}
	_ lnetwork.StreamScope           = scope{}
)

// scopeOf returns s as a go-libp2p scope; a connection or stream
// without one (a transport that keeps no accounts) gets the null scope,
// as in go-libp2p.
func scopeOf(s network.ResourceScope) scope {
	if s == nil {
		return scope{&network.NullScope{}}
	}
	return scope{s}
}

func (s scope) ReserveMemory(size int, prio uint8) error {
	return Libp2pError(s.s.ReserveMemory(size, prio))
}

func (s scope) ReleaseMemory(size int) { s.s.ReleaseMemory(size) }

func (s scope) Stat() lnetwork.ScopeStat {
	st := s.s.Stat()
	return lnetwork.ScopeStat{
		NumStreamsInbound: st.NumStreamsInbound, NumStreamsOutbound: st.NumStreamsOutbound,
		NumConnsInbound: st.NumConnsInbound, NumConnsOutbound: st.NumConnsOutbound,
		NumFD: st.NumFD, Memory: st.Memory,
	}
}

func (s scope) BeginSpan() (lnetwork.ResourceScopeSpan, error) {
	sp, err := s.s.BeginSpan()
	if err != nil {
		return nil, Libp2pError(err)
	}
	return scope{sp}, nil
}

// kind returns s's scope as T, or panics naming the method: reaching it
// means a go-libp2p interface was asserted on a scope of another kind.
func kind[T any](s scope, method string) T {
	t, ok := s.s.(T)
	if !ok {
		panic(fmt.Sprintf("compat: %s called on a %T resource scope, which has no such method", method, s.s))
	}
	return t
}

func (s scope) Done() { kind[network.ResourceScopeSpan](s, "Done").Done() }
func (s scope) Name() string {
	return kind[network.ServiceScope](s, "Name").Name()
}

func (s scope) Protocol() lprotocol.ID {
	return lprotocol.ID(kind[network.ProtocolScope](s, "Protocol").Protocol())
}

func (s scope) Peer() lpeer.ID { return lpeer.ID(kind[network.PeerScope](s, "Peer").Peer()) }

// PeerScope is on both connection and stream management scopes.
func (s scope) PeerScope() lnetwork.PeerScope {
	var ps network.PeerScope
	switch t := s.s.(type) {
	case network.ConnManagementScope:
		ps = t.PeerScope()
	case network.StreamManagementScope:
		ps = t.PeerScope()
	default:
		panic(fmt.Sprintf("compat: PeerScope called on a %T resource scope, which has no such method", s.s))
	}
	if ps == nil {
		return nil
	}
	return scope{ps}
}

func (s scope) SetPeer(p lpeer.ID) error {
	return Libp2pError(kind[network.ConnManagementScope](s, "SetPeer").SetPeer(peer.ID(p)))
}

func (s scope) ProtocolScope() lnetwork.ProtocolScope {
	ps := kind[network.StreamManagementScope](s, "ProtocolScope").ProtocolScope()
	if ps == nil {
		return nil
	}
	return scope{ps}
}

func (s scope) SetProtocol(p lprotocol.ID) error {
	return Libp2pError(kind[network.StreamManagementScope](s, "SetProtocol").SetProtocol(toProtocol(p)))
}

func (s scope) ServiceScope() lnetwork.ServiceScope {
	ss := kind[network.StreamManagementScope](s, "ServiceScope").ServiceScope()
	if ss == nil {
		return nil
	}
	return scope{ss}
}

// SetService is on both stream scopes and stream management scopes.
func (s scope) SetService(srv string) error {
	return Libp2pError(kind[network.StreamScope](s, "SetService").SetService(srv))
}
