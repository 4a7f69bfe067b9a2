package rcmgr

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/p2pnet/p2pnet/network"
)

// ScopeSnapshot is one scope as Snapshot saw it.
type ScopeSnapshot struct {
	// Name names the scope as errors do: "system", "peer 12D3KooW…",
	// "span 7 of stream 5".
	Name string
	// Kind is the scope's kind.
	Kind ScopeKind
	// Use is what the scope held, including what the scopes below it held.
	Use network.ScopeStat
	// Limit is the scope's limit; nil for a span, which has none of its
	// own.
	Limit *Limit `json:",omitempty"`
	// Origin names the field of Limits the limit came from.
	Origin string `json:",omitempty"`
}

// RefusalCount counts the reservations one kind of scope refused for want
// of one resource.
type RefusalCount struct {
	Kind     ScopeKind
	Resource Resource
	Count    uint64
}

// Snapshot is every live scope of a Manager at one moment, and the
// refusals so far. It marshals to JSON.
type Snapshot struct {
	// Scopes lists the system, transient and allowlisted scopes, then the
	// services, protocols and peers by name (each service and protocol
	// followed by its per-peer scopes), then the open connections and
	// streams by age; each scope is followed by its spans.
	Scopes []ScopeSnapshot
	// Refusals counts the refusals since New, by the kind of scope that
	// refused and the resource; kinds and resources that never refused are
	// left out.
	Refusals []RefusalCount
	// RefusalsByLimit counts the same refusals by the limit that refused
	// too, as RefusalsByLimit returns them.
	RefusalsByLimit []LimitRefusalCount
	// Sources lists, by source (see Shares), what the sources that hold
	// anything of the shares hold.
	Sources []SourceSnapshot `json:",omitempty"`
}

// SourceSnapshot is what one source held of the Shares.
type SourceSnapshot struct {
	// Source is the group of remote addresses, such as 203.0.113.7/32.
	Source netip.Prefix
	// TransientConns is its inbound connections in the transient scope.
	TransientConns int
	// UnnegotiatedStreams is its inbound streams that have not named
	// their protocol.
	UnnegotiatedStreams int
}

// Snapshot returns every live scope with its use and limit. It walks all
// scopes under the manager's lock, so it suits debugging and occasional
// reports; Summary is cheap enough for every metrics scrape.
func (m *Manager) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ScopeSnapshot
	var add func(s *scope)
	add = func(s *scope) {
		out = append(out, s.snapshotLocked())
		var spans []*scope
		for sp := s.spans; sp != nil; sp = sp.next {
			spans = append(spans, sp)
		}
		slices.SortFunc(spans, func(a, b *scope) int { return cmp.Compare(a.id, b.id) })
		for _, sp := range spans {
			add(sp)
		}
	}
	for _, s := range []*scope{m.system, m.transient, m.allowSystem, m.allowTransient} {
		add(s)
	}
	withChildren := func(s *scope) {
		add(s)
		children := make([]*scope, 0, len(s.children))
		for _, c := range s.children {
			children = append(children, c)
		}
		slices.SortFunc(children, func(a, b *scope) int { return cmp.Compare(a.peerID, b.peerID) })
		for _, c := range children {
			add(c)
		}
	}
	for _, k := range sortedKeys(m.services) {
		withChildren(&m.services[k].scope)
	}
	protos := make([]*scope, 0, len(m.protocols))
	for _, s := range m.protocols {
		protos = append(protos, &s.scope)
	}
	slices.SortFunc(protos, func(a, b *scope) int { return cmp.Compare(a.key, b.key) })
	for _, s := range protos {
		withChildren(s)
	}
	peers := make([]*scope, 0, len(m.peers))
	for _, s := range m.peers {
		peers = append(peers, &s.scope)
	}
	slices.SortFunc(peers, func(a, b *scope) int { return cmp.Compare(a.peerID, b.peerID) })
	for _, s := range peers {
		add(s)
	}
	var open []*scope
	for s := m.open; s != nil; s = s.next {
		open = append(open, s)
	}
	slices.SortFunc(open, func(a, b *scope) int { return cmp.Compare(a.id, b.id) })
	for _, s := range open {
		add(s)
	}
	srcs := make([]SourceSnapshot, 0, len(m.sources))
	for p, u := range m.sources {
		srcs = append(srcs, SourceSnapshot{Source: p, TransientConns: u.transientConns, UnnegotiatedStreams: u.unnegotiated})
	}
	slices.SortFunc(srcs, func(a, b SourceSnapshot) int {
		return cmp.Or(a.Source.Addr().Compare(b.Source.Addr()), cmp.Compare(a.Source.Bits(), b.Source.Bits()))
	})
	return Snapshot{Scopes: out, Refusals: m.refusalsLocked(), RefusalsByLimit: m.refusalsByLimitLocked(), Sources: srcs}
}

// snapshotLocked describes s.
func (s *scope) snapshotLocked() ScopeSnapshot {
	ss := ScopeSnapshot{Name: s.name(), Kind: s.kind, Use: s.use, Origin: s.origin()}
	if s.limit != nil {
		l := *s.limit
		ss.Limit = &l
	}
	return ss
}

// Summary is the cheap part of a Snapshot: the top scopes, how many
// scopes of each kind live, and the refusals.
type Summary struct {
	// Top lists the system, transient, allowlisted system and allowlisted
	// transient scopes.
	Top []ScopeSnapshot
	// Live counts the live scopes by kind. Unused peer, protocol and
	// service scopes count until they are removed (see GC).
	Live map[ScopeKind]int
	// Refusals is as in Snapshot.
	Refusals []RefusalCount
}

// Summary returns the top scopes, the number of live scopes of each kind
// and the refusal counts.
func (m *Manager) Summary() Summary {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Summary{Live: make(map[ScopeKind]int, numKinds)}
	for _, sc := range []*scope{m.system, m.transient, m.allowSystem, m.allowTransient} {
		s.Top = append(s.Top, sc.snapshotLocked())
	}
	for k, n := range m.count {
		if ScopeKind(k) != KindIP {
			s.Live[ScopeKind(k)] = n
		}
	}
	s.Refusals = m.refusalsLocked()
	return s
}

// Refusals returns how many reservations each kind of scope refused for
// each resource since New (the per-IP limits count as KindIP). Pairs that
// never refused are left out.
func (m *Manager) Refusals() []RefusalCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refusalsLocked()
}

func (m *Manager) refusalsLocked() []RefusalCount {
	var out []RefusalCount
	for k := range m.refused {
		for r, n := range m.refused[k] {
			if n > 0 {
				out = append(out, RefusalCount{Kind: ScopeKind(k), Resource: Resource(r), Count: n})
			}
		}
	}
	return out
}
