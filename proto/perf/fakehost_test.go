package perf

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// fakeHost is a host whose streams are in-memory pipes to the hosts it is
// linked with. Inbound streams are negotiated with a real multistream
// router and outbound ones with a lazy client, as the real host does.
type fakeHost struct {
	t      testing.TB
	id     peer.ID
	router multistream.Router[network.StreamHandler]
	wg     sync.WaitGroup // inbound stream goroutines

	mu    sync.Mutex // guards the following
	peers map[peer.ID]*fakeHost
	// memLimit, if positive, is the memory each new stream scope may
	// reserve.
	memLimit int
	scopes   []*fakeScope
	// writeDelay is how long each Write on an inbound stream takes.
	writeDelay time.Duration
	inbound    []*fakeStream
}

func newFakeHost(t testing.TB) *fakeHost {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{t: t, id: id, peers: map[peer.ID]*fakeHost{}}
	t.Cleanup(h.wg.Wait)
	return h
}

// link lets a and b open streams to each other.
func link(a, b *fakeHost) {
	a.mu.Lock()
	a.peers[b.id] = b
	a.mu.Unlock()
	b.mu.Lock()
	b.peers[a.id] = a
	b.mu.Unlock()
}

func (h *fakeHost) ID() peer.ID { return h.id }

func (h *fakeHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.router.AddHandler(pid, handler)
}

func (h *fakeHost) RemoveStreamHandler(pid protocol.ID) { h.router.RemoveHandler(pid) }

func (h *fakeHost) newScope() *fakeScope {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &fakeScope{limit: h.memLimit}
	h.scopes = append(h.scopes, s)
	return s
}

// checkScopes fails the test if a stream scope still holds memory.
func (h *fakeHost) checkScopes() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.scopes {
		if m := s.Stat().Memory; m != 0 {
			h.t.Errorf("stream scope %d still holds %d bytes", i, m)
		}
	}
}

// NewStream opens a stream to p for pids[0], proposed lazily.
func (h *fakeHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	remote := h.peers[p]
	h.mu.Unlock()
	if remote == nil {
		return nil, network.ErrNoConn
	}
	local, in := newStreamPair(h, remote)
	remote.mu.Lock()
	in.writeDelay = remote.writeDelay
	remote.inbound = append(remote.inbound, in)
	remote.mu.Unlock()
	remote.accept(in)
	if err := local.SetProtocol(pids[0]); err != nil {
		return nil, err
	}
	return &lazyStream{Stream: local, lazy: multistream.NewLazyClient(local, pids[0])}, nil
}

// accept negotiates an inbound stream and runs its handler.
func (h *fakeHost) accept(s *fakeStream) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		pid, handler, err := h.router.Negotiate(s)
		if err != nil {
			s.Reset()
			return
		}
		s.SetProtocol(pid)
		handler(s)
	}()
}

// lazyStream sends its protocol proposal with the first write, like the
// real host's.
type lazyStream struct {
	network.Stream
	lazy *multistream.LazyConn
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.lazy.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.lazy.Write(b) }
func (s *lazyStream) CloseWrite() error           { return s.lazy.CloseWrite() }
func (s *lazyStream) Close() error                { return s.lazy.Close() }

// fakeConn is the connection a fakeStream claims to run on. Only the
// methods perf uses are implemented.
type fakeConn struct {
	network.Conn
	local, remote peer.ID
}

func (c *fakeConn) LocalPeer() peer.ID  { return c.local }
func (c *fakeConn) RemotePeer() peer.ID { return c.remote }

// pairState is shared by the two ends of a stream.
type pairState struct{ reset atomic.Bool }

var streamIDs atomic.Uint64

// fakeStream is one end of an in-memory stream: one memconn pair per
// direction, so that each direction can be closed on its own.
type fakeStream struct {
	r, w  net.Conn // read from r, write to w
	state *pairState
	conn  *fakeConn
	dir   network.Direction
	scope *fakeScope
	id    string

	writeDelay time.Duration
	// read and written count the bytes that passed once the protocol was
	// set: those the handler saw.
	read, written atomic.Uint64

	mu    sync.Mutex // guards the following
	proto protocol.ID
}

var _ network.Stream = (*fakeStream)(nil)

// newStreamPair returns the outbound end, on from, and the inbound end, on
// to.
func newStreamPair(from, to *fakeHost) (out, in *fakeStream) {
	aw, br := memconn.Pair(0)
	bw, ar := memconn.Pair(0)
	st := &pairState{}
	out = &fakeStream{r: ar, w: aw, state: st, dir: network.DirOutbound,
		conn: &fakeConn{local: from.id, remote: to.id}, scope: from.newScope(),
		id: strconv.FormatUint(streamIDs.Add(1), 10)}
	in = &fakeStream{r: br, w: bw, state: st, dir: network.DirInbound,
		conn: &fakeConn{local: to.id, remote: from.id}, scope: to.newScope(),
		id: strconv.FormatUint(streamIDs.Add(1), 10)}
	return out, in
}

func (s *fakeStream) mapErr(err error) error {
	if err != nil && s.state.reset.Load() {
		return fmt.Errorf("fake stream: %w", network.ErrReset)
	}
	return err
}

func (s *fakeStream) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if s.Protocol() != "" {
		s.read.Add(uint64(n))
	}
	return n, s.mapErr(err)
}

func (s *fakeStream) Write(b []byte) (int, error) {
	if s.writeDelay > 0 && s.Protocol() != "" {
		time.Sleep(s.writeDelay)
	}
	n, err := s.w.Write(b)
	if s.Protocol() != "" {
		s.written.Add(uint64(n))
	}
	return n, s.mapErr(err)
}

func (s *fakeStream) CloseWrite() error { return s.w.Close() }
func (s *fakeStream) CloseRead() error  { return s.r.Close() }

func (s *fakeStream) Close() error {
	s.w.Close()
	s.r.Close()
	return nil
}

func (s *fakeStream) Reset() error {
	s.state.reset.Store(true)
	return s.Close()
}

func (s *fakeStream) SetDeadline(t time.Time) error {
	s.r.SetReadDeadline(t)
	s.w.SetWriteDeadline(t)
	return nil
}

func (s *fakeStream) SetReadDeadline(t time.Time) error  { return s.r.SetReadDeadline(t) }
func (s *fakeStream) SetWriteDeadline(t time.Time) error { return s.w.SetWriteDeadline(t) }

func (s *fakeStream) ID() string { return s.id }

func (s *fakeStream) Protocol() protocol.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proto
}

func (s *fakeStream) SetProtocol(id protocol.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proto = id
	return nil
}

func (s *fakeStream) Stat() network.Stats        { return network.Stats{Direction: s.dir} }
func (s *fakeStream) Conn() network.Conn         { return s.conn }
func (s *fakeStream) Scope() network.StreamScope { return s.scope }

// errFakeLimit is what a fakeScope over its limit returns.
var errFakeLimit = fmt.Errorf("fake scope: %w", network.ErrResourceLimitExceeded)

// fakeScope is a stream scope that counts memory and may limit it.
type fakeScope struct {
	network.NullScope
	limit int

	mu      sync.Mutex // guards the following
	mem     int
	service string
}

func (s *fakeScope) ReserveMemory(size int, prio uint8) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.mem+size > s.limit {
		return errFakeLimit
	}
	s.mem += size
	return nil
}

func (s *fakeScope) ReleaseMemory(size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mem -= size
	if s.mem < 0 {
		panic("fake scope: released more than reserved")
	}
}

func (s *fakeScope) Stat() network.ScopeStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return network.ScopeStat{Memory: int64(s.mem)}
}

func (s *fakeScope) SetService(srv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.service != "" && s.service != srv {
		return errors.New("fake scope: service already set")
	}
	s.service = srv
	return nil
}

func (s *fakeScope) Service() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.service
}
