package identify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
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
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// fakeHost is a host whose connections are in-memory and made by
// connect. Inbound streams are negotiated with a real multistream router,
// after the connection's Connected notifications, as the real host does.
type fakeHost struct {
	t      *testing.T
	id     peer.ID
	priv   ic.PrivKey
	ps     *peerstore.Memory
	net    *fakeNet
	router multistream.Router[network.StreamHandler]

	mu      sync.Mutex // guards the following
	addrs   []ma.Multiaddr
	inbound map[protocol.ID]int // inbound streams negotiated, by protocol
	scopes  []*fakeScope
}

func (h *fakeHost) newScope() *fakeScope {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &fakeScope{}
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

// newFakeHost makes a host with a key of type typ; ECDSA keys are too
// long to be inlined in the peer ID, so the peer ID alone does not give
// the key away.
func newFakeHost(t *testing.T, typ ic.KeyType) *fakeHost {
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
	h := &fakeHost{t: t, id: id, priv: priv, ps: ps, inbound: map[protocol.ID]int{}}
	h.net = &fakeNet{host: h, notifiees: map[network.Notifiee]struct{}{}}
	return h
}

func (h *fakeHost) ID() peer.ID                    { return h.id }
func (h *fakeHost) Peerstore() peerstore.Peerstore { return h.ps }
func (h *fakeHost) Network() network.Network       { return h.net }
func (h *fakeHost) Protocols() []protocol.ID       { return h.router.Protocols() }

func (h *fakeHost) Addrs() []ma.Multiaddr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.addrs)
}

func (h *fakeHost) setAddrs(addrs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addrs = nil
	for _, a := range addrs {
		h.addrs = append(h.addrs, ma.StringCast(a))
	}
}

func (h *fakeHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.router.AddHandler(pid, handler)
}

func (h *fakeHost) RemoveStreamHandler(pid protocol.ID) { h.router.RemoveHandler(pid) }

// inboundCount returns how many inbound streams negotiated pid.
func (h *fakeHost) inboundCount(pid protocol.ID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inbound[pid]
}

// accept negotiates an inbound stream of c and runs its handler. Tests
// with connections run in a synctest bubble, which waits for these
// goroutines.
func (h *fakeHost) accept(c *fakeConn, s *fakeStream) {
	go func() {
		<-c.ready
		pid, handler, err := h.router.Negotiate(s)
		if err != nil {
			s.Reset()
			return
		}
		h.mu.Lock()
		h.inbound[pid]++
		h.mu.Unlock()
		s.SetProtocol(pid)
		handler(s)
	}()
}

// connect links a, at aAddr, and b, at bAddr, and fires the Connected
// notifications of both sides. It returns a's and b's ends.
func connect(a, b *fakeHost, aAddr, bAddr string) (ab, ba *fakeConn) {
	ab = newFakeConn(a, b, ma.StringCast(aAddr), ma.StringCast(bAddr), network.DirOutbound)
	ba = newFakeConn(b, a, ma.StringCast(bAddr), ma.StringCast(aAddr), network.DirInbound)
	ab.other, ba.other = ba, ab
	a.net.add(ab)
	b.net.add(ba)
	a.net.notify(func(n network.Notifiee) { n.Connected(a.net, ab) })
	b.net.notify(func(n network.Notifiee) { n.Connected(b.net, ba) })
	close(ab.ready)
	close(ba.ready)
	return ab, ba
}

// fakeNet is a network whose connections the test makes.
type fakeNet struct {
	host *fakeHost

	mu        sync.Mutex // guards the following
	conns     []*fakeConn
	notifiees map[network.Notifiee]struct{}
}

var _ network.Network = (*fakeNet)(nil)

var errUnsupported = errors.New("fake network: unsupported")

func (n *fakeNet) add(c *fakeConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = append(n.conns, c)
}

func (n *fakeNet) remove(c *fakeConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.conns = slices.DeleteFunc(n.conns, func(x *fakeConn) bool { return x == c })
}

func (n *fakeNet) notify(f func(network.Notifiee)) {
	n.mu.Lock()
	var ns []network.Notifiee
	for x := range n.notifiees {
		ns = append(ns, x)
	}
	n.mu.Unlock()
	for _, x := range ns {
		f(x)
	}
}

func (n *fakeNet) numNotifiees() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.notifiees)
}

func (n *fakeNet) Notify(x network.Notifiee) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notifiees[x] = struct{}{}
}

func (n *fakeNet) StopNotify(x network.Notifiee) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.notifiees, x)
}

func (n *fakeNet) Conns() []network.Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]network.Conn, len(n.conns))
	for i, c := range n.conns {
		out[i] = c
	}
	return out
}

func (n *fakeNet) ConnsToPeer(p peer.ID) []network.Conn {
	var out []network.Conn
	for _, c := range n.Conns() {
		if c.RemotePeer() == p {
			out = append(out, c)
		}
	}
	return out
}

func (n *fakeNet) Connectedness(p peer.ID) network.Connectedness {
	if len(n.ConnsToPeer(p)) > 0 {
		return network.Connected
	}
	return network.NotConnected
}

func (n *fakeNet) Peers() []peer.ID {
	var out []peer.ID
	for _, c := range n.Conns() {
		if !slices.Contains(out, c.RemotePeer()) {
			out = append(out, c.RemotePeer())
		}
	}
	return out
}

func (n *fakeNet) Peerstore() peerstore.Peerstore         { return n.host.ps }
func (n *fakeNet) LocalPeer() peer.ID                     { return n.host.id }
func (n *fakeNet) Close() error                           { return nil }
func (n *fakeNet) SetStreamHandler(network.StreamHandler) {}
func (n *fakeNet) ClosePeer(peer.ID) error                { return errUnsupported }
func (n *fakeNet) CanDial(peer.ID, ma.Multiaddr) bool     { return false }
func (n *fakeNet) Listen(...ma.Multiaddr) error           { return errUnsupported }
func (n *fakeNet) ListenAddresses() []ma.Multiaddr        { return nil }
func (n *fakeNet) ResourceManager() network.ResourceManager {
	return &network.NullResourceManager{}
}

func (n *fakeNet) InterfaceListenAddresses() ([]ma.Multiaddr, error) { return nil, nil }

func (n *fakeNet) DialPeer(context.Context, peer.ID) (network.Conn, error) {
	return nil, errUnsupported
}

func (n *fakeNet) NewStream(context.Context, peer.ID) (network.Stream, error) {
	return nil, errUnsupported
}

var connIDs atomic.Uint64

// fakeConn is one end of an in-memory connection.
type fakeConn struct {
	host, remote *fakeHost
	laddr, raddr ma.Multiaddr
	dir          network.Direction
	id           string
	other        *fakeConn
	ready        chan struct{} // closed after the Connected notifications

	opened atomic.Int32 // streams opened by NewStream

	mu      sync.Mutex // guards the following
	closed  bool
	streams []*fakeStream
}

var _ network.Conn = (*fakeConn)(nil)

func newFakeConn(h, remote *fakeHost, laddr, raddr ma.Multiaddr, dir network.Direction) *fakeConn {
	return &fakeConn{host: h, remote: remote, laddr: laddr, raddr: raddr, dir: dir,
		id: strconv.FormatUint(connIDs.Add(1), 10), ready: make(chan struct{})}
}

// disconnect closes both ends and fires the Disconnected notifications.
func (c *fakeConn) disconnect() {
	for _, x := range []*fakeConn{c, c.other} {
		x.mu.Lock()
		x.closed = true
		streams := x.streams
		x.streams = nil
		x.mu.Unlock()
		for _, s := range streams {
			s.Reset()
		}
		x.host.net.remove(x)
	}
	c.host.net.notify(func(n network.Notifiee) { n.Disconnected(c.host.net, c) })
	c.other.host.net.notify(func(n network.Notifiee) { n.Disconnected(c.other.host.net, c.other) })
}

func (c *fakeConn) addStream(s *fakeStream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.streams = append(c.streams, s)
	return true
}

var errConnClosed = errors.New("fake conn: closed")

func (c *fakeConn) NewStream(ctx context.Context) (network.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.opened.Add(1)
	out, in := newStreamPair(c, c.other)
	if !c.addStream(out) || !c.other.addStream(in) {
		out.Reset()
		return nil, errConnClosed
	}
	c.remote.accept(c.other, in)
	return out, nil
}

func (c *fakeConn) Close() error {
	c.disconnect()
	return nil
}

func (c *fakeConn) IsClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *fakeConn) ID() string                         { return c.id }
func (c *fakeConn) GetStreams() []network.Stream       { return nil }
func (c *fakeConn) LocalPeer() peer.ID                 { return c.host.id }
func (c *fakeConn) RemotePeer() peer.ID                { return c.remote.id }
func (c *fakeConn) RemotePublicKey() ic.PubKey         { return c.remote.priv.GetPublic() }
func (c *fakeConn) ConnState() network.ConnectionState { return network.ConnectionState{} }
func (c *fakeConn) LocalMultiaddr() ma.Multiaddr       { return c.laddr }
func (c *fakeConn) RemoteMultiaddr() ma.Multiaddr      { return c.raddr }
func (c *fakeConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: c.dir}}
}
func (c *fakeConn) Scope() network.ConnScope { return &network.NullScope{} }

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

	mu    sync.Mutex // guards the following
	proto protocol.ID
}

var _ network.Stream = (*fakeStream)(nil)

// newStreamPair returns the outbound end, on from, and the inbound end, on
// to.
func newStreamPair(from, to *fakeConn) (out, in *fakeStream) {
	aw, br := memconn.Pair(0)
	bw, ar := memconn.Pair(0)
	st := &pairState{}
	out = &fakeStream{r: ar, w: aw, state: st, dir: network.DirOutbound, conn: from,
		scope: from.host.newScope(), id: strconv.FormatUint(streamIDs.Add(1), 10)}
	in = &fakeStream{r: br, w: bw, state: st, dir: network.DirInbound, conn: to,
		scope: to.host.newScope(), id: strconv.FormatUint(streamIDs.Add(1), 10)}
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
	return n, s.mapErr(err)
}

func (s *fakeStream) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
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

// fakeScope is a stream scope that counts memory.
type fakeScope struct {
	network.NullScope

	mu      sync.Mutex // guards the following
	mem     int
	service string
}

func (s *fakeScope) ReserveMemory(size int, prio uint8) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s.service = srv
	return nil
}
