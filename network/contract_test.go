package network

// This file pins the contract of the libp2p network package at compile
// time. Each seed interface is written out again, method for method, from
// the seed documentation; assigning in both directions compiles only when
// the two method sets are identical, so adding or changing a method breaks
// the build of this test.

import (
	"context"
	"io"
	"net"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

type seedResourceScope interface {
	ReserveMemory(size int, prio uint8) error
	ReleaseMemory(size int)
	Stat() ScopeStat
	BeginSpan() (ResourceScopeSpan, error)
}

type seedResourceScopeSpan interface {
	seedResourceScope
	Done()
}

type seedServiceScope interface {
	seedResourceScope
	Name() string
}

type seedProtocolScope interface {
	seedResourceScope
	Protocol() protocol.ID
}

type seedPeerScope interface {
	seedResourceScope
	Peer() peer.ID
}

type seedConnScope interface{ seedResourceScope }

type seedConnManagementScope interface {
	seedResourceScopeSpan
	PeerScope() PeerScope
	SetPeer(peer.ID) error
}

type seedStreamScope interface {
	seedResourceScope
	SetService(srv string) error
}

type seedStreamManagementScope interface {
	seedResourceScopeSpan
	ProtocolScope() ProtocolScope
	SetProtocol(proto protocol.ID) error
	ServiceScope() ServiceScope
	SetService(srv string) error
	PeerScope() PeerScope
}

type seedResourceScopeViewer interface {
	ViewSystem(func(ResourceScope) error) error
	ViewTransient(func(ResourceScope) error) error
	ViewService(string, func(ServiceScope) error) error
	ViewProtocol(protocol.ID, func(ProtocolScope) error) error
	ViewPeer(peer.ID, func(PeerScope) error) error
}

type seedResourceManager interface {
	seedResourceScopeViewer
	OpenConnection(dir Direction, usefd bool, endpoint ma.Multiaddr) (ConnManagementScope, error)
	OpenStream(p peer.ID, dir Direction) (StreamManagementScope, error)
	Close() error
}

type seedMuxedStream interface {
	io.Reader
	io.Writer
	io.Closer
	CloseWrite() error
	CloseRead() error
	Reset() error
	SetDeadline(time.Time) error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

type seedMuxedConn interface {
	io.Closer
	IsClosed() bool
	OpenStream(context.Context) (MuxedStream, error)
	AcceptStream() (MuxedStream, error)
}

type seedMultiplexer interface {
	NewConn(c net.Conn, isServer bool, scope PeerScope) (MuxedConn, error)
}

type seedConnSecurity interface {
	LocalPeer() peer.ID
	RemotePeer() peer.ID
	RemotePublicKey() ic.PubKey
	ConnState() ConnectionState
}

type seedConnMultiaddrs interface {
	LocalMultiaddr() ma.Multiaddr
	RemoteMultiaddr() ma.Multiaddr
}

type seedConnStat interface{ Stat() ConnStats }

type seedConnScoper interface{ Scope() ConnScope }

type seedConn interface {
	io.Closer
	seedConnSecurity
	seedConnMultiaddrs
	seedConnStat
	seedConnScoper
	ID() string
	NewStream(context.Context) (Stream, error)
	GetStreams() []Stream
	IsClosed() bool
}

type seedStream interface {
	seedMuxedStream
	ID() string
	Protocol() protocol.ID
	SetProtocol(id protocol.ID) error
	Stat() Stats
	Conn() Conn
	Scope() StreamScope
}

type seedDialer interface {
	Peerstore() peerstore.Peerstore
	LocalPeer() peer.ID
	DialPeer(context.Context, peer.ID) (Conn, error)
	ClosePeer(peer.ID) error
	Connectedness(peer.ID) Connectedness
	Peers() []peer.ID
	Conns() []Conn
	ConnsToPeer(p peer.ID) []Conn
	Notify(Notifiee)
	StopNotify(Notifiee)
	CanDial(p peer.ID, addr ma.Multiaddr) bool
}

type seedNetwork interface {
	seedDialer
	io.Closer
	SetStreamHandler(StreamHandler)
	NewStream(context.Context, peer.ID) (Stream, error)
	Listen(...ma.Multiaddr) error
	ListenAddresses() []ma.Multiaddr
	InterfaceListenAddresses() ([]ma.Multiaddr, error)
	ResourceManager() ResourceManager
}

type seedNotifiee interface {
	Listen(Network, ma.Multiaddr)
	ListenClose(Network, ma.Multiaddr)
	Connected(Network, Conn)
	Disconnected(Network, Conn)
}

type seedMultiaddrDNSResolver interface {
	ResolveDNSAddr(ctx context.Context, expectedPeerID peer.ID, maddr ma.Multiaddr, recursionLimit, outputLimit int) ([]ma.Multiaddr, error)
	ResolveDNSComponent(ctx context.Context, maddr ma.Multiaddr, outputLimit int) ([]ma.Multiaddr, error)
}

// Both directions: identical method sets.
var (
	_ ResourceScope             = seedResourceScope(nil)
	_ seedResourceScope         = ResourceScope(nil)
	_ ResourceScopeSpan         = seedResourceScopeSpan(nil)
	_ seedResourceScopeSpan     = ResourceScopeSpan(nil)
	_ ServiceScope              = seedServiceScope(nil)
	_ seedServiceScope          = ServiceScope(nil)
	_ ProtocolScope             = seedProtocolScope(nil)
	_ seedProtocolScope         = ProtocolScope(nil)
	_ PeerScope                 = seedPeerScope(nil)
	_ seedPeerScope             = PeerScope(nil)
	_ ConnScope                 = seedConnScope(nil)
	_ seedConnScope             = ConnScope(nil)
	_ ConnManagementScope       = seedConnManagementScope(nil)
	_ seedConnManagementScope   = ConnManagementScope(nil)
	_ StreamScope               = seedStreamScope(nil)
	_ seedStreamScope           = StreamScope(nil)
	_ StreamManagementScope     = seedStreamManagementScope(nil)
	_ seedStreamManagementScope = StreamManagementScope(nil)
	_ ResourceScopeViewer       = seedResourceScopeViewer(nil)
	_ seedResourceScopeViewer   = ResourceScopeViewer(nil)
	_ ResourceManager           = seedResourceManager(nil)
	_ seedResourceManager       = ResourceManager(nil)
	_ MuxedStream               = seedMuxedStream(nil)
	_ seedMuxedStream           = MuxedStream(nil)
	_ MuxedConn                 = seedMuxedConn(nil)
	_ seedMuxedConn             = MuxedConn(nil)
	_ Multiplexer               = seedMultiplexer(nil)
	_ seedMultiplexer           = Multiplexer(nil)
	_ ConnSecurity              = seedConnSecurity(nil)
	_ seedConnSecurity          = ConnSecurity(nil)
	_ ConnMultiaddrs            = seedConnMultiaddrs(nil)
	_ seedConnMultiaddrs        = ConnMultiaddrs(nil)
	_ ConnStat                  = seedConnStat(nil)
	_ seedConnStat              = ConnStat(nil)
	_ ConnScoper                = seedConnScoper(nil)
	_ seedConnScoper            = ConnScoper(nil)
	_ Conn                      = seedConn(nil)
	_ seedConn                  = Conn(nil)
	_ Stream                    = seedStream(nil)
	_ seedStream                = Stream(nil)
	_ Dialer                    = seedDialer(nil)
	_ seedDialer                = Dialer(nil)
	_ Network                   = seedNetwork(nil)
	_ seedNetwork               = Network(nil)
	_ Notifiee                  = seedNotifiee(nil)
	_ seedNotifiee              = Notifiee(nil)
	_ MultiaddrDNSResolver      = seedMultiaddrDNSResolver(nil)
	_ seedMultiaddrDNSResolver  = MultiaddrDNSResolver(nil)
)

// Functions and func types, with the seed's signatures.
var (
	_ func(context.Context) (bool, string)                 = GetAllowLimitedConn
	_ func(context.Context) time.Duration                  = GetDialPeerTimeout
	_ func(context.Context) (bool, string)                 = GetForceDirectDial
	_ func(context.Context) (bool, string)                 = GetNoDial
	_ func(context.Context) (bool, bool, string)           = GetSimultaneousConnect
	_ func(context.Context) (bool, string)                 = GetUseTransient
	_ func(context.Context, string) context.Context        = WithAllowLimitedConn
	_ func(context.Context, time.Duration) context.Context = WithDialPeerTimeout
	_ func(context.Context, string) context.Context        = WithForceDirectDial
	_ func(context.Context, string) context.Context        = WithNoDial
	_ func(context.Context, bool, string) context.Context  = WithSimultaneousConnect
	_ func(context.Context, string) context.Context        = WithUseTransient

	_ func([]ma.Multiaddr) []AddrDelay = DialRanker(nil)
	_ func(Stream)                     = StreamHandler(nil)

	_ *time.Duration = &DialPeerTimeout
	_ *NoopNotifiee  = GlobalNoopNotifiee
)

// Struct fields, with the seed's names and types: a composite literal
// with every field named compiles only if each exists with that type.
var (
	_ = Stats{Direction: Direction(0), Opened: time.Time{}, Limited: false, Extra: map[interface{}]interface{}(nil)}
	_ = ConnStats{Stats: Stats{}, NumStreams: int(0)}
	_ = ScopeStat{NumStreamsInbound: int(0), NumStreamsOutbound: int(0), NumConnsInbound: int(0), NumConnsOutbound: int(0), NumFD: int(0), Memory: int64(0)}
	_ = ConnectionState{StreamMultiplexer: protocol.ID(""), Security: protocol.ID(""), Transport: "", UsedEarlyMuxerNegotiation: false}
	_ = AddrDelay{Addr: ma.Multiaddr(nil), Delay: time.Duration(0)}
	_ = NotifyBundle{
		ListenF:       func(Network, ma.Multiaddr) {},
		ListenCloseF:  func(Network, ma.Multiaddr) {},
		ConnectedF:    func(Network, Conn) {},
		DisconnectedF: func(Network, Conn) {},
	}
)
