package peerstore

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// longID returns a protocol ID of exactly n bytes, distinct for each i.
func longID(i, n int) protocol.ID {
	s := fmt.Sprintf("/p/%d/", i)
	return protocol.ID(s + strings.Repeat("x", n-len(s)))
}

func TestProtocolBounds(t *testing.T) {
	m, _ := newStore(t)
	p, _ := newPeer(t)

	full := make([]protocol.ID, MaxProtocols)
	for i := range full {
		full[i] = longID(i, MaxProtocolLen)
	}
	if err := m.SetProtocols(p, full...); err != nil {
		t.Fatalf("SetProtocols of %d protocols of %d bytes: %v", MaxProtocols, MaxProtocolLen, err)
	}
	if err := m.AddProtocols(p, "/one-more"); !errors.Is(err, ErrTooManyProtocols) {
		t.Errorf("AddProtocols past MaxProtocols: %v; want ErrTooManyProtocols", err)
	}
	if err := m.AddProtocols(p, full[0]); err != nil {
		t.Errorf("AddProtocols of a known protocol at the limit: %v", err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, full) {
		t.Errorf("refused AddProtocols changed the set: %d protocols", len(got))
	}

	tooLong := longID(0, MaxProtocolLen+1)
	if err := m.SetProtocols(p, "/a", tooLong); !errors.Is(err, ErrProtocolTooLong) {
		t.Errorf("SetProtocols with a %d-byte ID: %v; want ErrProtocolTooLong", len(tooLong), err)
	}
	if err := m.AddProtocols(p, tooLong); !errors.Is(err, ErrProtocolTooLong) {
		t.Errorf("AddProtocols with a %d-byte ID: %v; want ErrProtocolTooLong", len(tooLong), err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, full) {
		t.Errorf("refused SetProtocols changed the set: %d protocols", len(got))
	}
	if err := m.SetProtocols(p, "/a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, []protocol.ID{"/a"}) {
		t.Errorf("GetProtocols = %v", got)
	}
}

func TestMetadataBounds(t *testing.T) {
	m, _ := newStore(t)
	p, _ := newPeer(t)

	maxAgent := strings.Repeat("a", MaxMetadataLen)
	if err := m.Put(p, "AgentVersion", maxAgent); err != nil {
		t.Fatalf("Put of a %d-byte string: %v", MaxMetadataLen, err)
	}
	if err := m.Put(p, "AgentVersion", maxAgent+"a"); !errors.Is(err, ErrMetadataTooLarge) {
		t.Errorf("Put of a %d-byte string: %v; want ErrMetadataTooLarge", MaxMetadataLen+1, err)
	}
	if v, _ := m.Get(p, "AgentVersion"); v != maxAgent {
		t.Error("a refused Put changed the value")
	}
	if err := m.Put(p, "blob", make([]byte, MaxMetadataLen+1)); !errors.Is(err, ErrMetadataTooLarge) {
		t.Errorf("Put of a %d-byte slice: %v; want ErrMetadataTooLarge", MaxMetadataLen+1, err)
	}
	if err := m.Put(p, strings.Repeat("k", MaxMetadataLen+1), 1); !errors.Is(err, ErrMetadataTooLarge) {
		t.Errorf("Put with a %d-byte key: %v; want ErrMetadataTooLarge", MaxMetadataLen+1, err)
	}
	if _, err := m.Get(p, "blob"); !errors.Is(err, ErrNotFound) {
		t.Error("a refused Put stored its value")
	}

	for i := 1; i < MaxMetadataKeys; i++ { // AgentVersion is one
		if err := m.Put(p, fmt.Sprintf("k%d", i), i); err != nil {
			t.Fatalf("Put of key %d: %v", i, err)
		}
	}
	if err := m.Put(p, "one-more", 1); !errors.Is(err, ErrTooManyMetadataKeys) {
		t.Errorf("Put of key %d: %v; want ErrTooManyMetadataKeys", MaxMetadataKeys+1, err)
	}
	if err := m.Put(p, "k1", "replaced"); err != nil {
		t.Errorf("Put replacing a key at the limit: %v", err)
	}
	if v, _ := m.Get(p, "k1"); v != "replaced" {
		t.Errorf("Get(k1) = %v", v)
	}
}

func TestAddrBounds(t *testing.T) {
	m, clk := newStore(t)
	p, _ := newPeer(t)
	a := func(i int) ma.Multiaddr { return ma.StringCast(fmt.Sprintf("/ip4/10.0.0.1/tcp/%d", i)) }

	// Address i lives i+1 minutes: when the book is full, the address
	// closest to expiry gives way.
	for i := range MaxAddrsPerPeer + 10 {
		m.AddAddr(p, a(i), time.Duration(i+1)*time.Minute)
	}
	got := m.Addrs(p)
	if len(got) != MaxAddrsPerPeer {
		t.Fatalf("%d addresses stored; want MaxAddrsPerPeer = %d", len(got), MaxAddrsPerPeer)
	}
	for i := range 10 {
		if slices.ContainsFunc(got, a(i).Equal) {
			t.Errorf("address %d, the closest to expiry, was kept", i)
		}
	}
	// A new address that would expire before all the others is dropped.
	m.AddAddr(p, a(1000), time.Second)
	if slices.ContainsFunc(m.Addrs(p), a(1000).Equal) {
		t.Error("an address expiring before every stored one displaced one")
	}
	// One that never expires displaces the closest to expiry (address 10).
	m.SetAddr(p, a(2000), PermanentAddrTTL)
	got = m.Addrs(p)
	if len(got) != MaxAddrsPerPeer || !slices.ContainsFunc(got, a(2000).Equal) || slices.ContainsFunc(got, a(10).Equal) {
		t.Errorf("after a permanent address: %d addresses, has it %v, has address 10 %v",
			len(got), slices.ContainsFunc(got, a(2000).Equal), slices.ContainsFunc(got, a(10).Equal))
	}

	// Identify's replacement of a connected peer's addresses (mark the
	// old ones, add the new, drop the marked) works at the limit.
	q, _ := newPeer(t)
	var first, second []ma.Multiaddr
	for i := range MaxAddrsPerPeer {
		first = append(first, a(i))
		second = append(second, a(5000+i))
	}
	m.AddAddrs(q, first, ConnectedAddrTTL)
	m.UpdateAddrs(q, ConnectedAddrTTL, TempAddrTTL-1)
	m.AddAddrs(q, second, ConnectedAddrTTL)
	m.UpdateAddrs(q, TempAddrTTL-1, 0)
	if got := addrStrings(m.Addrs(q)); !slices.Equal(got, addrStrings(second)) {
		t.Errorf("after a replacement at the limit, %d addresses, not the %d new ones", len(got), len(second))
	}

	// Too long an address is skipped.
	r, _ := newPeer(t)
	long := ma.StringCast("/dns4/" + strings.Repeat("a", 250) + "/tcp/1")
	for len(long.Bytes()) <= MaxAddrLen {
		long = long.Encapsulate(ma.StringCast("/dns4/" + strings.Repeat("b", 250)))
	}
	m.AddAddrs(r, []ma.Multiaddr{long, a(1)}, time.Hour)
	m.SetAddrs(r, []ma.Multiaddr{long}, time.Hour)
	wantAddrs(t, m, r, a(1).String())

	clk.Advance(time.Hour)
}

func TestLatencyEWMA(t *testing.T) {
	m, _ := newStore(t)
	p, _ := newPeer(t)
	if got := m.LatencyEWMA(p); got != 0 {
		t.Errorf("LatencyEWMA of an unmeasured peer = %v", got)
	}
	steps := []struct{ sample, want time.Duration }{
		{100 * time.Millisecond, 100 * time.Millisecond}, // the first sample is the average
		{200 * time.Millisecond, 110 * time.Millisecond}, // 0.9*100 + 0.1*200
		{0, 99 * time.Millisecond},                       // 0.9*110 + 0.1*0
		{99 * time.Millisecond, 99 * time.Millisecond},
		{time.Second + 99*time.Millisecond, 199 * time.Millisecond}, // 0.9*99 + 0.1*1099 = 89.1 + 109.9
		{1, 179100000}, // 0.9*199ms + 0.1*1ns = 179.1ms + 0.1ns, rounded
	}
	for i, s := range steps {
		m.RecordLatency(p, s.sample)
		if got := m.LatencyEWMA(p); got != s.want {
			t.Fatalf("after sample %d (%v): LatencyEWMA = %v (%d ns); want %v", i, s.sample, got, int64(got), s.want)
		}
	}
	m.RemovePeer(p)
	if got := m.LatencyEWMA(p); got != 0 {
		t.Errorf("LatencyEWMA after RemovePeer = %v", got)
	}
	if n := m.Len(); n != 0 {
		t.Errorf("Len = %d after RemovePeer of a peer with only a latency", n)
	}
}

func TestRemovePeerThenExpiryLeavesNothing(t *testing.T) {
	m, clk := newStore(t)
	self, selfPriv := newPeer(t)
	if err := m.AddPrivKey(self, selfPriv); err != nil {
		t.Fatal(err)
	}
	p, priv := newPeer(t)
	_ = m.AddPubKey(p, priv.GetPublic())
	_ = m.SetProtocols(p, "/a", "/b")
	_ = m.Put(p, "AgentVersion", "x/1")
	m.RecordLatency(p, time.Millisecond)
	m.AddAddr(p, addr(t, "/ip4/1.2.3.4/tcp/1"), ConnectedAddrTTL)
	m.UpdateAddrs(p, ConnectedAddrTTL, RecentlyConnectedAddrTTL)

	m.RemovePeer(p)
	if got := m.PeersWithKeys(); !slices.Equal(got, []peer.ID{self}) {
		t.Errorf("PeersWithKeys = %v; want only ourselves", got)
	}
	if got, _ := m.GetProtocols(p); len(got) != 0 {
		t.Errorf("protocols survived RemovePeer: %v", got)
	}
	if _, err := m.Get(p, "AgentVersion"); !errors.Is(err, ErrNotFound) {
		t.Error("metadata survived RemovePeer")
	}
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1") // addresses stay until they expire
	if n := m.Len(); n != 2 {
		t.Errorf("Len = %d; want 2 (ourselves, and the removed peer's addresses)", n)
	}
	clk.Advance(RecentlyConnectedAddrTTL)
	m.GC()
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d after the addresses expired and GC; want 1 (ourselves)", n)
	}
	if m.PrivKey(self) == nil {
		t.Error("our own key is gone")
	}
}

func TestEmptiedPeerIsDropped(t *testing.T) {
	m, _ := newStore(t)
	p, _ := newPeer(t)
	a := addr(t, "/ip4/1.2.3.4/tcp/1")
	steps := []struct {
		name       string
		fill, drop func()
	}{
		{"addrs", func() { m.AddAddr(p, a, time.Hour) }, func() { m.SetAddr(p, a, 0) }},
		{"clear addrs", func() { m.AddAddr(p, a, time.Hour) }, func() { m.ClearAddrs(p) }},
		{"update addrs", func() { m.AddAddr(p, a, time.Hour) }, func() { m.UpdateAddrs(p, time.Hour, 0) }},
		{"protocols", func() { _ = m.AddProtocols(p, "/a") }, func() { _ = m.RemoveProtocols(p, "/a") }},
		{"set protocols", func() { _ = m.AddProtocols(p, "/a") }, func() { _ = m.SetProtocols(p) }},
		{"metadata", func() { _ = m.Put(p, "k", 1) }, func() { m.RemovePeer(p) }},
	}
	for _, s := range steps {
		s.fill()
		if n := m.Len(); n != 1 {
			t.Errorf("%s: Len = %d after filling; want 1", s.name, n)
		}
		s.drop()
		if n := m.Len(); n != 0 {
			t.Errorf("%s: Len = %d after emptying; want 0", s.name, n)
		}
	}
	// Reads and refused writes leave nothing behind.
	_ = m.Addrs(p)
	_, _ = m.GetProtocols(p)
	_, _ = m.Get(p, "k")
	_ = m.LatencyEWMA(p)
	_ = m.SetProtocols(p, longID(0, MaxProtocolLen+1))
	_ = m.Put(p, "k", strings.Repeat("v", MaxMetadataLen+1))
	m.AddAddr(p, a, 0)
	if n := m.Len(); n != 0 {
		t.Errorf("Len = %d after reads and refused writes; want 0", n)
	}
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// heapSlack is how far above its starting point the heap may end after
// the store has forgotten everything it held.
const heapSlack = 1 << 20

// maxPeerHeap bounds the heap a peer with every field full may take: its
// protocol IDs (MaxProtocols*MaxProtocolLen = 128 KiB) and 64 KiB for the
// rest (64 addresses of about 220 bytes, two 1 KiB strings, a key).
const maxPeerHeap = MaxProtocols*MaxProtocolLen + 64<<10

// TestForgottenPeersFreeMemory fills the store with peers carrying as much
// as it accepts (each must take at most maxPeerHeap), 250 at a time,
// removes each batch as the host's forgetter would, lets the addresses
// expire and runs GC: the heap must come back to where it started.
func TestForgottenPeersFreeMemory(t *testing.T) {
	m, clk := newStore(t)
	self, selfPriv := newPeer(t)
	if err := m.AddPrivKey(self, selfPriv); err != nil {
		t.Fatal(err)
	}
	const peers, batch = 1000, 250
	before := heapInUse()
	for b := 0; b < peers; b += batch {
		ids := make([]peer.ID, batch)
		for i := range ids {
			ids[i] = fillMaximal(t, m, b+i)
		}
		if b == 0 {
			perPeer := (heapInUse() - before) / batch
			t.Logf("a maximal peer takes %d KiB", perPeer>>10)
			if perPeer > maxPeerHeap {
				t.Errorf("a maximal peer takes %d KiB; want at most %d KiB", perPeer>>10, maxPeerHeap>>10)
			}
		}
		for _, p := range ids {
			m.UpdateAddrs(p, ConnectedAddrTTL, RecentlyConnectedAddrTTL)
			m.RemovePeer(p)
		}
		clk.Advance(time.Minute)
	}
	clk.Advance(RecentlyConnectedAddrTTL)
	m.GC()
	if got := m.PeersWithKeys(); !slices.Equal(got, []peer.ID{self}) {
		t.Errorf("PeersWithKeys holds %d peers; want only ourselves", len(got))
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len = %d; want 1 (ourselves)", n)
	}
	after := heapInUse()
	t.Logf("heap: %d KiB before, %d KiB after", before>>10, after>>10)
	if after > before+heapSlack {
		t.Errorf("heap grew by %d KiB after forgetting every peer; slack is %d KiB", (after-before)>>10, heapSlack>>10)
	}
	runtime.KeepAlive(m)
}

// fillMaximal stores, for a new peer numbered i, everything identify
// would store for it with every field as large as the store accepts.
func fillMaximal(t *testing.T, m *Memory, i int) peer.ID {
	p, priv := newPeer(t)
	if err := m.AddPubKey(p, priv.GetPublic()); err != nil {
		t.Fatal(err)
	}
	protos := make([]protocol.ID, MaxProtocols)
	for j := range protos {
		protos[j] = longID(i*MaxProtocols+j, MaxProtocolLen)
	}
	if err := m.SetProtocols(p, protos...); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AgentVersion", "ProtocolVersion"} {
		if err := m.Put(p, k, strings.Repeat("v", MaxMetadataLen)); err != nil {
			t.Fatal(err)
		}
	}
	addrs := make([]ma.Multiaddr, 2*MaxAddrsPerPeer)
	for j := range addrs {
		addrs[j] = ma.StringCast(fmt.Sprintf("/dns4/%s%d.example/tcp/%d", strings.Repeat("h", 200), i, j+1))
	}
	m.AddAddrs(p, addrs, ConnectedAddrTTL)
	m.RecordLatency(p, time.Duration(i)*time.Millisecond)
	return p
}

// TestGCShrinksPeerMap checks that the room a crowd of peers made in the
// store is given back once they are gone: Go maps never shrink by
// themselves.
func TestGCShrinksPeerMap(t *testing.T) {
	m, clk := newStore(t)
	a := addr(t, "/ip4/1.2.3.4/tcp/1")
	const n = 20000
	before := heapInUse()
	for i := range n {
		m.AddAddr(peer.ID(fmt.Sprintf("peer-%d", i)), a, time.Minute)
	}
	full := heapInUse()
	clk.Advance(time.Minute)
	m.GC()
	after := heapInUse()
	t.Logf("heap: %d KiB before, %d KiB with %d peers, %d KiB after", before>>10, full>>10, n, after>>10)
	if m.Len() != 0 {
		t.Fatalf("Len = %d after the addresses expired and GC", m.Len())
	}
	if after > before+(full-before)/8 {
		t.Errorf("GC gave back %d of the %d KiB the peers took", (full-after)>>10, (full-before)>>10)
	}
}
