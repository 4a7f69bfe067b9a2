package rcmgr

import (
	"bytes"
	"fmt"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPeer returns a valid peer ID, the same for the same i.
func testPeer(t testing.TB, i int) peer.ID {
	t.Helper()
	seed := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16)
	_, pub, err := ic.GenerateEd25519Key(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// addr parses a multiaddr.
func addr(t testing.TB, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// newTestManager returns a Manager that Cleanup closes. It logs no
// summary of its refusals unless opts say otherwise.
func newTestManager(t testing.TB, l Limits, opts ...Option) *Manager {
	t.Helper()
	m, err := New(l, append([]Option{WithRefusalLog(nil, 0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// allScopesLocked returns every scope the manager knows: the top scopes,
// peers, protocols and services with their per-peer scopes, open conns
// and streams, and every span below any of them.
func (m *Manager) allScopesLocked() []*scope {
	var out []*scope
	var add func(s *scope)
	add = func(s *scope) {
		out = append(out, s)
		for sp := s.spans; sp != nil; sp = sp.next {
			add(sp)
		}
	}
	for _, s := range []*scope{m.system, m.transient, m.allowSystem, m.allowTransient} {
		add(s)
	}
	for _, s := range m.services {
		add(&s.scope)
		for _, c := range s.children {
			add(c)
		}
	}
	for _, s := range m.protocols {
		add(&s.scope)
		for _, c := range s.children {
			add(c)
		}
	}
	for _, s := range m.peers {
		add(&s.scope)
	}
	for s := m.open; s != nil; s = s.next {
		add(s)
	}
	return out
}

// checkInvariants checks, under the lock, that no scope holds a negative
// amount or more than its limit, that the use of every DAG scope is the
// sum of what the open conns and streams listing it hold (the tests that
// call it never reserve directly in a peer, protocol or service scope),
// that every span holds at least what its spans hold, that the live
// counts match, and that every scope's references are accounted for.
func checkInvariants(t testing.TB, m *Manager) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	all := m.allScopesLocked()
	var counts [numKinds]int
	want := map[*scope]network.ScopeStat{}
	refs := map[*scope]int{m.system: 1, m.transient: 1, m.allowSystem: 1, m.allowTransient: 1}
	for _, s := range all {
		if s.done {
			t.Fatalf("%s: live but done", s.name())
		}
		counts[s.kind]++
		for r := Resource(0); r < numResources; r++ {
			a := amount(&s.use, r)
			if a < 0 {
				t.Fatalf("%s: %s use %d is negative", s.name(), r, a)
			}
			if s.kind != KindSpan && !unlimited(r, s.limit.field(r)) && a > s.limit.field(r) {
				t.Fatalf("%s: %s use %d exceeds limit %d", s.name(), r, a, s.limit.field(r))
			}
		}
		for _, u := range s.ups() {
			refs[u]++
		}
		if s.owner != nil {
			refs[s.owner]++
		}
		if s.parent != nil {
			refs[s.parent]++
		}
		if s.kind == KindConn || s.kind == KindStream {
			for _, u := range s.ups() {
				w := want[u]
				addUse(&w, &s.use)
				want[u] = w
			}
		}
		var spans network.ScopeStat
		for sp := s.spans; sp != nil; sp = sp.next {
			addUse(&spans, &sp.use)
		}
		if spans.Memory > s.use.Memory {
			t.Fatalf("%s: holds %d bytes but its spans hold %d", s.name(), s.use.Memory, spans.Memory)
		}
	}
	for _, s := range all {
		if s.kind == KindConn || s.kind == KindStream || s.kind == KindSpan {
			continue
		}
		if s.use != want[s] {
			t.Fatalf("%s: use %+v, but its conns and streams hold %+v", s.name(), s.use, want[s])
		}
	}
	if counts != m.count {
		t.Fatalf("live scopes by kind: counted %v, manager says %v", counts, m.count)
	}
	for _, s := range all {
		// Views are not running, so the references are exactly the
		// holders found above.
		if s.refs != refs[s] {
			t.Fatalf("%s: %d references, want %d", s.name(), s.refs, refs[s])
		}
	}
}

// liveScopes returns the number of live scopes of each kind, after GC.
func liveScopes(m *Manager) map[ScopeKind]int {
	m.GC()
	return m.Summary().Live
}

// baseline is the live scopes of a manager with nothing open.
var baseline = map[ScopeKind]int{
	KindSystem: 1, KindTransient: 1, KindAllowlistedSystem: 1, KindAllowlistedTransient: 1,
	KindService: 0, KindServicePeer: 0, KindProtocol: 0, KindProtocolPeer: 0, KindPeer: 0,
	KindConn: 0, KindStream: 0, KindSpan: 0,
}

// checkEmpty checks that everything is released and collected.
func checkEmpty(t testing.TB, m *Manager) {
	t.Helper()
	if got := liveScopes(m); fmt.Sprint(got) != fmt.Sprint(baseline) {
		t.Fatalf("live scopes %v, want %v", got, baseline)
	}
	for _, s := range m.Snapshot().Scopes {
		if s.Use != (network.ScopeStat{}) {
			t.Fatalf("%s still holds %+v", s.Name, s.Use)
		}
	}
	checkInvariants(t, m)
}
