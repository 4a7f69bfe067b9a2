package peerstore

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// MaxProtocols is how many protocols the store keeps per peer, so that a
// peer cannot grow our memory by announcing endless protocols.
const MaxProtocols = 256

// ErrTooManyProtocols is returned when adding protocols would exceed
// MaxProtocols for a peer.
var ErrTooManyProtocols = errors.New("peerstore: too many protocols")

// Option configures a Memory peerstore.
type Option func(*Memory)

// WithClock makes the store read the time from now instead of time.Now;
// tests use it to expire addresses exactly.
func WithClock(now func() time.Time) Option {
	return func(m *Memory) { m.now = now }
}

// Memory is the in-memory Peerstore. It is safe for concurrent use.
// Expired addresses are never returned; they are dropped from memory when
// their peer's addresses are next touched, or by GC.
type Memory struct {
	now func() time.Time

	mu       sync.RWMutex // guards the following
	addrs    map[peer.ID]map[string]*addrEntry
	pubKeys  map[peer.ID]ic.PubKey
	privKeys map[peer.ID]ic.PrivKey
	protos   map[peer.ID][]protocol.ID
	meta     map[peer.ID]map[string]interface{}
}

// addrEntry is one address of a peer.
type addrEntry struct {
	addr    ma.Multiaddr
	ttl     time.Duration
	expires time.Time // zero: never
}

var _ Peerstore = (*Memory)(nil)

// New returns an empty in-memory peerstore.
func New(opts ...Option) *Memory {
	m := &Memory{
		now:      time.Now,
		addrs:    map[peer.ID]map[string]*addrEntry{},
		pubKeys:  map[peer.ID]ic.PubKey{},
		privKeys: map[peer.ID]ic.PrivKey{},
		protos:   map[peer.ID][]protocol.ID{},
		meta:     map[peer.ID]map[string]interface{}{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Close releases nothing: the store has no goroutines or files.
func (m *Memory) Close() error { return nil }

// expiry returns when an address added now with ttl expires; the two
// never-expiring TTLs give the zero time.
func expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl >= ConnectedAddrTTL {
		return time.Time{}
	}
	return now.Add(ttl)
}

func (e *addrEntry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// cleanAddr strips a trailing /p2p/p, and reports false for nil
// addresses and for addresses that name another peer.
func cleanAddr(p peer.ID, a ma.Multiaddr) (ma.Multiaddr, bool) {
	if len(a) == 0 {
		return nil, false
	}
	transport, id := peer.SplitAddr(a)
	if id == "" {
		return a, true
	}
	if id != p || len(transport) == 0 {
		return nil, false
	}
	return transport, true
}

// AddAddr adds one address; see AddAddrs.
func (m *Memory) AddAddr(p peer.ID, addr ma.Multiaddr, ttl time.Duration) {
	m.AddAddrs(p, []ma.Multiaddr{addr}, ttl)
}

// AddAddrs adds addresses of p with a TTL. A known address keeps the later
// of its old and new expiry. A TTL of zero or less adds nothing. A
// trailing /p2p/p is stripped; addresses naming another peer are skipped.
func (m *Memory) AddAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	if ttl <= 0 || p == "" {
		return
	}
	now := m.now()
	exp := expiry(now, ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	book := m.addrBookLocked(p, now)
	for _, a := range addrs {
		a, ok := cleanAddr(p, a)
		if !ok {
			continue
		}
		k := string(a.Bytes())
		e, ok := book[k]
		if !ok {
			book[k] = &addrEntry{addr: a, ttl: ttl, expires: exp}
			continue
		}
		if e.expires.IsZero() {
			continue // already never expires
		}
		if exp.IsZero() || exp.After(e.expires) {
			e.expires, e.ttl = exp, ttl
		}
	}
	if len(book) == 0 {
		delete(m.addrs, p)
	}
}

// SetAddr sets one address; see SetAddrs.
func (m *Memory) SetAddr(p peer.ID, addr ma.Multiaddr, ttl time.Duration) {
	m.SetAddrs(p, []ma.Multiaddr{addr}, ttl)
}

// SetAddrs sets the TTL of addresses of p, replacing their expiry; a TTL
// of zero or less removes them.
func (m *Memory) SetAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	if p == "" {
		return
	}
	now := m.now()
	exp := expiry(now, ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	book := m.addrBookLocked(p, now)
	for _, a := range addrs {
		a, ok := cleanAddr(p, a)
		if !ok {
			continue
		}
		k := string(a.Bytes())
		if ttl <= 0 {
			delete(book, k)
			continue
		}
		book[k] = &addrEntry{addr: a, ttl: ttl, expires: exp}
	}
	if len(book) == 0 {
		delete(m.addrs, p)
	}
}

// UpdateAddrs gives every address of p whose TTL is oldTTL the TTL
// newTTL, counted from now; a newTTL of zero or less removes them.
func (m *Memory) UpdateAddrs(p peer.ID, oldTTL time.Duration, newTTL time.Duration) {
	now := m.now()
	exp := expiry(now, newTTL)
	m.mu.Lock()
	defer m.mu.Unlock()
	book := m.addrBookLocked(p, now)
	for k, e := range book {
		if e.ttl != oldTTL {
			continue
		}
		if newTTL <= 0 {
			delete(book, k)
			continue
		}
		e.ttl, e.expires = newTTL, exp
	}
	if len(book) == 0 {
		delete(m.addrs, p)
	}
}

// addrBookLocked returns p's address map, created if missing, with
// expired entries removed. The caller holds m.mu for writing and deletes
// the map again if it ends up empty.
func (m *Memory) addrBookLocked(p peer.ID, now time.Time) map[string]*addrEntry {
	book, ok := m.addrs[p]
	if !ok {
		book = map[string]*addrEntry{}
		m.addrs[p] = book
		return book
	}
	for k, e := range book {
		if e.expired(now) {
			delete(book, k)
		}
	}
	return book
}

// Addrs returns the unexpired addresses of p, sorted by their bytes so
// the order is stable.
func (m *Memory) Addrs(p peer.ID) []ma.Multiaddr {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []ma.Multiaddr
	for _, e := range m.addrs[p] {
		if !e.expired(now) {
			out = append(out, e.addr)
		}
	}
	slices.SortFunc(out, func(a, b ma.Multiaddr) int { return a.Compare(b) })
	return out
}

// ClearAddrs removes every address of p.
func (m *Memory) ClearAddrs(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.addrs, p)
}

// PeersWithAddrs returns the peers with unexpired addresses.
func (m *Memory) PeersWithAddrs() []peer.ID {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []peer.ID
	for p, book := range m.addrs {
		for _, e := range book {
			if !e.expired(now) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// GC drops expired addresses of every peer from memory. Reads never
// return expired addresses whether or not GC runs; it only frees memory.
func (m *Memory) GC() {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.addrs {
		if len(m.addrBookLocked(p, now)) == 0 {
			delete(m.addrs, p)
		}
	}
}

// PubKey returns p's public key: the stored one, or the one inlined in an
// identity-multihash ID, or nil.
func (m *Memory) PubKey(p peer.ID) ic.PubKey {
	m.mu.RLock()
	k := m.pubKeys[p]
	m.mu.RUnlock()
	if k != nil {
		return k
	}
	k, err := p.ExtractPublicKey()
	if err != nil {
		return nil
	}
	return k
}

// AddPubKey stores p's public key after checking that p derives from it.
func (m *Memory) AddPubKey(p peer.ID, k ic.PubKey) error {
	if k == nil || !p.MatchesPublicKey(k) {
		return fmt.Errorf("%w: public key for %s", ErrKeyMismatch, p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pubKeys[p] = k
	return nil
}

// PrivKey returns p's private key, or nil.
func (m *Memory) PrivKey(p peer.ID) ic.PrivKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.privKeys[p]
}

// AddPrivKey stores p's private key (and its public key) after checking
// that p derives from it.
func (m *Memory) AddPrivKey(p peer.ID, k ic.PrivKey) error {
	if k == nil || !p.MatchesPrivateKey(k) {
		return fmt.Errorf("%w: private key for %s", ErrKeyMismatch, p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.privKeys[p] = k
	m.pubKeys[p] = k.GetPublic()
	return nil
}

// PeersWithKeys returns the peers with a stored public or private key.
func (m *Memory) PeersWithKeys() []peer.ID {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]peer.ID, 0, len(m.pubKeys))
	for p := range m.pubKeys {
		out = append(out, p)
	}
	for p := range m.privKeys {
		if _, ok := m.pubKeys[p]; !ok {
			out = append(out, p)
		}
	}
	return out
}

// GetProtocols returns the protocols p supports, in the order they were
// added.
func (m *Memory) GetProtocols(p peer.ID) ([]protocol.ID, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.protos[p]), nil
}

// AddProtocols adds to the protocols p supports.
func (m *Memory) AddProtocols(p peer.ID, protos ...protocol.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addProtocolsLocked(p, m.protos[p], protos)
}

// SetProtocols replaces the protocols p supports.
func (m *Memory) SetProtocols(p peer.ID, protos ...protocol.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addProtocolsLocked(p, nil, protos)
}

func (m *Memory) addProtocolsLocked(p peer.ID, have, add []protocol.ID) error {
	out := slices.Clone(have)
	for _, id := range add {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > MaxProtocols {
		return fmt.Errorf("%w: %d for %s (limit %d)", ErrTooManyProtocols, len(out), p, MaxProtocols)
	}
	if len(out) == 0 {
		delete(m.protos, p)
		return nil
	}
	m.protos[p] = out
	return nil
}

// RemoveProtocols removes protocols from those p supports.
func (m *Memory) RemoveProtocols(p peer.ID, protos ...protocol.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.DeleteFunc(slices.Clone(m.protos[p]), func(id protocol.ID) bool { return slices.Contains(protos, id) })
	if len(out) == 0 {
		delete(m.protos, p)
	} else {
		m.protos[p] = out
	}
	return nil
}

// SupportsProtocols returns those of protos that p supports, in the order
// given.
func (m *Memory) SupportsProtocols(p peer.ID, protos ...protocol.ID) ([]protocol.ID, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	have := m.protos[p]
	var out []protocol.ID
	for _, id := range protos {
		if slices.Contains(have, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// FirstSupportedProtocol returns the first of protos that p supports, or
// "".
func (m *Memory) FirstSupportedProtocol(p peer.ID, protos ...protocol.ID) (protocol.ID, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	have := m.protos[p]
	for _, id := range protos {
		if slices.Contains(have, id) {
			return id, nil
		}
	}
	return "", nil
}

// Get returns the value stored for p under key, or an error wrapping
// ErrNotFound.
func (m *Memory) Get(p peer.ID, key string) (interface{}, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.meta[p][key]
	if !ok {
		return nil, fmt.Errorf("%w: %q for %s", ErrNotFound, key, p)
	}
	return v, nil
}

// Put stores val for p under key.
func (m *Memory) Put(p peer.ID, key string, val interface{}) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	md := m.meta[p]
	if md == nil {
		md = map[string]interface{}{}
		m.meta[p] = md
	}
	md[key] = val
	return nil
}

// PeerInfo returns p with its unexpired addresses.
func (m *Memory) PeerInfo(p peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: p, Addrs: m.Addrs(p)}
}

// Peers returns the peers with unexpired addresses or stored keys.
func (m *Memory) Peers() []peer.ID {
	seen := map[peer.ID]bool{}
	var out []peer.ID
	for _, p := range append(m.PeersWithAddrs(), m.PeersWithKeys()...) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// RemovePeer forgets p's keys, protocols and metadata; its addresses
// expire on their own, as in libp2p.
func (m *Memory) RemovePeer(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pubKeys, p)
	delete(m.privKeys, p)
	delete(m.protos, p)
	delete(m.meta, p)
}
