package rcmgr

import (
	"fmt"
	"maps"
	"math"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// Limit is what one scope may hold at once. Every field is a plain
// maximum: 0 refuses every reservation of that resource, and the largest
// value of the field's type (see Unlimited) means no limit at all.
//
// Memory is in bytes. Conns and Streams cap the inbound and outbound
// counts together; ConnsInbound, ConnsOutbound, StreamsInbound and
// StreamsOutbound cap each direction. FD counts connections that hold a
// file descriptor.
type Limit struct {
	Memory          int64
	FD              int
	Conns           int
	ConnsInbound    int
	ConnsOutbound   int
	Streams         int
	StreamsInbound  int
	StreamsOutbound int
}

// Unlimited is a Limit that limits nothing. A Memory of math.MaxInt64
// disables the memory check altogether, so reservation priorities make no
// difference in an unlimited scope.
var Unlimited = Limit{
	Memory:          math.MaxInt64,
	FD:              math.MaxInt,
	Conns:           math.MaxInt,
	ConnsInbound:    math.MaxInt,
	ConnsOutbound:   math.MaxInt,
	Streams:         math.MaxInt,
	StreamsInbound:  math.MaxInt,
	StreamsOutbound: math.MaxInt,
}

// BlockAll is a Limit that refuses everything: the zero Limit.
var BlockAll = Limit{}

// Resource names one of the limited resources.
type Resource uint8

// The resources, in the order a reservation checks them.
const (
	// ResourceMemory is memory, in bytes.
	ResourceMemory Resource = iota
	// ResourceStreamsInbound is inbound streams.
	ResourceStreamsInbound
	// ResourceStreamsOutbound is outbound streams.
	ResourceStreamsOutbound
	// ResourceStreams is streams of either direction.
	ResourceStreams
	// ResourceConnsInbound is inbound connections.
	ResourceConnsInbound
	// ResourceConnsOutbound is outbound connections.
	ResourceConnsOutbound
	// ResourceConns is connections of either direction.
	ResourceConns
	// ResourceFD is file descriptors.
	ResourceFD

	numResources = iota
)

// String returns the resource as error messages name it, such as
// "inbound stream".
func (r Resource) String() string {
	switch r {
	case ResourceMemory:
		return "memory"
	case ResourceStreamsInbound:
		return "inbound stream"
	case ResourceStreamsOutbound:
		return "outbound stream"
	case ResourceStreams:
		return "stream"
	case ResourceConnsInbound:
		return "inbound connection"
	case ResourceConnsOutbound:
		return "outbound connection"
	case ResourceConns:
		return "connection"
	case ResourceFD:
		return "file descriptor"
	}
	return fmt.Sprintf("Resource(%d)", uint8(r))
}

// FieldName returns the name of the Limit field that limits r, such as
// "StreamsInbound"; metrics label resources with it.
func (r Resource) FieldName() string {
	if int(r) < len(resourceField) {
		return resourceField[r]
	}
	return r.String()
}

// Get returns the field of l that limits r.
func (l Limit) Get(r Resource) int64 { return l.field(r) }

// IsUnlimited reports whether l sets no limit on r.
func (l Limit) IsUnlimited(r Resource) bool { return unlimited(r, l.field(r)) }

// Used returns how much of r the use st holds.
func Used(st network.ScopeStat, r Resource) int64 { return amount(&st, r) }

// field returns the Limit field that limits r.
func (l *Limit) field(r Resource) int64 {
	switch r {
	case ResourceMemory:
		return l.Memory
	case ResourceStreamsInbound:
		return int64(l.StreamsInbound)
	case ResourceStreamsOutbound:
		return int64(l.StreamsOutbound)
	case ResourceStreams:
		return int64(l.Streams)
	case ResourceConnsInbound:
		return int64(l.ConnsInbound)
	case ResourceConnsOutbound:
		return int64(l.ConnsOutbound)
	case ResourceConns:
		return int64(l.Conns)
	case ResourceFD:
		return int64(l.FD)
	}
	return 0
}

// unlimited reports whether v, the value of r's field, means no limit.
func unlimited(r Resource, v int64) bool {
	if r == ResourceMemory {
		return v == math.MaxInt64
	}
	return v == math.MaxInt
}

// validate reports the first negative field of l.
func (l Limit) validate(name string) error {
	for r := Resource(0); r < numResources; r++ {
		if l.field(r) < 0 {
			return fmt.Errorf("%w: %s.%s is negative (%d)", ErrInvalidLimits, name, resourceField[r], l.field(r))
		}
	}
	return nil
}

// resourceField is the Limit field name of each resource, as written in
// JSON.
var resourceField = [numResources]string{
	ResourceMemory:          "Memory",
	ResourceFD:              "FD",
	ResourceConns:           "Conns",
	ResourceConnsInbound:    "ConnsInbound",
	ResourceConnsOutbound:   "ConnsOutbound",
	ResourceStreams:         "Streams",
	ResourceStreamsInbound:  "StreamsInbound",
	ResourceStreamsOutbound: "StreamsOutbound",
}

// Limits is the configuration of a Manager: a Limit for every scope.
//
// The maps override the defaults for particular services, protocols and
// peers: Service["x"] replaces ServiceDefault for service x, ServicePeer["x"]
// replaces ServicePeerDefault for each peer's share of service x, and so on.
// A nil map overrides nothing.
type Limits struct {
	// System limits everything the node holds, allowlisted connections
	// excepted.
	System Limit
	// Transient limits connections before their handshake names the peer,
	// and streams before their protocol is negotiated.
	Transient Limit
	// AllowlistedSystem plays System's part for connections from
	// allowlisted addresses (see WithAllowlist).
	AllowlistedSystem Limit
	// AllowlistedTransient plays Transient's part for connections from
	// allowlisted addresses.
	AllowlistedTransient Limit

	// ServiceDefault limits each service.
	ServiceDefault Limit
	// ServicePeerDefault limits each peer within each service.
	ServicePeerDefault Limit
	// ProtocolDefault limits each protocol.
	ProtocolDefault Limit
	// ProtocolPeerDefault limits each peer within each protocol.
	ProtocolPeerDefault Limit
	// PeerDefault limits each peer.
	PeerDefault Limit

	// Conn limits each connection (it holds one connection and at most one
	// file descriptor, and the memory its transport and muxer reserve).
	Conn Limit
	// Stream limits each stream (it holds one stream and the memory its
	// owner reserves).
	Stream Limit

	// Shares divides the transient scope among the addresses, connections
	// and peers that use it. The zero Shares divides nothing.
	Shares Shares

	// Service overrides ServiceDefault, by service name.
	Service map[string]Limit
	// ServicePeer overrides ServicePeerDefault, by service name.
	ServicePeer map[string]Limit
	// Protocol overrides ProtocolDefault, by protocol.
	Protocol map[protocol.ID]Limit
	// ProtocolPeer overrides ProtocolPeerDefault, by protocol.
	ProtocolPeer map[protocol.ID]Limit
	// Peer overrides PeerDefault, by peer.
	Peer map[peer.ID]Limit
}

// UnlimitedLimits returns Limits under which nothing is ever refused:
// every Limit is Unlimited and the Shares are zero, which caps nothing.
func UnlimitedLimits() Limits {
	return Limits{
		System:               Unlimited,
		Transient:            Unlimited,
		AllowlistedSystem:    Unlimited,
		AllowlistedTransient: Unlimited,
		ServiceDefault:       Unlimited,
		ServicePeerDefault:   Unlimited,
		ProtocolDefault:      Unlimited,
		ProtocolPeerDefault:  Unlimited,
		PeerDefault:          Unlimited,
		Conn:                 Unlimited,
		Stream:               Unlimited,
	}
}

// clone returns l with maps of its own.
func (l Limits) clone() Limits {
	l.Service = maps.Clone(l.Service)
	l.ServicePeer = maps.Clone(l.ServicePeer)
	l.Protocol = maps.Clone(l.Protocol)
	l.ProtocolPeer = maps.Clone(l.ProtocolPeer)
	l.Peer = maps.Clone(l.Peer)
	return l
}

// Validate reports an error wrapping ErrInvalidLimits when a limit is
// negative or a prefix length of Shares is out of range.
func (l Limits) Validate() error {
	for _, f := range l.fixed() {
		if err := f.limit.validate(f.name); err != nil {
			return err
		}
	}
	if err := l.Shares.validate(); err != nil {
		return err
	}
	for k, v := range l.Service {
		if err := v.validate(fmt.Sprintf("Service[%q]", k)); err != nil {
			return err
		}
	}
	for k, v := range l.ServicePeer {
		if err := v.validate(fmt.Sprintf("ServicePeer[%q]", k)); err != nil {
			return err
		}
	}
	for k, v := range l.Protocol {
		if err := v.validate(fmt.Sprintf("Protocol[%q]", string(k))); err != nil {
			return err
		}
	}
	for k, v := range l.ProtocolPeer {
		if err := v.validate(fmt.Sprintf("ProtocolPeer[%q]", string(k))); err != nil {
			return err
		}
	}
	for k, v := range l.Peer {
		if err := v.validate(fmt.Sprintf("Peer[%q]", k.String())); err != nil {
			return err
		}
	}
	return nil
}

// namedLimit is a fixed field of Limits with its name.
type namedLimit struct {
	name  string
	limit *Limit
}

// fixed returns the fields of l that are not maps, in declaration order.
func (l *Limits) fixed() []namedLimit {
	return []namedLimit{
		{"System", &l.System},
		{"Transient", &l.Transient},
		{"AllowlistedSystem", &l.AllowlistedSystem},
		{"AllowlistedTransient", &l.AllowlistedTransient},
		{"ServiceDefault", &l.ServiceDefault},
		{"ServicePeerDefault", &l.ServicePeerDefault},
		{"ProtocolDefault", &l.ProtocolDefault},
		{"ProtocolPeerDefault", &l.ProtocolPeerDefault},
		{"PeerDefault", &l.PeerDefault},
		{"Conn", &l.Conn},
		{"Stream", &l.Stream},
	}
}

// Sizes in bytes.
const (
	kib int64 = 1 << 10
	mib int64 = 1 << 20
	gib int64 = 1 << 30
)

// The inputs of DefaultLimits when the machine cannot tell.
const (
	// fallbackTotalMemory is assumed when the machine's memory is unknown.
	fallbackTotalMemory = 1 * gib
	// fallbackFDs is assumed when the file descriptor limit is unknown.
	fallbackFDs = 256
	// maxFDs caps the file descriptor limit read from the system, which
	// can be "infinite".
	maxFDs = 1 << 20
	// minMemoryBudget is the least memory DefaultLimits gives the stack.
	minMemoryBudget = 128 * mib
	// minFDBudget is the least file descriptors DefaultLimits gives the
	// stack.
	minFDBudget = 128
)

// DefaultLimits returns limits scaled to this machine: the stack may use
// an eighth of its memory (at least 128 MiB) and half of the process's
// file descriptor limit (at least 128). The memory is the limit set by
// runtime/debug.SetMemoryLimit (or GOMEMLIMIT) when there is one, else
// the total of /proc/meminfo, else 1 GiB; the file descriptor limit is
// RLIMIT_NOFILE, else 256.
func DefaultLimits() Limits {
	memory := max(totalMemory()/8, minMemoryBudget)
	fds := max(fdLimit()/2, minFDBudget)
	return ScaledDefaultLimits(memory, fds)
}

// ScaledDefaultLimits returns the default limits for a stack that may use
// memory bytes and fds file descriptors in all: System gets exactly that,
// and every other limit is derived from them.
//
// Each limit is a base plus an increase per GiB of memory, as this table
// shows (counts are inbound/outbound/total; "+" gives the increase per
// GiB):
//
//	scope                 memory           conns                   streams                         FD
//	System                memory           64/128/128 +64/128/128  1024/2048/2048 +1024/2048/2048  fds
//	Transient             32 MiB +128 MiB  32/64/64 +16/32/32      128/256/256 +128/256/256        fds/4
//	AllowlistedSystem     as System
//	AllowlistedTransient  as Transient
//	ServiceDefault        64 MiB +128 MiB  0                       1024/4096/4096 +512/2048/2048   0
//	ServicePeerDefault    16 MiB +4 MiB    0                       128/256/256 +4/8/8              0
//	ProtocolDefault       64 MiB +164 MiB  0                       512/2048/2048 +256/512/512      0
//	ProtocolPeerDefault   16 MiB +4 MiB    0                       64/128/256 +4/8/16              0
//	PeerDefault           64 MiB +128 MiB  8/8/8                   256/512/512 +128/256/256        fds/64
//	Conn                  32 MiB           1/1/1                   0                               1
//	Stream                16 MiB           0                       1/1/1                           0
//
// The numbers are go-libp2p's defaults, except that System's memory is
// exactly the budget (go-libp2p adds 128 MiB). Services and protocols hold
// streams, never connections, so their connection limits are 0. Transient
// and PeerDefault get at least 64 and 4 file descriptors. PeerDefault's
// streams are capped at half of Transient's, so that no single peer can
// fill the transient scope that every new stream starts in (go-libp2p's
// table lets one peer hold more than the whole transient scope).
//
// The Shares, which go-libp2p does not have, follow from Transient:
//
//	IPv4Prefix, IPv6Prefix             32, 56
//	TransientConnsPerSource            Transient.ConnsInbound/8, at least 1
//	UnnegotiatedStreamsPerConn         Transient.StreamsInbound/16, at least 1
//	UnnegotiatedStreamsPerPeer         Transient.StreamsInbound/16, at least 1
//	UnnegotiatedStreamsPerSource       Transient.StreamsInbound/16, at least 1
//	UnnegotiatedStreamsBurst           Transient.StreamsInbound/4
//
// So eight addresses at their share of transient connections fill the
// transient scope's inbound connections, and nine cannot; and however
// many peers have opened streams that name no protocol, at most a quarter
// of the transient scope's inbound streams exceed their caps (the burst),
// so eight peers at their cap (a sixteenth each) leave at least a quarter
// to the others. With 1 GiB of budget that is 6 transient connections per
// address of 48, and 16 unnegotiated streams per connection, peer and
// address, past a burst of 64, of 256.
func ScaledDefaultLimits(memory int64, fds int) Limits {
	memory = max(memory, 0)
	fds = max(fds, 0)
	mibs := memory >> 20 // the increases are per GiB, so each is scaled by mibs/1024
	n := func(base, perGiB int) int {
		return base + int(int64(perGiB)*mibs/1024)
	}
	m := func(base, perGiB int64) int64 {
		return base + perGiB/1024*mibs
	}
	conns := func(l *Limit, in, out, total, incIn, incOut, incTotal int) {
		l.ConnsInbound, l.ConnsOutbound, l.Conns = n(in, incIn), n(out, incOut), n(total, incTotal)
	}
	streams := func(l *Limit, in, out, total, incIn, incOut, incTotal int) {
		l.StreamsInbound, l.StreamsOutbound, l.Streams = n(in, incIn), n(out, incOut), n(total, incTotal)
	}

	var l Limits
	l.System.Memory = memory
	l.System.FD = fds
	conns(&l.System, 64, 128, 128, 64, 128, 128)
	streams(&l.System, 1024, 2048, 2048, 1024, 2048, 2048)

	l.Transient.Memory = m(32*mib, 128*mib)
	l.Transient.FD = max(fds/4, 64)
	conns(&l.Transient, 32, 64, 64, 16, 32, 32)
	streams(&l.Transient, 128, 256, 256, 128, 256, 256)

	l.AllowlistedSystem = l.System
	l.AllowlistedTransient = l.Transient

	l.ServiceDefault.Memory = m(64*mib, 128*mib)
	streams(&l.ServiceDefault, 1024, 4096, 4096, 512, 2048, 2048)

	l.ServicePeerDefault.Memory = m(16*mib, 4*mib)
	streams(&l.ServicePeerDefault, 128, 256, 256, 4, 8, 8)

	l.ProtocolDefault.Memory = m(64*mib, 164*mib)
	streams(&l.ProtocolDefault, 512, 2048, 2048, 256, 512, 512)

	l.ProtocolPeerDefault.Memory = m(16*mib, 4*mib)
	streams(&l.ProtocolPeerDefault, 64, 128, 256, 4, 8, 16)

	l.PeerDefault.Memory = m(64*mib, 128*mib)
	l.PeerDefault.FD = max(fds/64, 4)
	conns(&l.PeerDefault, 8, 8, 8, 0, 0, 0)
	streams(&l.PeerDefault, 256, 512, 512, 128, 256, 256)
	// Every new stream starts in the transient scope, which all peers
	// share: one peer must not be able to fill it with streams that never
	// name a protocol, so a peer gets at most half of it.
	l.PeerDefault.StreamsInbound = min(l.PeerDefault.StreamsInbound, l.Transient.StreamsInbound/2)
	l.PeerDefault.StreamsOutbound = min(l.PeerDefault.StreamsOutbound, l.Transient.StreamsOutbound/2)
	l.PeerDefault.Streams = min(l.PeerDefault.Streams, l.Transient.Streams/2)

	l.Conn = Limit{Memory: 32 * mib, FD: 1, Conns: 1, ConnsInbound: 1, ConnsOutbound: 1}
	l.Stream = Limit{Memory: 16 * mib, Streams: 1, StreamsInbound: 1, StreamsOutbound: 1}
	l.Shares = defaultShares(l.Transient)
	return l
}

// delta is what one reservation adds to a scope; it has the shape of a
// ScopeStat.
type delta = network.ScopeStat

// amount returns how much of r the use u holds.
func amount(u *network.ScopeStat, r Resource) int64 {
	switch r {
	case ResourceMemory:
		return u.Memory
	case ResourceStreamsInbound:
		return int64(u.NumStreamsInbound)
	case ResourceStreamsOutbound:
		return int64(u.NumStreamsOutbound)
	case ResourceStreams:
		return int64(u.NumStreamsInbound + u.NumStreamsOutbound)
	case ResourceConnsInbound:
		return int64(u.NumConnsInbound)
	case ResourceConnsOutbound:
		return int64(u.NumConnsOutbound)
	case ResourceConns:
		return int64(u.NumConnsInbound + u.NumConnsOutbound)
	case ResourceFD:
		return int64(u.NumFD)
	}
	return 0
}

// memoryThreshold returns how much memory a scope whose limit is limit
// may hold after a reservation at priority prio: (1+prio)*limit/256,
// computed without overflow. An unlimited scope (math.MaxInt64) has no
// threshold below its limit.
func memoryThreshold(limit int64, prio uint8) int64 {
	if limit == math.MaxInt64 {
		return math.MaxInt64
	}
	f := int64(prio) + 1
	// limit = q*256 + r, so (1+prio)*limit/256 = q*f + r*f/256 exactly,
	// and neither product can overflow.
	q, r := limit/256, limit%256
	return q*f + r*f/256
}
