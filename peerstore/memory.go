package peerstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Limits on what the store keeps per peer, so that peers cannot grow our
// memory by announcing endless data: with every field full, a peer takes
// about 160 KiB of heap (TestForgottenPeersFreeMemory checks), 130 KiB of
// it protocol IDs.
const (
	// MaxProtocols is how many protocols the store keeps per peer. It is
	// identify's limit on one exchange (go-libp2p's peerstore keeps 128,
	// but a lower limit here would make our identify refuse the whole
	// message of a peer announcing between 129 and 256 protocols).
	MaxProtocols = 256
	// MaxProtocolLen is the longest protocol ID kept, in bytes. The
	// protocol IDs in use are under 64 bytes; multistream-select could
	// carry up to 1023.
	MaxProtocolLen = 512
	// MaxMetadataKeys is how many metadata keys the store keeps per peer;
	// identify uses two.
	MaxMetadataKeys = 32
	// MaxMetadataLen is the longest metadata key, and the longest string
	// or []byte metadata value (such as identify's agent and protocol
	// versions), in bytes. Values of other types are the program's own,
	// not the network's, and are not measured.
	MaxMetadataLen = 1024
	// MaxAddrsPerPeer is how many addresses the store keeps per peer, as
	// in go-libp2p; real nodes have fewer than 30. When a peer's book is
	// full, a new address takes the place of the one that expires first
	// if that one expires before it, and is dropped otherwise.
	MaxAddrsPerPeer = 64
	// MaxAddrLen is the longest address kept, in bytes of its binary
	// form; longer ones are skipped. An address with a full-length DNS
	// name, a peer ID and a relay hop takes about 350.
	MaxAddrLen = 1024
)

// Errors of the limits. Each refused write changes nothing.
var (
	// ErrTooManyProtocols is returned when adding protocols would give a
	// peer more than MaxProtocols.
	ErrTooManyProtocols = errors.New("peerstore: too many protocols")
	// ErrProtocolTooLong is returned for a protocol ID longer than
	// MaxProtocolLen.
	ErrProtocolTooLong = errors.New("peerstore: protocol ID too long")
	// ErrTooManyMetadataKeys is returned by a Put that would give a peer
	// more than MaxMetadataKeys keys.
	ErrTooManyMetadataKeys = errors.New("peerstore: too many metadata keys")
	// ErrMetadataTooLarge is returned by a Put whose key, or string or
	// []byte value, is longer than MaxMetadataLen.
	ErrMetadataTooLarge = errors.New("peerstore: metadata too large")
)

// LatencyEWMASmoothing is the weight of a new round-trip time in a peer's
// average: average = s*sample + (1-s)*average, the first sample being the
// first average. It is go-libp2p's value.
const LatencyEWMASmoothing = 0.1

// Option configures a Memory peerstore.
type Option func(*Memory)

// WithClock makes the store read the time from now instead of time.Now;
// tests use it to expire addresses exactly.
func WithClock(now func() time.Time) Option {
	return func(m *Memory) { m.now = now }
}

// Memory is the in-memory Peerstore. It is safe for concurrent use.
//
// Expired addresses are never returned; they are dropped from memory when
// their peer's addresses are next written, or by GC. A peer of which
// nothing is left (no addresses, even expired ones, no keys, protocols,
// metadata or latency) takes no memory at all.
type Memory struct {
	now func() time.Time

	mu    sync.RWMutex // guards the following
	peers map[peer.ID]*record
	peak  int // the most records peers has held since it was made
}

// record is what the store holds about one peer. A record left empty is
// deleted.
type record struct {
	addrs      []addrEntry // at most MaxAddrsPerPeer, unordered
	pubKey     ic.PubKey
	privKey    ic.PrivKey
	protos     protoList     // in the order added
	meta       []metaEntry   // at most MaxMetadataKeys, in the order first put
	latency    time.Duration // average round trip, if hasLatency
	hasLatency bool
}

func (r *record) empty() bool {
	return len(r.addrs) == 0 && r.pubKey == nil && r.privKey == nil &&
		r.protos.empty() && len(r.meta) == 0 && !r.hasLatency
}

// metaEntry is one metadata value of a peer. A peer has a few (identify
// stores two), so a slice costs less than a map and is searched as fast.
type metaEntry struct {
	key string
	val any
}

// metaIndex returns the index of key in r.meta, or -1.
func (r *record) metaIndex(key string) int {
	for i := range r.meta {
		if r.meta[i].key == key {
			return i
		}
	}
	return -1
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
	m := &Memory{now: time.Now, peers: map[peer.ID]*record{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Close releases nothing: the store has no goroutines or files.
func (m *Memory) Close() error { return nil }

// Len returns how many peers the store holds anything about, expired
// addresses not yet collected included.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.peers)
}

// recordLocked returns p's record, created if missing. The caller holds
// m.mu for writing and calls tidyLocked when done.
func (m *Memory) recordLocked(p peer.ID) *record {
	r := m.peers[p]
	if r == nil {
		r = &record{}
		m.peers[p] = r
		m.peak = max(m.peak, len(m.peers))
	}
	return r
}

// tidyLocked deletes p's record r if nothing is left in it.
func (m *Memory) tidyLocked(p peer.ID, r *record) {
	if r.empty() {
		delete(m.peers, p)
	}
}

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

// expiresBefore reports whether expiry a comes strictly before b; the
// zero time is never.
func expiresBefore(a, b time.Time) bool {
	return !a.IsZero() && (b.IsZero() || a.Before(b))
}

// cleanAddr strips a trailing /p2p/p, and reports false for nil
// addresses, addresses longer than MaxAddrLen and addresses that name
// another peer.
func cleanAddr(p peer.ID, a ma.Multiaddr) (ma.Multiaddr, bool) {
	if len(a) == 0 || len(a.Bytes()) > MaxAddrLen {
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

// dropExpired removes r's expired addresses.
func (r *record) dropExpired(now time.Time) {
	r.addrs = slices.DeleteFunc(r.addrs, func(e addrEntry) bool { return e.expired(now) })
	if len(r.addrs) == 0 {
		r.addrs = nil
	}
}

// findAddr returns the index of a in r's addresses, or -1.
func (r *record) findAddr(a ma.Multiaddr) int {
	return slices.IndexFunc(r.addrs, func(e addrEntry) bool { return e.addr.Equal(a) })
}

// insertAddr adds e, whose address r does not hold. When r is full, e
// replaces the entry that expires first if that one expires before e;
// otherwise e is dropped.
func (r *record) insertAddr(e addrEntry) {
	if len(r.addrs) < MaxAddrsPerPeer {
		r.addrs = append(r.addrs, e)
		return
	}
	first := 0
	for i := range r.addrs {
		if expiresBefore(r.addrs[i].expires, r.addrs[first].expires) {
			first = i
		}
	}
	if expiresBefore(r.addrs[first].expires, e.expires) {
		r.addrs[first] = e
	}
}

// AddAddr adds one address; see AddAddrs.
func (m *Memory) AddAddr(p peer.ID, addr ma.Multiaddr, ttl time.Duration) {
	m.AddAddrs(p, []ma.Multiaddr{addr}, ttl)
}

// AddAddrs adds addresses of p with a TTL. A known address keeps the later
// of its old and new expiry. A TTL of zero or less adds nothing. A
// trailing /p2p/p is stripped; addresses naming another peer, and those
// longer than MaxAddrLen, are skipped. Beyond MaxAddrsPerPeer, the
// addresses that expire first give way.
func (m *Memory) AddAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	if ttl <= 0 || p == "" {
		return
	}
	now := m.now()
	exp := expiry(now, ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recordLocked(p)
	defer m.tidyLocked(p, r)
	r.dropExpired(now)
	for _, a := range addrs {
		a, ok := cleanAddr(p, a)
		if !ok {
			continue
		}
		i := r.findAddr(a)
		if i < 0 {
			r.insertAddr(addrEntry{addr: a, ttl: ttl, expires: exp})
			continue
		}
		if e := &r.addrs[i]; expiresBefore(e.expires, exp) {
			e.expires, e.ttl = exp, ttl
		}
	}
}

// SetAddr sets one address; see SetAddrs.
func (m *Memory) SetAddr(p peer.ID, addr ma.Multiaddr, ttl time.Duration) {
	m.SetAddrs(p, []ma.Multiaddr{addr}, ttl)
}

// SetAddrs sets the TTL of addresses of p, replacing their expiry; a TTL
// of zero or less removes them. New addresses are added as by AddAddrs.
func (m *Memory) SetAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	if p == "" {
		return
	}
	now := m.now()
	exp := expiry(now, ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recordLocked(p)
	defer m.tidyLocked(p, r)
	r.dropExpired(now)
	for _, a := range addrs {
		a, ok := cleanAddr(p, a)
		if !ok {
			continue
		}
		i := r.findAddr(a)
		switch {
		case ttl <= 0 && i >= 0:
			r.addrs = slices.Delete(r.addrs, i, i+1)
		case ttl <= 0:
		case i >= 0:
			r.addrs[i] = addrEntry{addr: a, ttl: ttl, expires: exp}
		default:
			r.insertAddr(addrEntry{addr: a, ttl: ttl, expires: exp})
		}
	}
}

// UpdateAddrs gives every address of p whose TTL is oldTTL the TTL
// newTTL, counted from now; a newTTL of zero or less removes them.
func (m *Memory) UpdateAddrs(p peer.ID, oldTTL time.Duration, newTTL time.Duration) {
	now := m.now()
	exp := expiry(now, newTTL)
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.peers[p]
	if r == nil {
		return
	}
	defer m.tidyLocked(p, r)
	r.dropExpired(now)
	if newTTL <= 0 {
		r.addrs = slices.DeleteFunc(r.addrs, func(e addrEntry) bool { return e.ttl == oldTTL })
		return
	}
	for i := range r.addrs {
		if e := &r.addrs[i]; e.ttl == oldTTL {
			e.ttl, e.expires = newTTL, exp
		}
	}
}

// Addrs returns the unexpired addresses of p, sorted by their bytes so
// the order is stable.
func (m *Memory) Addrs(p peer.ID) []ma.Multiaddr {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.peers[p]
	if r == nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, e := range r.addrs {
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
	if r := m.peers[p]; r != nil {
		r.addrs = nil
		m.tidyLocked(p, r)
	}
}

// PeersWithAddrs returns the peers with unexpired addresses.
func (m *Memory) PeersWithAddrs() []peer.ID {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []peer.ID
	for p, r := range m.peers {
		for _, e := range r.addrs {
			if !e.expired(now) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// shrinkAt is the size from which GC rebuilds the map of peers once it
// holds under a quarter of its peak: a Go map never gives back the room
// it grew to.
const shrinkAt = 1024

// GC drops expired addresses of every peer from memory, and with them the
// peers of which nothing is left. Reads never return expired addresses
// whether or not GC runs; it only frees memory. The host runs it every
// minute.
func (m *Memory) GC() {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, r := range m.peers {
		r.dropExpired(now)
		m.tidyLocked(p, r)
	}
	if m.peak >= shrinkAt && len(m.peers) < m.peak/4 {
		peers := make(map[peer.ID]*record, len(m.peers))
		for p, r := range m.peers {
			peers[p] = r
		}
		m.peers, m.peak = peers, len(peers)
	}
}

// PubKey returns p's public key: the stored one, or the one inlined in an
// identity-multihash ID, or nil.
func (m *Memory) PubKey(p peer.ID) ic.PubKey {
	m.mu.RLock()
	var k ic.PubKey
	if r := m.peers[p]; r != nil {
		k = r.pubKey
	}
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
	m.recordLocked(p).pubKey = k
	return nil
}

// PrivKey returns p's private key, or nil.
func (m *Memory) PrivKey(p peer.ID) ic.PrivKey {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.peers[p]; r != nil {
		return r.privKey
	}
	return nil
}

// AddPrivKey stores p's private key (and its public key) after checking
// that p derives from it.
func (m *Memory) AddPrivKey(p peer.ID, k ic.PrivKey) error {
	if k == nil || !p.MatchesPrivateKey(k) {
		return fmt.Errorf("%w: private key for %s", ErrKeyMismatch, p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recordLocked(p)
	r.privKey, r.pubKey = k, k.GetPublic()
	return nil
}

// PeersWithKeys returns the peers with a stored public or private key.
func (m *Memory) PeersWithKeys() []peer.ID {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []peer.ID
	for p, r := range m.peers {
		if r.pubKey != nil || r.privKey != nil {
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
	if r := m.peers[p]; r != nil {
		return r.protos.ids(), nil
	}
	return nil, nil
}

// AddProtocols adds to the protocols p supports. It refuses, changing
// nothing, IDs longer than MaxProtocolLen (ErrProtocolTooLong) and more
// than MaxProtocols in all (ErrTooManyProtocols).
func (m *Memory) AddProtocols(p peer.ID, protos ...protocol.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var have []protocol.ID
	if r := m.peers[p]; r != nil {
		have = r.protos.ids()
	}
	return m.setProtocolsLocked(p, have, protos)
}

// SetProtocols replaces the protocols p supports, with the limits of
// AddProtocols.
func (m *Memory) SetProtocols(p peer.ID, protos ...protocol.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setProtocolsLocked(p, nil, protos)
}

// setProtocolsLocked makes have followed by those of add not in it p's
// protocols, within the limits.
func (m *Memory) setProtocolsLocked(p peer.ID, have, add []protocol.ID) error {
	out := have
	for _, id := range add {
		if len(id) > MaxProtocolLen {
			return fmt.Errorf("%w: %d bytes for %s (limit %d)", ErrProtocolTooLong, len(id), p, MaxProtocolLen)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > MaxProtocols {
		return fmt.Errorf("%w: %d for %s (limit %d)", ErrTooManyProtocols, len(out), p, MaxProtocols)
	}
	if len(out) == 0 && m.peers[p] == nil {
		return nil
	}
	r := m.recordLocked(p)
	r.protos = makeProtoList(out)
	m.tidyLocked(p, r)
	return nil
}

// RemoveProtocols removes protocols from those p supports.
func (m *Memory) RemoveProtocols(p peer.ID, protos ...protocol.ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.peers[p]
	if r == nil {
		return nil
	}
	out := slices.DeleteFunc(r.protos.ids(), func(id protocol.ID) bool { return slices.Contains(protos, id) })
	r.protos = makeProtoList(out)
	m.tidyLocked(p, r)
	return nil
}

// SupportsProtocols returns those of protos that p supports, in the order
// given.
func (m *Memory) SupportsProtocols(p peer.ID, protos ...protocol.ID) ([]protocol.ID, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.peers[p]
	if r == nil {
		return nil, nil
	}
	var out []protocol.ID
	for _, id := range protos {
		if r.protos.contains(id) {
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
	r := m.peers[p]
	if r == nil {
		return "", nil
	}
	for _, id := range protos {
		if r.protos.contains(id) {
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
	if r := m.peers[p]; r != nil {
		if i := r.metaIndex(key); i >= 0 {
			return r.meta[i].val, nil
		}
	}
	return nil, fmt.Errorf("%w: %q for %s", ErrNotFound, key, p)
}

// commonKeys are the metadata keys identify stores for every peer; Put
// keeps them without a copy of their own.
var commonKeys = []string{"AgentVersion", "ProtocolVersion"}

// internKey returns key, or the same string without the caller's
// backing memory.
func internKey(key string) string {
	for _, k := range commonKeys {
		if k == key {
			return k
		}
	}
	return strings.Clone(key)
}

// Put stores val for p under key. It refuses, changing nothing, a key or
// a string or []byte value longer than MaxMetadataLen
// (ErrMetadataTooLarge), and a new key beyond MaxMetadataKeys
// (ErrTooManyMetadataKeys). Strings and byte slices are stored as
// copies, so that they hold on to nothing larger.
func (m *Memory) Put(p peer.ID, key string, val interface{}) error {
	if len(key) > MaxMetadataLen {
		return fmt.Errorf("%w: key of %d bytes for %s (limit %d)", ErrMetadataTooLarge, len(key), p, MaxMetadataLen)
	}
	switch v := val.(type) {
	case string:
		if len(v) > MaxMetadataLen {
			return fmt.Errorf("%w: %q of %d bytes for %s (limit %d)", ErrMetadataTooLarge, key, len(v), p, MaxMetadataLen)
		}
		val = strings.Clone(v)
	case []byte:
		if len(v) > MaxMetadataLen {
			return fmt.Errorf("%w: %q of %d bytes for %s (limit %d)", ErrMetadataTooLarge, key, len(v), p, MaxMetadataLen)
		}
		val = bytes.Clone(v)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.peers[p]
	if r != nil {
		if i := r.metaIndex(key); i >= 0 {
			r.meta[i].val = val
			return nil
		}
		if len(r.meta) >= MaxMetadataKeys {
			return fmt.Errorf("%w: %q for %s (limit %d)", ErrTooManyMetadataKeys, key, p, MaxMetadataKeys)
		}
	}
	r = m.recordLocked(p)
	r.meta = append(r.meta, metaEntry{internKey(key), val})
	return nil
}

// RecordLatency adds a round-trip time to p's average; see
// LatencyEWMASmoothing.
func (m *Memory) RecordLatency(p peer.ID, rtt time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.recordLocked(p)
	if !r.hasLatency {
		r.latency, r.hasLatency = rtt, true
		return
	}
	const s = LatencyEWMASmoothing
	avg := math.Round(s*float64(rtt) + (1-s)*float64(r.latency))
	r.latency = time.Duration(min(avg, math.MaxInt64)) // float64(MaxInt64) is above it
}

// LatencyEWMA returns p's average round-trip time, or 0 if none was
// recorded.
func (m *Memory) LatencyEWMA(p peer.ID) time.Duration {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.peers[p]; r != nil {
		return r.latency
	}
	return 0
}

// PeerInfo returns p with its unexpired addresses.
func (m *Memory) PeerInfo(p peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: p, Addrs: m.Addrs(p)}
}

// Peers returns the peers with unexpired addresses or stored keys.
func (m *Memory) Peers() []peer.ID {
	now := m.now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []peer.ID
	for p, r := range m.peers {
		if r.pubKey != nil || r.privKey != nil ||
			slices.ContainsFunc(r.addrs, func(e addrEntry) bool { return !e.expired(now) }) {
			out = append(out, p)
		}
	}
	return out
}

// RemovePeer forgets p's keys, protocols, metadata and latency; its
// addresses expire on their own, as in libp2p.
func (m *Memory) RemovePeer(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.peers[p]
	if r == nil {
		return
	}
	*r = record{addrs: r.addrs}
	m.tidyLocked(p, r)
}
