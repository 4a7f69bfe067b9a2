package swarm

import (
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/testtransport"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// node is a swarm with an in-memory transport.
type node struct {
	s    *Swarm
	id   peer.ID
	priv ic.PrivKey
	tpt  *testtransport.Transport
}

var nextPort atomic.Int32

func newKey(t testing.TB) (ic.PrivKey, peer.ID) {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

// newNode returns a swarm on tn, closed when the test ends.
func newNode(t testing.TB, tn *testtransport.Network, opts ...Option) *node {
	t.Helper()
	priv, id := newKey(t)
	s, err := New(id, peerstore.New(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	tpt, err := testtransport.New(tn, priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddTransport(tpt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &node{s: s, id: id, priv: priv, tpt: tpt}
}

// listen makes n listen on a loopback address of its own and returns it.
func (n *node) listen(t testing.TB) ma.Multiaddr {
	t.Helper()
	a := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 10000+nextPort.Add(1)))
	if err := n.s.Listen(a); err != nil {
		t.Fatal(err)
	}
	return a
}

// addRelayTransport gives n a second in-memory transport, for
// /p2p-circuit addresses.
func (n *node) addRelayTransport(t testing.TB, tn *testtransport.Network) *testtransport.Transport {
	t.Helper()
	tpt, err := testtransport.New(tn, n.priv, ma.P_CIRCUIT)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.s.AddTransport(tpt); err != nil {
		t.Fatal(err)
	}
	return tpt
}

// learn tells n the addresses of p.
func (n *node) learn(p peer.ID, addrs ...ma.Multiaddr) {
	n.s.Peerstore().AddAddrs(p, addrs, peerstore.PermanentAddrTTL)
}

// connect makes to listen and n dial it, waits until to has the
// connection too, and returns n's connection.
func connect(t testing.TB, n, to *node) *Conn {
	t.Helper()
	arrived := make(chan struct{}, 1)
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == n.id {
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	}}
	to.s.Notify(nb)
	defer to.s.StopNotify(nb)
	n.learn(to.id, to.listen(t))
	c, err := n.s.DialPeer(t.Context(), to.id)
	if err != nil {
		t.Fatal(err)
	}
	<-arrived
	return c.(*Conn)
}

func addrs(ss ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}

// fakeRcmgr accounts stream scopes and refuses what it is told to.
type fakeRcmgr struct {
	network.NullResourceManager

	mu             sync.Mutex // guards the following
	refuseInbound  bool
	refuseOutbound bool
	refuseProto    protocol.ID
	open           int // stream scopes not yet done
	doubleDone     int // Done calls on scopes already done
}

var errRefused = fmt.Errorf("fake rcmgr: %w", network.ErrResourceLimitExceeded)

func (r *fakeRcmgr) OpenStream(p peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if (dir == network.DirInbound && r.refuseInbound) || (dir == network.DirOutbound && r.refuseOutbound) {
		return nil, errRefused
	}
	r.open++
	return &fakeStreamScope{r: r}, nil
}

func (r *fakeRcmgr) set(f func(r *fakeRcmgr)) {
	r.mu.Lock()
	f(r)
	r.mu.Unlock()
}

func (r *fakeRcmgr) counts() (open, doubleDone int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open, r.doubleDone
}

type fakeStreamScope struct {
	network.NullScope
	r     *fakeRcmgr
	done  bool
	proto protocol.ID
}

func (s *fakeStreamScope) Done() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.done {
		s.r.doubleDone++
		return
	}
	s.done = true
	s.r.open--
}

func (s *fakeStreamScope) SetProtocol(p protocol.ID) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if p == s.r.refuseProto {
		return errRefused
	}
	s.proto = p
	return nil
}

// eventLog records notifications in order.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *eventLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}
