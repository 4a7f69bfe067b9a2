package quic_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingRcmgr counts connection scopes and can refuse them.
type countingRcmgr struct {
	network.NullResourceManager
	refuse     atomic.Bool  // OpenConnection fails
	refuseFrom atomic.Int32 // when positive, OpenConnection fails from that call on (counting from 1)
	calls      atomic.Int32 // OpenConnection calls
	refusePeer atomic.Bool  // SetPeer fails
	refuseMem  atomic.Bool  // ReserveMemory fails
	reserved   atomic.Int64
	reserves   atomic.Int32 // ReserveMemory calls
	opened     atomic.Int32
	done       atomic.Int32
	released   chan struct{} // cap 1: a scope ended

	mu    sync.Mutex // guards the following
	dirs  []network.Direction
	fds   []bool
	peers []peer.ID
}

func newRcmgr() *countingRcmgr { return &countingRcmgr{released: make(chan struct{}, 1)} }

type countingScope struct {
	network.NullScope
	m    *countingRcmgr
	once sync.Once
}

func (s *countingScope) Done() {
	s.once.Do(func() {
		s.m.done.Add(1)
		select {
		case s.m.released <- struct{}{}:
		default: // a notification is pending already
		}
	})
}

func (s *countingScope) ReserveMemory(size int, prio uint8) error {
	s.m.reserves.Add(1)
	if s.m.refuseMem.Load() {
		return network.ErrResourceLimitExceeded
	}
	s.m.reserved.Add(int64(size))
	return nil
}

// errRefusedForTest is what countingRcmgr refuses with: a resource
// manager's refusal says why.
var errRefusedForTest = fmt.Errorf("%w: refused for the test", network.ErrResourceLimitExceeded)

func (s *countingScope) SetPeer(p peer.ID) error {
	if s.m.refusePeer.Load() {
		return errRefusedForTest
	}
	s.m.mu.Lock()
	s.m.peers = append(s.m.peers, p)
	s.m.mu.Unlock()
	return nil
}

func (m *countingRcmgr) OpenConnection(dir network.Direction, usefd bool, _ ma.Multiaddr) (network.ConnManagementScope, error) {
	call := m.calls.Add(1)
	if from := m.refuseFrom.Load(); m.refuse.Load() || from > 0 && call >= from {
		return nil, errRefusedForTest
	}
	m.opened.Add(1)
	m.mu.Lock()
	m.dirs = append(m.dirs, dir)
	m.fds = append(m.fds, usefd)
	m.mu.Unlock()
	return &countingScope{m: m}, nil
}

// open returns the number of scopes opened and not yet done.
func (m *countingRcmgr) open() int32 { return m.opened.Load() - m.done.Load() }

// waitReleased waits until every scope opened so far has ended: the
// remote side of a failed handshake ends its scope when quic-go notices.
func (m *countingRcmgr) waitReleased(t *testing.T) {
	t.Helper()
	deadline := time.After(10 * time.Second) // a bound on a hang, not a synchronisation
	for m.open() > 0 {
		select {
		case <-m.released:
		case <-deadline:
			t.Fatalf("%d scopes still open", m.open())
		}
	}
}

type node struct {
	id    peer.ID
	priv  ic.PrivKey
	rcmgr *countingRcmgr
	tr    *quic.Transport
}

func newNode(t testing.TB, opts ...quic.Option) *node {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRcmgr()
	tr, err := quic.New(priv, rc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return &node{id: id, priv: priv, rcmgr: rc, tr: tr}
}

func listen(t testing.TB, n *node, addr string) *quic.Listener {
	t.Helper()
	l, err := n.tr.Listen(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*quic.Listener)
}

// connect dials l's node from a and returns both ends.
func connect(t testing.TB, a *node, l *quic.Listener, id peer.ID) (dialer, listener *quic.Conn) {
	t.Helper()
	accepted := make(chan transport.CapableConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := a.tr.Dial(context.Background(), l.Multiaddr(), id)
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		c.Close()
		t.FailNow()
	}
	return c.(*quic.Conn), sc.(*quic.Conn)
}
