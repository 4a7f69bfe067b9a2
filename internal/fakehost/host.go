// Package fakehost is test machinery for the proto packages: a host whose
// connections and streams live in memory and are made by the test.
// Inbound streams are negotiated with a real multistream router, after
// the connection's Connected notifications, and streams opened with
// [Host.NewStream] propose their protocol lazily, as the real host does.
// Stream scopes count memory and may limit it, so that a test can check
// that every reservation is released.
//
// It is imported only by tests. It may import network, peer, peerstore,
// protocol, crypto, multistream, internal/memconn, go-multiaddr and the
// standard library.
package fakehost

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Host is a host whose connections are in memory, made by [Connect] or
// [Link]. Its peerstore holds its own keys.
type Host struct {
	t      testing.TB
	id     peer.ID
	priv   ic.PrivKey
	ps     *peerstore.Memory
	net    *hostNetwork
	router multistream.Router[network.StreamHandler]
	wg     sync.WaitGroup // inbound stream goroutines

	mu    sync.Mutex // guards the following
	addrs []ma.Multiaddr
	// memLimit, if positive, is the memory each new stream scope may
	// reserve.
	memLimit int
	// writeDelay is how long each Write on a stream the host accepts
	// takes, once the stream's protocol is negotiated.
	writeDelay time.Duration
	scopes     []*Scope
	inbound    []*Stream
	negotiated map[protocol.ID]int // inbound streams negotiated, by protocol
}

// New returns a host with an Ed25519 key. Handlers of inbound streams run
// on goroutines of their own: a test that does not run in a synctest
// bubble, which waits for them, calls [Host.Wait] or registers it with
// t.Cleanup.
func New(t testing.TB) *Host {
	t.Helper()
	return NewWithKey(t, ic.Ed25519)
}

// NewWithKey is [New] with a key of type typ. ECDSA keys are too long to
// be inlined in the peer ID, so the peer ID alone does not give them
// away.
func NewWithKey(t testing.TB, typ ic.KeyType) *Host {
	t.Helper()
	priv, _, err := ic.GenerateKeyPair(typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ps := peerstore.New()
	if err := ps.AddPrivKey(id, priv); err != nil {
		t.Fatal(err)
	}
	if err := ps.AddPubKey(id, priv.GetPublic()); err != nil {
		t.Fatal(err)
	}
	h := &Host{t: t, id: id, priv: priv, ps: ps, negotiated: map[protocol.ID]int{}}
	h.net = &hostNetwork{host: h, notifiees: map[network.Notifiee]struct{}{}}
	return h
}

// ID returns the host's peer ID.
func (h *Host) ID() peer.ID { return h.id }

// PrivKey returns the host's private key.
func (h *Host) PrivKey() ic.PrivKey { return h.priv }

// Peerstore returns the host's peerstore.
func (h *Host) Peerstore() peerstore.Peerstore { return h.ps }

// MemoryPeerstore returns the host's peerstore as what it is.
func (h *Host) MemoryPeerstore() *peerstore.Memory { return h.ps }

// Network returns the network of the host's connections.
func (h *Host) Network() network.Network { return h.net }

// NumNotifiees returns how many notifiees the host's network has.
func (h *Host) NumNotifiees() int { return h.net.numNotifiees() }

// Protocols returns the protocols the host serves, sorted.
func (h *Host) Protocols() []protocol.ID { return h.router.Protocols() }

// Addrs returns the host's listen addresses.
func (h *Host) Addrs() []ma.Multiaddr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.addrs)
}

// SetAddrs replaces the host's listen addresses; it panics on a bad one.
func (h *Host) SetAddrs(addrs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs = nil
	for _, a := range addrs {
		h.addrs = append(h.addrs, ma.StringCast(a))
	}
}

// SetStreamHandler serves pid with handler.
func (h *Host) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.router.AddHandler(pid, handler)
}

// RemoveStreamHandler stops serving pid.
func (h *Host) RemoveStreamHandler(pid protocol.ID) { h.router.RemoveHandler(pid) }

// SetMemLimit limits the memory that each stream scope made from now on,
// on either end of the host's streams, may reserve. Zero means no limit.
func (h *Host) SetMemLimit(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.memLimit = n
}

// SetWriteDelay makes each Write take d on the streams the host accepts
// from now on, once their protocol is negotiated. The delay is a
// time.Sleep: tests that set it run in a synctest bubble.
func (h *Host) SetWriteDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writeDelay = d
}

// WriteDelay returns what [Host.SetWriteDelay] set.
func (h *Host) WriteDelay() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writeDelay
}

// Inbound returns the streams the host accepted, oldest first.
func (h *Host) Inbound() []*Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.inbound)
}

// InboundCount returns how many inbound streams negotiated pid.
func (h *Host) InboundCount(pid protocol.ID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.negotiated[pid]
}

// Wait waits for the handlers of the host's inbound streams to return.
// Streams must not be opened to the host while it waits.
func (h *Host) Wait() { h.wg.Wait() }

// Scopes returns the scopes of the host's streams, oldest first.
func (h *Host) Scopes() []*Scope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.scopes)
}

// CheckScopes fails the test if a stream scope of the host still holds
// memory.
func (h *Host) CheckScopes() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.scopes {
		if m := s.Stat().Memory; m != 0 {
			h.t.Errorf("stream scope %d still holds %d bytes", i, m)
		}
	}
}

func (h *Host) newScope() *Scope {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &Scope{limit: h.memLimit}
	h.scopes = append(h.scopes, s)
	return s
}

// NewStream opens a stream to p, over the oldest connection to it, for
// pids[0], proposed lazily with the first write or read.
func (h *Host) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := h.net.connTo(p)
	if c == nil {
		return nil, network.ErrNoConn
	}
	s, err := c.newStream()
	if err != nil {
		return nil, err
	}
	if err := s.SetProtocol(pids[0]); err != nil {
		return nil, err
	}
	return &LazyStream{Stream: s, lazy: multistream.NewLazyClient(s, pids[0])}, nil
}

// accept negotiates an inbound stream of c and runs its handler.
func (h *Host) accept(c *Conn, s *Stream) {
	h.mu.Lock()
	s.writeDelay = h.writeDelay
	h.inbound = append(h.inbound, s)
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		<-c.ready
		pid, handler, err := h.router.Negotiate(s)
		if err != nil {
			s.Reset()
			return
		}
		h.mu.Lock()
		h.negotiated[pid]++
		h.mu.Unlock()
		s.SetProtocol(pid)
		handler(s)
	}()
}

// LazyStream is what [Host.NewStream] returns: it sends its protocol
// proposal with the first write, like the real host's streams.
type LazyStream struct {
	network.Stream
	lazy *multistream.LazyConn
}

// Read reads from the stream, reading the proposal's answer first.
func (s *LazyStream) Read(b []byte) (int, error) { return s.lazy.Read(b) }

// Write writes to the stream, after the proposal if not yet sent.
func (s *LazyStream) Write(b []byte) (int, error) { return s.lazy.Write(b) }

// CloseWrite closes the stream for writing, after sending the proposal.
func (s *LazyStream) CloseWrite() error { return s.lazy.CloseWrite() }

// Close closes the stream.
func (s *LazyStream) Close() error { return s.lazy.Close() }

// Flush sends the proposal now if it has not been sent.
func (s *LazyStream) Flush() error { return s.lazy.Flush() }
