// Package rcmgr is p2pnet's resource manager: a network.ResourceManager
// that accounts for memory, streams, connections and file descriptors,
// refuses what would exceed a limit, and says exactly why.
//
// # Scopes
//
// Resources are reserved in scopes. Each scope counts against itself and
// against every scope above it, and a reservation is made in all of them
// or in none:
//
//	system                          everything (but allowlisted connections)
//	├── transient                   connections before SetPeer, streams before SetProtocol
//	├── peer P                      P's connections and streams
//	├── protocol X                  streams speaking X
//	│   └── protocol X / peer P     P's streams speaking X
//	└── service S                   streams of service S
//	    └── service S / peer P      P's streams of service S
//
// A connection scope (OpenConnection) starts under transient and system,
// and SetPeer moves it under its peer and system. A stream scope
// (OpenStream) starts under its peer, transient and system; SetProtocol
// moves it out of transient into its protocol and the peer's share of the
// protocol, and SetService adds its service and the peer's share of the
// service. A move either succeeds or changes nothing. Done releases what
// a connection or stream holds, once. BeginSpan on any scope gives a span:
// a scope without limits of its own whose reservations count against the
// scope it was begun on, and which releases them (and those of the spans
// begun on it) at Done.
//
// Peer, protocol and service scopes are created when first needed and
// removed when nothing holds or refers to them: removal happens in
// batches, whenever 64 have become unused or 100 ms after the first of a
// batch did (a timer, so an idle host keeps none of its finished streams'
// scopes), or at once when the owner calls GC. There is no background
// goroutine.
//
// Memory reservations take a priority prio; one succeeds when the scope
// would then hold at most (1+prio)*limit/256 bytes, as libp2p does. A
// memory limit of math.MaxInt64 (see Unlimited) is no limit, whatever the
// priority.
//
// # Refusals
//
// Every refusal is a *LimitError wrapping network.ErrResourceLimitExceeded.
// It names the scope that refused, the resource, the request, the use, the
// limit and the field of Limits that set it:
//
//	peer 12D3KooW…: cannot reserve inbound stream: 256 of 256 in use (limit from PeerDefault)
//	system: cannot reserve 20.0 MiB of memory at priority 101 (low): 390.1 MiB of 1.0 GiB in use, this priority may use up to 408.0 MiB (limit from System)
//
// Manager.Refusals counts refusals by kind of scope and resource,
// Manager.RefusalsByLimit by the limit that refused too, Manager.Snapshot
// lists every live scope with its use and limit, what each source holds
// of the fair shares, and the refusals (and marshals to JSON), and
// Manager.Summary gives the cheap part: the top scopes, the number of live
// scopes of each kind and the refusals. The rcmgr/rcmgrprom package
// exports the Summary to Prometheus, only when the program registers its
// collector.
//
// Refusals are also logged, at Info level through log/slog, in one line
// per interval (10 s by default) that has any: how many requests each
// limit refused, in which kind of scope, for which resource and from how
// many sources (WithRefusalLog).
//
// # Fair shares of the transient scope
//
// Every new connection and stream starts in the transient scope, which
// all peers share; on their own, its limits are first come, first
// served, and a few addresses could take all of it. Limits.Shares divides
// it. A source is a group of remote addresses (by default one IPv4
// address or one IPv6 /56), and
//
//   - a source may hold at most TransientConnsPerSource inbound
//     connections whose handshake has not named their peer (by default an
//     eighth of the transient scope's);
//   - an inbound stream counts as unnegotiated against its connection,
//     its peer and its source from OpenStream until SetProtocol; past a
//     burst (a quarter of the transient scope's inbound streams), a new
//     one must fit UnnegotiatedStreamsPerConn, UnnegotiatedStreamsPerPeer
//     and UnnegotiatedStreamsPerSource (a sixteenth each), so that eight
//     peers at their caps leave a quarter of the transient scope to the
//     others.
//
// The manager knows a stream's connection when its peer has one; a host
// tells it otherwise with AttachConn before negotiating the protocol.
// Like the per-IP limits, the per-source caps spare allowlisted and
// loopback addresses.
//
// # Connections per IP and the allowlist
//
// Besides the scopes, inbound connections are limited per remote address:
// by default 8 per IPv4 address, 8 per IPv6 /56 and 64 per IPv6 /48
// (WithConnLimitsPerIP). Loopback addresses are exempt, from these limits
// and from the per-source shares, unless WithLoopbackExempt(false), which
// makes each loopback address a host of its own. Outbound connections are
// not limited per address: the node chose to make them.
//
// WithAllowlist names trusted networks, such as /ip4/10.0.0.0/ipcidr/8 or
// /ip4/192.0.2.7/p2p/12D3KooW…. Connections from them are exempt from the
// per-IP limits, and when the transient or system scope refuses one, it
// is retried in the AllowlistedTransient and AllowlistedSystem scopes.
// An entry with /p2p/ admits only that peer: when SetPeer names another
// peer, the connection must fit the normal system limits instead.
//
// # Limits in JSON
//
// DefaultLimits scales the limits to the machine; LoadLimits reads a JSON
// file on top of them, and Limits.WriteJSON writes one. A file gives any
// of the scopes of Limits, each with any of the fields of Limit, and the
// Shares with any of theirs; what the file leaves out keeps its default. An entry of Service, ServicePeer,
// Protocol, ProtocolPeer or Peer overrides the matching default, and its
// missing fields come from that default. A field holds a whole number,
// "unlimited", "blockAll" (the same as 0) or "default"; Memory may also
// hold a size in B, KiB, MiB, GiB or TiB. A cap of the Shares holds a
// whole number, "unlimited" (the same as 0: no cap) or "default", and a
// prefix length a number or "default". Unknown fields are errors.
//
//	{
//	  "System":    {"Memory": "4GiB", "Conns": 1024, "ConnsInbound": 512, "FD": 4096},
//	  "Transient": {"Memory": "256MiB"},
//	  "Shares":    {"UnnegotiatedStreamsPerPeer": 8, "IPv6Prefix": 48},
//	  "PeerDefault": {"Streams": 1024, "StreamsInbound": 512},
//	  "Protocol": {
//	    "/ipfs/bitswap/1.2.0": {"Memory": "1GiB", "Streams": "unlimited"}
//	  },
//	  "Peer": {
//	    "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA": {"Conns": 64, "Memory": "unlimited"}
//	  }
//	}
//
// The package may import network, peer and protocol of p2pnet,
// go-multiaddr and the standard library.
package rcmgr
