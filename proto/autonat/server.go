package autonat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
)

// Server defaults. go-libp2p's server allows 60 requests a minute, 12
// per peer and 12 with dial data; ours are the same in a sliding minute,
// with one request in flight per peer.
const (
	DefaultGlobalPerMinute   = 60
	DefaultPerPeerPerMinute  = 12
	DefaultDialDataPerMinute = 12
	// MinDialData and MaxDialData bound what the server asks for a dial
	// of another IP (the spec: 30 to 100 kB).
	MinDialData = 30_000
	MaxDialData = 100_000
	// DefaultDialBackTimeout bounds the dial back's connection, and then
	// again the nonce's exchange on it (see DialBackTimeout). A
	// reachable address completes a handshake well within it, a lost
	// TCP SYN or QUIC Initial retransmitted twice included; an address
	// behind a NAT that drops the dial costs the server this long.
	// (go-libp2p's v2 server allows 10 s for the dial and 5 s for the
	// stream.)
	DefaultDialBackTimeout = 5 * time.Second
	// MaxV1Addrs bounds the addresses a v1 request has dialed.
	MaxV1Addrs = 16
)

// Dialer is the host the server dials back from: one of another identity
// that listens nowhere, so the dial back is a fresh connection from an
// ephemeral port (the spec: do not reuse the listen port, lest the dial
// punch a hole).
type Dialer interface {
	Network() network.Network
	Peerstore() peerstore.Peerstore
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// dialBackFunc dials p at addr and sends nonce, returning the outcome.
type dialBackFunc func(ctx context.Context, p peer.ID, addr ma.Multiaddr, nonce uint64) DialStatus

// dialV1Func dials p at addrs, returning the address it connected to.
type dialV1Func func(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error)

// ServerOption configures a Server.
type ServerOption func(*Server)

// RateLimits sets the requests served per minute in all, per peer, and
// with dial data. Default: DefaultGlobalPerMinute,
// DefaultPerPeerPerMinute, DefaultDialDataPerMinute.
func RateLimits(global, perPeer, dialData int) ServerOption {
	return func(s *Server) { s.global, s.perPeer, s.dialData = global, perPeer, dialData }
}

// ServerPublic adds ranges whose addresses the server counts as public
// and so will dial (it dials no other non-public address).
func ServerPublic(p Public) ServerOption {
	return func(s *Server) { s.public = append(s.public, p...) }
}

// DialBackTimeout bounds the dial back's connection and, once
// connected, the exchange of the nonce, each. Default:
// DefaultDialBackTimeout.
func DialBackTimeout(d time.Duration) ServerOption {
	return func(s *Server) { s.dialTimeout = d }
}

// Served describes a request the server admitted, for OnServed.
type Served struct {
	Peer peer.ID
	// V1 is true for an AutoNAT v1 request.
	V1 bool
	// Addr is the address dialed (v1: the one that connected, or the
	// first tried), nil when the request was refused.
	Addr ma.Multiaddr
	// DialData is how many bytes of dial data the client paid (v2).
	DialData uint64
	// Reachable is true when the dial back succeeded (v2: the nonce was
	// acknowledged).
	Reachable bool
}

// OnServed sets a function called with each request the server
// admitted, once answered; it runs on the request's goroutine and must
// not block. Default: none.
func OnServed(f func(Served)) ServerOption {
	return func(s *Server) { s.onServed = f }
}

// Server serves AutoNAT v2 dial requests (DialRequestID) and AutoNAT v1
// ones (V1ID), within one set of rate limits.
type Server struct {
	h           Host
	dialBack    dialBackFunc
	dialV1      dialV1Func
	canDial     func(ma.Multiaddr) bool
	public      Public
	dialTimeout time.Duration
	onServed    func(Served)

	global, perPeer, dialData int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex // guards the following
	closed   bool
	served   []time.Time             // request times in the last minute
	byPeer   map[peer.ID][]time.Time // per peer, the same
	inFlight map[peer.ID]bool
	paid     []time.Time // dial-data requests in the last minute
}

// NewServer serves DialRequestID and V1ID on h, dialing back from d.
func NewServer(h Host, d Dialer, opts ...ServerOption) *Server {
	s := &Server{
		h:           h,
		dialTimeout: DefaultDialBackTimeout,
		global:      DefaultGlobalPerMinute, perPeer: DefaultPerPeerPerMinute, dialData: DefaultDialDataPerMinute,
		byPeer:   map[peer.ID][]time.Time{},
		inFlight: map[peer.ID]bool{},
	}
	for _, o := range opts {
		o(s)
	}
	s.dialBack = func(ctx context.Context, p peer.ID, addr ma.Multiaddr, nonce uint64) DialStatus {
		return dialBack(ctx, d, p, addr, nonce, s.dialTimeout)
	}
	s.dialV1 = func(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) {
		return dialV1(ctx, d, p, addrs)
	}
	s.canDial = func(a ma.Multiaddr) bool { return d.Network().CanDial("", a) }
	s.ctx, s.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(DialRequestID, s.handle)
	h.SetStreamHandler(V1ID, s.handleV1)
	return s
}

// Close stops serving and waits for the requests under way.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(DialRequestID)
	s.h.RemoveStreamHandler(V1ID)
	s.cancel()
	s.wg.Wait()
	return nil
}

// admit takes a slot for a request of p, or reports why not. A request
// admitted counts in s.wg, which its handler marks done when it returns;
// it gives back its in-flight slot with release before it answers, so
// that a client may ask again as soon as it has the answer.
func (s *Server) admit(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.inFlight[p] {
		return false
	}
	now := time.Now()
	s.served = recent(s.served, now)
	s.byPeer[p] = recent(s.byPeer[p], now)
	if len(s.served) >= s.global || len(s.byPeer[p]) >= s.perPeer {
		if len(s.byPeer[p]) == 0 {
			delete(s.byPeer, p)
		}
		return false
	}
	s.served = append(s.served, now)
	s.byPeer[p] = append(s.byPeer[p], now)
	s.inFlight[p] = true
	s.wg.Add(1)
	return true
}

// release gives back p's in-flight slot and forgets peers with no
// request in the last minute.
func (s *Server) release(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, p)
	now := time.Now()
	for q, ts := range s.byPeer {
		if ts = recent(ts, now); len(ts) == 0 {
			delete(s.byPeer, q)
		} else {
			s.byPeer[q] = ts
		}
	}
}

// admitDialData takes a slot for a request that asks for dial data.
func (s *Server) admitDialData() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.paid = recent(s.paid, now)
	if len(s.paid) >= s.dialData {
		return false
	}
	s.paid = append(s.paid, now)
	return true
}

// recent drops the times of ts older than a minute before now.
func recent(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= time.Minute {
		i++
	}
	return ts[i:]
}

// attach puts str in ServiceName and reserves memory for one message
// on it: the caller releases it with str.Scope().ReleaseMemory(
// MaxMessageSize) when it is done. On error it has reset str.
func attach(str network.Stream) error {
	if err := str.Scope().SetService(ServiceName); err != nil {
		str.Reset()
		return fmt.Errorf("autonat: %w", err)
	}
	if err := str.Scope().ReserveMemory(MaxMessageSize, network.ReservationPriorityAlways); err != nil {
		str.Reset()
		return fmt.Errorf("autonat: %w", err)
	}
	return nil
}

// handle serves one dial request.
func (s *Server) handle(str network.Stream) {
	p := str.Conn().RemotePeer()
	if err := attach(str); err != nil {
		slog.Debug("autonat: stream refused by the resource manager", "peer", p, "err", err)
		return
	}
	defer str.Scope().ReleaseMemory(MaxMessageSize)
	str.SetDeadline(time.Now().Add(DefaultStreamTimeout))
	var req Message
	if err := ReadMessage(str, &req); err != nil || req.DialRequest == nil {
		str.Reset()
		return
	}
	if !s.admit(p) {
		WriteMessage(str, &Message{DialResponse: &DialResponse{Status: ResponseRequestRejected}})
		str.Close()
		return
	}
	defer s.wg.Done()
	served := Served{Peer: p}
	resp, err := s.serve(str, req.DialRequest, &served)
	s.release(p)
	if err != nil {
		slog.Debug("autonat: request failed", "peer", p, "err", err)
		str.Reset()
	} else {
		WriteMessage(str, &Message{DialResponse: resp})
		str.Close()
	}
	if s.onServed != nil {
		s.onServed(served)
	}
}

// serve picks the address to dial, collects dial data when its IP is not
// the one we see the client at, and dials back. It notes what it did in
// served.
func (s *Server) serve(str network.Stream, req *DialRequest, served *Served) (*DialResponse, error) {
	idx, addr := -1, ma.Multiaddr(nil)
	for i, b := range req.Addrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil || !s.public.Contains(a) || !s.canDial(a) {
			continue
		}
		idx, addr = i, a
		break
	}
	if addr == nil {
		return &DialResponse{Status: ResponseDialRefused}, nil
	}
	seen, _ := ipOf(str.Conn().RemoteMultiaddr())
	if ip, _ := ipOf(addr); ip != seen {
		if !s.admitDialData() {
			return &DialResponse{Status: ResponseRequestRejected}, nil
		}
		n, err := collectDialData(str, uint32(idx))
		served.DialData = n
		if err != nil {
			return nil, err
		}
	}
	status := s.dialBack(s.ctx, str.Conn().RemotePeer(), addr, req.Nonce)
	served.Addr, served.Reachable = addr, status == DialOK
	return &DialResponse{Status: ResponseOK, AddrIdx: uint32(idx), DialStatus: status}, nil
}

// collectDialData asks for a random amount between MinDialData and
// MaxDialData and reads it, returning how much it read.
func collectDialData(str network.Stream, idx uint32) (uint64, error) {
	var r [8]byte
	rand.Read(r[:])
	want := MinDialData + binary.LittleEndian.Uint64(r[:])%(MaxDialData-MinDialData+1)
	if err := WriteMessage(str, &Message{DialDataRequest: &DialDataRequest{AddrIdx: idx, NumBytes: want}}); err != nil {
		return 0, err
	}
	var got uint64
	for got < want {
		var m Message
		if err := ReadMessage(str, &m); err != nil {
			return got, err
		}
		if m.DialDataResponse == nil || len(m.DialDataResponse.Data) > MaxDataChunk {
			return got, fmt.Errorf("%w: expected dial data of at most %d bytes", ErrMalformed, MaxDataChunk)
		}
		got += uint64(len(m.DialDataResponse.Data))
	}
	return got, nil
}

// dialBack connects from d to p at addr alone within timeout, sends
// nonce on a dial-back stream and waits for the acknowledgement within
// timeout again, then closes the connection.
func dialBack(ctx context.Context, d Dialer, p peer.ID, addr ma.Multiaddr, nonce uint64, timeout time.Duration) DialStatus {
	d.Peerstore().ClearAddrs(p)
	d.Peerstore().AddAddr(p, addr, peerstore.TempAddrTTL)
	defer d.Peerstore().ClearAddrs(p)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	_, err := d.Network().DialPeer(network.WithForceDirectDial(dctx, "autonat dial back"), p)
	cancel()
	if err != nil {
		return DialError
	}
	defer d.Network().ClosePeer(p)
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return sendNonce(sctx, d, p, nonce)
}

// sendNonce opens a dial-back stream to p on d's connection, sends nonce
// and waits for the acknowledgement.
func sendNonce(ctx context.Context, d Dialer, p peer.ID, nonce uint64) DialStatus {
	str, err := d.NewStream(ctx, p, DialBackID)
	if err != nil {
		return DialBackError
	}
	defer str.Close()
	if dl, ok := ctx.Deadline(); ok {
		str.SetDeadline(dl)
	}
	if err := WriteMessage(str, &DialBack{Nonce: nonce}); err != nil {
		str.Reset()
		return DialBackError
	}
	var resp DialBackResponse
	if err := ReadMessage(str, &resp); err != nil || resp.Status != 0 {
		str.Reset()
		return DialBackError
	}
	return DialOK
}
