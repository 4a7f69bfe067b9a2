package peerstore

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newStore(t *testing.T) (*Memory, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return New(WithClock(clk.Now)), clk
}

func newPeer(t *testing.T) (peer.ID, ic.PrivKey) {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id, priv
}

func addr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	slices.Sort(out)
	return out
}

func wantAddrs(t *testing.T, m *Memory, p peer.ID, want ...string) {
	t.Helper()
	got := addrStrings(m.Addrs(p))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Addrs = %q; want %q", got, want)
	}
}

func TestAddrTTLExpiry(t *testing.T) {
	m, clk := newStore(t)
	p, _ := newPeer(t)
	a1 := addr(t, "/ip4/1.2.3.4/tcp/1")
	a2 := addr(t, "/ip4/1.2.3.4/tcp/2")
	m.AddAddr(p, a1, time.Minute)
	m.AddAddr(p, a2, TempAddrTTL)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/2")

	clk.Advance(time.Minute - time.Nanosecond)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/2")
	clk.Advance(time.Nanosecond) // exactly one minute: a1 expires
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/2")
	clk.Advance(TempAddrTTL - time.Minute)
	wantAddrs(t, m, p)
	if got := m.PeersWithAddrs(); len(got) != 0 {
		t.Errorf("PeersWithAddrs = %v after expiry", got)
	}
	m.GC()
	if n := m.Len(); n != 0 {
		t.Errorf("GC left %d peers' records", n)
	}
}

func TestAddAddrsKeepsLaterExpiry(t *testing.T) {
	m, clk := newStore(t)
	p, _ := newPeer(t)
	a := addr(t, "/ip4/1.2.3.4/tcp/1")
	m.AddAddr(p, a, time.Hour)
	m.AddAddr(p, a, time.Minute) // shorter: ignored
	clk.Advance(30 * time.Minute)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1")
	m.AddAddr(p, a, time.Hour) // longer: extends to 1h from now
	clk.Advance(59 * time.Minute)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1")
	clk.Advance(time.Minute)
	wantAddrs(t, m, p)

	m.AddAddr(p, a, 0) // zero TTL adds nothing
	m.AddAddr(p, a, -time.Second)
	wantAddrs(t, m, p)
}

func TestPermanentAddrs(t *testing.T) {
	m, clk := newStore(t)
	p, _ := newPeer(t)
	m.AddAddr(p, addr(t, "/ip4/1.2.3.4/tcp/1"), PermanentAddrTTL)
	m.AddAddr(p, addr(t, "/ip4/1.2.3.4/tcp/2"), ConnectedAddrTTL)
	clk.Advance(100 * 365 * 24 * time.Hour)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/tcp/2")
}

func TestSetAndUpdateAddrs(t *testing.T) {
	m, clk := newStore(t)
	p, _ := newPeer(t)
	a1 := addr(t, "/ip4/1.2.3.4/tcp/1")
	a2 := addr(t, "/ip4/1.2.3.4/tcp/2")
	m.AddAddrs(p, []ma.Multiaddr{a1, a2}, ConnectedAddrTTL)
	m.SetAddr(p, a1, time.Minute) // shortens, unlike AddAddr
	clk.Advance(time.Minute)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/2")
	m.SetAddr(p, a2, 0) // removes
	wantAddrs(t, m, p)

	m.AddAddrs(p, []ma.Multiaddr{a1, a2}, ConnectedAddrTTL)
	m.SetAddr(p, a2, AddressTTL)
	// On disconnect, connected addresses get RecentlyConnectedAddrTTL.
	m.UpdateAddrs(p, ConnectedAddrTTL, RecentlyConnectedAddrTTL)
	clk.Advance(RecentlyConnectedAddrTTL)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/2") // a2 had another TTL
	m.UpdateAddrs(p, AddressTTL, 0)
	wantAddrs(t, m, p)

	m.AddAddrs(p, []ma.Multiaddr{a1, a2}, time.Hour)
	m.ClearAddrs(p)
	wantAddrs(t, m, p)
}

func TestAddrsP2pSuffix(t *testing.T) {
	m, _ := newStore(t)
	p, _ := newPeer(t)
	other, _ := newPeer(t)
	m.AddAddrs(p, []ma.Multiaddr{
		addr(t, "/ip4/1.2.3.4/tcp/1/p2p/"+p.String()),     // stripped
		addr(t, "/ip4/1.2.3.4/tcp/2/p2p/"+other.String()), // someone else's: skipped
		addr(t, "/p2p/"+p.String()),                       // nothing left: skipped
		nil,
	}, time.Hour)
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1")
	if info := m.PeerInfo(p); info.ID != p || len(info.Addrs) != 1 {
		t.Errorf("PeerInfo = %v", info)
	}
}

func TestKeys(t *testing.T) {
	m, _ := newStore(t)
	p, priv := newPeer(t)
	other, otherPriv := newPeer(t)

	// An Ed25519 ID inlines its key, so PubKey works before any add.
	if k := m.PubKey(p); k == nil || !k.Equals(priv.GetPublic()) {
		t.Errorf("PubKey of an identity ID = %v", k)
	}
	if err := m.AddPubKey(p, otherPriv.GetPublic()); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("AddPubKey with the wrong key: %v; want ErrKeyMismatch", err)
	}
	if err := m.AddPrivKey(p, otherPriv); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("AddPrivKey with the wrong key: %v; want ErrKeyMismatch", err)
	}
	if m.PrivKey(p) != nil {
		t.Error("PrivKey set after a refused add")
	}
	if err := m.AddPrivKey(p, priv); err != nil {
		t.Fatal(err)
	}
	if k := m.PrivKey(p); k == nil || !k.Equals(priv) {
		t.Error("PrivKey did not return our key")
	}
	if err := m.AddPubKey(other, otherPriv.GetPublic()); err != nil {
		t.Fatal(err)
	}
	got := m.PeersWithKeys()
	slices.Sort(got)
	want := []peer.ID{p, other}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("PeersWithKeys = %v; want %v", got, want)
	}

	// An RSA ID is a hash: its key must be added.
	rsaPriv, rsaPub, err := ic.GenerateKeyPair(ic.RSA, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaID, _ := peer.IDFromPrivateKey(rsaPriv)
	if m.PubKey(rsaID) != nil {
		t.Error("PubKey of an unknown hashed ID is not nil")
	}
	if err := m.AddPubKey(rsaID, rsaPub); err != nil {
		t.Fatal(err)
	}
	if k := m.PubKey(rsaID); k == nil || !k.Equals(rsaPub) {
		t.Error("PubKey did not return the RSA key")
	}
}

func TestProtocols(t *testing.T) {
	m, _ := newStore(t)
	p, _ := newPeer(t)
	a, b, c := protocol.ID("/a"), protocol.ID("/b"), protocol.ID("/c")
	if err := m.AddProtocols(p, a, b); err != nil {
		t.Fatal(err)
	}
	if err := m.AddProtocols(p, b, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, []protocol.ID{a, b, c}) {
		t.Errorf("GetProtocols = %v", got)
	}
	if got, _ := m.SupportsProtocols(p, "/x", c, a); !slices.Equal(got, []protocol.ID{c, a}) {
		t.Errorf("SupportsProtocols = %v; want [/c /a]", got)
	}
	if got, _ := m.FirstSupportedProtocol(p, "/x", b, a); got != b {
		t.Errorf("FirstSupportedProtocol = %q; want /b", got)
	}
	if got, _ := m.FirstSupportedProtocol(p, "/x"); got != "" {
		t.Errorf("FirstSupportedProtocol of unsupported = %q", got)
	}
	if err := m.RemoveProtocols(p, a, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, []protocol.ID{b}) {
		t.Errorf("after RemoveProtocols: %v", got)
	}
	if err := m.SetProtocols(p, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, []protocol.ID{c}) {
		t.Errorf("after SetProtocols: %v", got)
	}
	many := make([]protocol.ID, MaxProtocols+1)
	for i := range many {
		many[i] = protocol.ID(fmt.Sprintf("/p/%d", i))
	}
	if err := m.SetProtocols(p, many...); !errors.Is(err, ErrTooManyProtocols) {
		t.Errorf("SetProtocols past the limit: %v", err)
	}
	if got, _ := m.GetProtocols(p); !slices.Equal(got, []protocol.ID{c}) {
		t.Errorf("a refused SetProtocols changed the set: %v", got)
	}
}

func TestMetadataAndRemovePeer(t *testing.T) {
	m, _ := newStore(t)
	p, priv := newPeer(t)
	if _, err := m.Get(p, "AgentVersion"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing key: %v; want ErrNotFound", err)
	}
	if err := m.Put(p, "AgentVersion", "p2pnet/0.1"); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Get(p, "AgentVersion"); err != nil || v != "p2pnet/0.1" {
		t.Errorf("Get = %v, %v", v, err)
	}
	m.AddAddr(p, addr(t, "/ip4/1.2.3.4/tcp/1"), time.Hour)
	_ = m.AddPrivKey(p, priv)
	_ = m.AddProtocols(p, "/a")
	if got := m.Peers(); !slices.Equal(got, []peer.ID{p}) {
		t.Errorf("Peers = %v; want [%s]", got, p)
	}
	m.RemovePeer(p)
	if _, err := m.Get(p, "AgentVersion"); !errors.Is(err, ErrNotFound) {
		t.Error("metadata survived RemovePeer")
	}
	if m.PrivKey(p) != nil {
		t.Error("private key survived RemovePeer")
	}
	if got, _ := m.GetProtocols(p); len(got) != 0 {
		t.Error("protocols survived RemovePeer")
	}
	wantAddrs(t, m, p, "/ip4/1.2.3.4/tcp/1") // addresses expire on their own
}

func TestConcurrentUse(t *testing.T) {
	m, clk := newStore(t)
	peers := make([]peer.ID, 8)
	for i := range peers {
		peers[i], _ = newPeer(t)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				p := peers[(g+i)%len(peers)]
				a := ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/%d", g, i))
				m.AddAddr(p, a, time.Duration(i+1)*time.Second)
				_ = m.AddProtocols(p, protocol.ID(fmt.Sprintf("/p/%d", i%10)))
				_ = m.Put(p, "k", i)
				_ = m.Addrs(p)
				_, _ = m.SupportsProtocols(p, "/p/1")
				_ = m.Peers()
				if i%50 == 0 {
					clk.Advance(time.Second)
					m.GC()
				}
			}
		}()
	}
	wg.Wait()
	clk.Advance(time.Hour)
	for _, p := range peers {
		wantAddrs(t, m, p)
	}
}
