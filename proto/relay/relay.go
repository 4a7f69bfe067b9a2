package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The protocol IDs.
const (
	// ProtoHop is spoken between a client and the relay.
	ProtoHop protocol.ID = "/libp2p/circuit/relay/0.2.0/hop"
	// ProtoStop is spoken between the relay and a circuit's target.
	ProtoStop protocol.ID = "/libp2p/circuit/relay/0.2.0/stop"
)

// ServiceName is the resource manager service that the relay's streams
// and reservations are accounted to (go-libp2p's name).
const ServiceName = "libp2p.relay/v2"

// Defaults, go-libp2p's.
const (
	DefaultReservationTTL       = time.Hour
	DefaultLimitDuration        = 2 * time.Minute
	DefaultLimitData            = 128 << 10
	DefaultMaxReservations      = 128
	DefaultMaxReservationsPerIP = 8
	DefaultMaxCircuitsPerPeer   = 16
	DefaultMaxCircuits          = 1024
	DefaultBufferSize           = 2048
	// HandshakeTimeout bounds reading a request, and the stop exchange
	// with a target.
	HandshakeTimeout = time.Minute
	// ConnectTimeout bounds opening the stop stream to a target.
	ConnectTimeout = 30 * time.Second
)

// reservationMemory is what a reservation is accounted as in the
// resource manager: the relay's state for it.
const reservationMemory = 256

// ErrClosed is the error of work cut short by Close.
var ErrClosed = errors.New("relay: service closed")

// Host is what the relay service needs of a libp2p host.
type Host interface {
	// ID returns the relay's peer ID.
	ID() peer.ID
	// Peerstore holds the relay's private key, which signs vouchers.
	Peerstore() peerstore.Peerstore
	// Network tells of disconnections and gives the resource manager.
	Network() network.Network
	// Addrs returns the relay's addresses, told to reserving peers.
	Addrs() []ma.Multiaddr
	// SetStreamHandler serves pid with h.
	SetStreamHandler(pid protocol.ID, h network.StreamHandler)
	// RemoveStreamHandler stops serving pid.
	RemoveStreamHandler(pid protocol.ID)
	// NewStream opens a stream to p for the first of pids.
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
}

// Resources are the relay's caps and limits. Zero fields take the
// defaults.
type Resources struct {
	// ReservationTTL is how long a reservation lasts unless refreshed.
	ReservationTTL time.Duration
	// MaxReservations caps reservations in total.
	MaxReservations int
	// MaxReservationsPerIP caps reservations of peers connected from
	// one IP address.
	MaxReservationsPerIP int
	// MaxCircuitsPerPeer caps the circuits a peer takes part in, as
	// initiator or target.
	MaxCircuitsPerPeer int
	// MaxCircuits caps circuits in total.
	MaxCircuits int
	// BufferSize is the copy buffer of each direction of a circuit.
	BufferSize int
}

// ACL decides who may reserve and who may connect to whom.
type ACL interface {
	// AllowReserve reports whether p, connected from addr, may reserve.
	AllowReserve(p peer.ID, addr ma.Multiaddr) bool
	// AllowConnect reports whether src, connected from srcAddr, may
	// reach dest.
	AllowConnect(src peer.ID, srcAddr ma.Multiaddr, dest peer.ID) bool
}

// Option configures a Service.
type Option func(*Service) error

// WithResources sets the caps; zero fields keep their defaults.
func WithResources(r Resources) Option {
	return func(s *Service) error {
		if r.ReservationTTL < 0 || r.MaxReservations < 0 || r.MaxReservationsPerIP < 0 ||
			r.MaxCircuitsPerPeer < 0 || r.MaxCircuits < 0 || r.BufferSize < 0 {
			return errors.New("relay: WithResources: negative value")
		}
		if r.ReservationTTL != 0 {
			s.res.ReservationTTL = r.ReservationTTL
		}
		if r.MaxReservations != 0 {
			s.res.MaxReservations = r.MaxReservations
		}
		if r.MaxReservationsPerIP != 0 {
			s.res.MaxReservationsPerIP = r.MaxReservationsPerIP
		}
		if r.MaxCircuitsPerPeer != 0 {
			s.res.MaxCircuitsPerPeer = r.MaxCircuitsPerPeer
		}
		if r.MaxCircuits != 0 {
			s.res.MaxCircuits = r.MaxCircuits
		}
		if r.BufferSize != 0 {
			s.res.BufferSize = r.BufferSize
		}
		return nil
	}
}

// WithLimit sets the limit of each circuit: its duration and the bytes
// it carries in each direction. Default: DefaultLimitDuration and
// DefaultLimitData. Zero for both relays without limits (the circuits
// are then not limited connections). Durations are rounded up to whole
// seconds, the unit of the wire.
func WithLimit(d time.Duration, data int64) Option {
	return func(s *Service) error {
		if d < 0 || data < 0 {
			return errors.New("relay: WithLimit: negative limit")
		}
		secs := (d + time.Second - 1) / time.Second
		if secs > 1<<32-1 {
			return errors.New("relay: WithLimit: duration too long")
		}
		s.limit = Limit{Duration: uint32(secs), Data: uint64(data)}
		return nil
	}
}

// WithACL sets who may reserve and connect. Default: everyone.
func WithACL(acl ACL) Option {
	return func(s *Service) error {
		s.acl = acl
		return nil
	}
}

// Service is a circuit relay v2 relay. It is safe for concurrent use.
type Service struct {
	h     Host
	priv  ic.PrivKey
	res   Resources
	limit Limit
	acl   ACL
	notif *network.NotifyBundle
	// tracer is nil unless WithTracer.
	tracer Tracer

	wg sync.WaitGroup // handlers, copiers and timers running

	mu        sync.Mutex // guards the following
	closed    bool
	rsvps     map[peer.ID]*reservation
	perIP     map[netip.Addr]int
	circuits  map[peer.ID]int // circuits each peer takes part in
	nCircuits int
	streams   map[network.Stream]struct{} // hop and stop streams open
}

// reservation is a granted slot. Its fields are guarded by Service.mu.
type reservation struct {
	expire time.Time
	ip     netip.Addr // zero when the peer's address has none
	span   network.ResourceScopeSpan
	timer  *time.Timer
}

// New starts a relay on h.
func New(h Host, opts ...Option) (*Service, error) {
	s := &Service{
		h: h,
		res: Resources{
			ReservationTTL:       DefaultReservationTTL,
			MaxReservations:      DefaultMaxReservations,
			MaxReservationsPerIP: DefaultMaxReservationsPerIP,
			MaxCircuitsPerPeer:   DefaultMaxCircuitsPerPeer,
			MaxCircuits:          DefaultMaxCircuits,
			BufferSize:           DefaultBufferSize,
		},
		limit:    Limit{Duration: uint32(DefaultLimitDuration / time.Second), Data: DefaultLimitData},
		rsvps:    map[peer.ID]*reservation{},
		perIP:    map[netip.Addr]int{},
		circuits: map[peer.ID]int{},
		streams:  map[network.Stream]struct{}{},
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.priv = h.Peerstore().PrivKey(h.ID())
	if s.priv == nil {
		return nil, fmt.Errorf("relay: the peerstore has no private key for %s", h.ID())
	}
	s.notif = &network.NotifyBundle{DisconnectedF: s.disconnected}
	h.Network().Notify(s.notif)
	h.SetStreamHandler(ProtoHop, s.handleHop)
	return s, nil
}

// Close stops the relay: it removes the handler, resets every circuit
// and hop stream, drops the reservations and waits for everything it
// started.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	streams := make([]network.Stream, 0, len(s.streams))
	for st := range s.streams {
		streams = append(streams, st)
	}
	for p, r := range s.rsvps {
		s.dropLocked(p, r)
	}
	s.mu.Unlock()

	s.h.RemoveStreamHandler(ProtoHop)
	s.h.Network().StopNotify(s.notif)
	for _, st := range streams {
		st.Reset()
	}
	s.wg.Wait()
	return nil
}

// Limit returns the limit the relay applies to circuits.
func (s *Service) Limit() Limit { return s.limit }

// NumReservations returns the number of reservations held.
func (s *Service) NumReservations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rsvps)
}

// NumCircuits returns the number of circuits open.
func (s *Service) NumCircuits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nCircuits
}

// track registers a stream; it reports false once the service is closed.
func (s *Service) track(st network.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Service) untrack(st network.Stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.wg.Done()
}

// handleHop serves one hop stream.
func (s *Service) handleHop(st network.Stream) {
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	scope := st.Scope()
	if err := scope.SetService(ServiceName); err != nil {
		slog.Debug("relay: hop stream refused", "peer", st.Conn().RemotePeer(), "err", err)
		st.Reset()
		return
	}
	if err := scope.ReserveMemory(MaxMessageSize, network.ReservationPriorityAlways); err != nil {
		s.refuse(st, StatusResourceLimitExceeded, err)
		return
	}
	msgMem := MaxMessageSize
	defer func() { scope.ReleaseMemory(msgMem) }()

	st.SetDeadline(time.Now().Add(HandshakeTimeout))
	var msg HopMessage
	if err := ReadMessage(st, &msg); err != nil {
		s.refuse(st, StatusMalformedMessage, err)
		return
	}
	switch msg.Type {
	case HopReserve:
		s.reserve(st)
	case HopConnect:
		scope.ReleaseMemory(msgMem)
		msgMem = 0
		s.connect(st, &msg)
	default:
		s.refuse(st, StatusUnexpectedMessage, fmt.Errorf("hop message of type %d", msg.Type))
	}
}

// refuse answers a hop request with status and closes the stream.
func (s *Service) refuse(st network.Stream, status Status, why error) {
	slog.Debug("relay: hop request refused", "peer", st.Conn().RemotePeer(), "status", status, "err", why)
	if s.tracer != nil {
		s.tracer.Refused(status)
	}
	if err := WriteMessage(st, &HopMessage{Type: HopStatus, Status: status}); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// isRelayed reports whether c goes through a relay.
func isRelayed(c network.Conn) bool {
	for _, comp := range c.RemoteMultiaddr() {
		if comp.Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// ipOf returns the IP address of a, or the zero Addr.
func ipOf(a ma.Multiaddr) netip.Addr {
	if len(a) == 0 {
		return netip.Addr{}
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// reserve serves a RESERVE request.
func (s *Service) reserve(st network.Stream) {
	c := st.Conn()
	p, raddr := c.RemotePeer(), c.RemoteMultiaddr()
	if isRelayed(c) {
		s.refuse(st, StatusPermissionDenied, errors.New("reservation over a relayed connection"))
		return
	}
	if s.acl != nil && !s.acl.AllowReserve(p, raddr) {
		s.refuse(st, StatusPermissionDenied, errors.New("ACL"))
		return
	}
	now := time.Now()
	expire := now.Add(s.res.ReservationTTL)
	status, err := s.addReservation(p, ipOf(raddr), expire)
	if err != nil {
		s.refuse(st, status, err)
		return
	}
	voucher, err := SealVoucher(&Voucher{Relay: s.h.ID(), Peer: p, Expiration: expire}, s.priv)
	if err != nil {
		s.removeReservation(p)
		s.refuse(st, StatusReservationRefused, err)
		return
	}
	resp := &HopMessage{
		Type:   HopStatus,
		Status: StatusOK,
		Reservation: &Reservation{
			Expire:  uint64(expire.Unix()),
			Addrs:   s.relayAddrs(),
			Voucher: voucher,
		},
		Limit: s.wireLimit(),
	}
	if err := WriteMessage(st, resp); err != nil {
		s.removeReservation(p)
		st.Reset()
		return
	}
	st.Close()
	if s.tracer != nil {
		s.tracer.ReservationGranted()
	}
}

// wireLimit returns the limit to send, nil when there is none.
func (s *Service) wireLimit() *Limit {
	if s.limit == (Limit{}) {
		return nil
	}
	l := s.limit
	return &l
}

// relayAddrs returns the relay's direct addresses with its /p2p ID.
func (s *Service) relayAddrs() []ma.Multiaddr {
	self, err := ma.NewComponent("p2p", s.h.ID().String())
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range s.h.Addrs() {
		if hasCircuit(a) {
			continue
		}
		if _, id := peer.SplitAddr(a); id != "" {
			out = append(out, a)
			continue
		}
		out = append(out, append(a[:len(a):len(a)], *self))
	}
	return out
}

func hasCircuit(a ma.Multiaddr) bool {
	for _, c := range a {
		if c.Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}

// addReservation adds or refreshes p's reservation. On refusal it
// returns the status to answer with.
func (s *Service) addReservation(p peer.ID, ip netip.Addr, expire time.Time) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return StatusReservationRefused, ErrClosed
	}
	if r, ok := s.rsvps[p]; ok {
		if r.ip != ip {
			s.perIP[r.ip]--
			if s.perIP[r.ip] <= 0 {
				delete(s.perIP, r.ip)
			}
			if ip.IsValid() && s.perIP[ip] >= s.res.MaxReservationsPerIP {
				s.dropLocked(p, r)
				return StatusReservationRefused, fmt.Errorf("%d reservations from %s", s.res.MaxReservationsPerIP, ip)
			}
			r.ip = ip
			s.perIP[ip]++
		}
		r.expire = expire
		s.scheduleLocked(p, r)
		return StatusOK, nil
	}
	if len(s.rsvps) >= s.res.MaxReservations {
		return StatusReservationRefused, fmt.Errorf("%d reservations in total", s.res.MaxReservations)
	}
	if ip.IsValid() && s.perIP[ip] >= s.res.MaxReservationsPerIP {
		return StatusReservationRefused, fmt.Errorf("%d reservations from %s", s.res.MaxReservationsPerIP, ip)
	}
	var span network.ResourceScopeSpan
	err := s.h.Network().ResourceManager().ViewService(ServiceName, func(ss network.ServiceScope) error {
		var err error
		span, err = ss.BeginSpan()
		if err != nil {
			return err
		}
		if err := span.ReserveMemory(reservationMemory, network.ReservationPriorityAlways); err != nil {
			span.Done()
			return err
		}
		return nil
	})
	if err != nil {
		return StatusResourceLimitExceeded, fmt.Errorf("resource manager: %w", err)
	}
	r := &reservation{expire: expire, ip: ip, span: span}
	s.rsvps[p] = r
	if ip.IsValid() {
		s.perIP[ip]++
	}
	s.scheduleLocked(p, r)
	return StatusOK, nil
}

// scheduleLocked (re)arms the expiry timer of r.
func (s *Service) scheduleLocked(p peer.ID, r *reservation) {
	if r.timer != nil && r.timer.Stop() {
		s.wg.Done()
	}
	s.wg.Add(1)
	r.timer = time.AfterFunc(time.Until(r.expire), func() {
		defer s.wg.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		if cur, ok := s.rsvps[p]; ok && cur == r && !time.Now().Before(r.expire) {
			s.dropLocked(p, r)
		}
	})
}

// dropLocked removes p's reservation r and releases what it holds.
func (s *Service) dropLocked(p peer.ID, r *reservation) {
	delete(s.rsvps, p)
	if r.ip.IsValid() {
		if s.perIP[r.ip]--; s.perIP[r.ip] <= 0 {
			delete(s.perIP, r.ip)
		}
	}
	if r.timer != nil && r.timer.Stop() {
		s.wg.Done()
	}
	r.span.Done()
}

func (s *Service) removeReservation(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rsvps[p]; ok {
		s.dropLocked(p, r)
	}
}

// disconnected drops the reservation of a peer that has no connection
// left: the spec ties a reservation to the peer's connection.
func (s *Service) disconnected(n network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.Connectedness(p) == network.Connected {
		return
	}
	s.removeReservation(p)
}

// hasReservation reports whether p holds a live reservation.
func (s *Service) hasReservation(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rsvps[p]
	return ok && time.Now().Before(r.expire)
}

// addCircuit counts a circuit between src and dest, within the caps.
func (s *Service) addCircuit(src, dest peer.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.nCircuits >= s.res.MaxCircuits:
		return fmt.Errorf("%d circuits in total", s.res.MaxCircuits)
	case s.circuits[src] >= s.res.MaxCircuitsPerPeer:
		return fmt.Errorf("%d circuits of %s", s.res.MaxCircuitsPerPeer, src)
	case s.circuits[dest] >= s.res.MaxCircuitsPerPeer:
		return fmt.Errorf("%d circuits of %s", s.res.MaxCircuitsPerPeer, dest)
	}
	s.nCircuits++
	s.circuits[src]++
	s.circuits[dest]++
	return nil
}

func (s *Service) removeCircuit(src, dest peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nCircuits--
	for _, p := range []peer.ID{src, dest} {
		if s.circuits[p]--; s.circuits[p] <= 0 {
			delete(s.circuits, p)
		}
	}
}

// connect serves a CONNECT request: it opens a stop stream to the
// target, and once the target accepts, relays between the two streams.
func (s *Service) connect(st network.Stream, msg *HopMessage) {
	c := st.Conn()
	src, srcAddr := c.RemotePeer(), c.RemoteMultiaddr()
	if isRelayed(c) {
		s.refuse(st, StatusPermissionDenied, errors.New("connect over a relayed connection"))
		return
	}
	if msg.Peer == nil {
		s.refuse(st, StatusMalformedMessage, errors.New("connect without a peer"))
		return
	}
	dest := msg.Peer.ID
	if s.acl != nil && !s.acl.AllowConnect(src, srcAddr, dest) {
		s.refuse(st, StatusPermissionDenied, errors.New("ACL"))
		return
	}
	if !s.hasReservation(dest) {
		s.refuse(st, StatusNoReservation, fmt.Errorf("%s has no reservation", dest))
		return
	}
	if err := s.addCircuit(src, dest); err != nil {
		s.refuse(st, StatusResourceLimitExceeded, err)
		return
	}
	circuitDone := false
	defer func() {
		if !circuitDone {
			s.removeCircuit(src, dest)
		}
	}()
	bufSize := s.res.BufferSize
	if err := st.Scope().ReserveMemory(bufSize, network.ReservationPriorityHigh); err != nil {
		s.refuse(st, StatusResourceLimitExceeded, err)
		return
	}
	released := false
	defer func() {
		if !released {
			st.Scope().ReleaseMemory(bufSize)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), ConnectTimeout)
	ctx = network.WithNoDial(ctx, "relay connect")
	ctx = network.WithAllowLimitedConn(ctx, "relay connect")
	bs, err := s.h.NewStream(ctx, dest, ProtoStop)
	cancel()
	if err != nil {
		s.refuse(st, StatusConnectionFailed, fmt.Errorf("stop stream to %s: %w", dest, err))
		return
	}
	if !s.track(bs) {
		bs.Reset()
		s.refuse(st, StatusConnectionFailed, ErrClosed)
		return
	}
	defer func() {
		if !circuitDone {
			s.untrack(bs)
		}
	}()
	if err := bs.Scope().SetService(ServiceName); err != nil {
		bs.Reset()
		s.refuse(st, StatusResourceLimitExceeded, err)
		return
	}
	if err := bs.Scope().ReserveMemory(bufSize, network.ReservationPriorityHigh); err != nil {
		bs.Reset()
		s.refuse(st, StatusResourceLimitExceeded, err)
		return
	}
	bsReleased := false
	defer func() {
		if !bsReleased {
			bs.Scope().ReleaseMemory(bufSize)
		}
	}()

	bs.SetDeadline(time.Now().Add(HandshakeTimeout))
	lim := s.wireLimit()
	if err := WriteMessage(bs, &StopMessage{Type: StopConnect, Peer: &Peer{ID: src}, Limit: lim}); err != nil {
		bs.Reset()
		s.refuse(st, StatusConnectionFailed, fmt.Errorf("stop request to %s: %w", dest, err))
		return
	}
	var resp StopMessage
	if err := ReadMessage(bs, &resp); err != nil {
		bs.Reset()
		s.refuse(st, StatusConnectionFailed, fmt.Errorf("stop answer of %s: %w", dest, err))
		return
	}
	if resp.Type != StopStatus || resp.Status != StatusOK {
		bs.Reset()
		s.refuse(st, StatusConnectionFailed, fmt.Errorf("%s refused the circuit: type %d, %s", dest, resp.Type, resp.Status))
		return
	}
	if err := WriteMessage(st, &HopMessage{Type: HopStatus, Status: StatusOK, Limit: lim}); err != nil {
		bs.Reset()
		st.Reset()
		return
	}
	st.SetDeadline(time.Time{})
	bs.SetDeadline(time.Time{})

	// The circuit owns the streams, their memory and the count from here.
	circuitDone, released, bsReleased = true, true, true
	cr := &circuit{s: s, a: st, b: bs, src: src, dest: dest, bufSize: bufSize, limit: s.limit}
	cr.run()
}

// circuit joins two streams: a, the initiator's hop stream, and b, the
// stop stream to the target.
type circuit struct {
	s         *Service
	a, b      network.Stream
	src, dest peer.ID
	bufSize   int
	limit     Limit

	pending atomic.Int32 // directions still copying
	limited atomic.Bool  // a limit was reached
	failed  atomic.Bool  // a stream failed
	stopped sync.Once
	timer   *time.Timer

	relayed atomic.Int64 // bytes copied, both directions
	start   time.Time    // set when the service has a tracer
}

// bufPool holds *[]byte copy buffers of DefaultBufferSize.
var bufPool = sync.Pool{New: func() any { b := make([]byte, DefaultBufferSize); return &b }}

// run copies b→a on a goroutine of its own and a→b on the caller's,
// which is the hop handler's; the later of the two ends the circuit.
func (c *circuit) run() {
	c.pending.Store(2)
	if t := c.s.tracer; t != nil {
		c.start = time.Now()
		t.CircuitOpened()
	}
	if c.limit.Duration > 0 {
		c.s.wg.Add(1)
		c.timer = time.AfterFunc(time.Duration(c.limit.Duration)*time.Second, func() {
			defer c.s.wg.Done()
			c.stop()
		})
	}
	c.s.wg.Add(1)
	go func() {
		defer c.s.wg.Done()
		c.pipe(c.a, c.b)
	}()
	c.pipe(c.b, c.a)
}

// stop ends both directions because a limit was reached: blocked reads
// and writes are woken with an expired deadline.
func (c *circuit) stop() {
	c.stopped.Do(func() {
		c.limited.Store(true)
		now := time.Now()
		c.a.SetDeadline(now)
		c.b.SetDeadline(now)
	})
}

// pipe copies src to dst until src ends, a limit is reached, or a
// stream fails.
func (c *circuit) pipe(dst, src network.Stream) {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:min(c.bufSize, len(*bp))]
	if c.bufSize > len(*bp) {
		buf = make([]byte, c.bufSize)
	}
	n, hit, err := copyLimited(dst, src, buf, int64(c.limit.Data))
	bufPool.Put(bp)
	c.relayed.Add(n)
	switch {
	case hit:
		c.stop()
		dst.SetWriteDeadline(time.Time{})
		dst.CloseWrite()
	case c.limited.Load() && (err == nil || errors.Is(err, os.ErrDeadlineExceeded)):
		dst.SetWriteDeadline(time.Time{})
		dst.CloseWrite()
	case err != nil:
		c.failed.Store(true)
		c.a.Reset()
		c.b.Reset()
	default:
		dst.CloseWrite()
	}
	if c.pending.Add(-1) == 0 {
		c.end()
	}
}

// end releases the circuit once both directions are done: the streams
// are reset after a failure, closed otherwise (after a limit too: both
// ends must read the EOF that each direction sent, which a reset could
// overtake; their connections over the circuit then end, and each end's
// streams on it are reset).
func (c *circuit) end() {
	if c.timer != nil && c.timer.Stop() {
		c.s.wg.Done()
	}
	if c.failed.Load() {
		c.a.Reset()
		c.b.Reset()
	} else {
		c.a.Close()
		c.b.Close()
	}
	c.a.Scope().ReleaseMemory(c.bufSize)
	c.b.Scope().ReleaseMemory(c.bufSize)
	c.s.removeCircuit(c.src, c.dest)
	if t := c.s.tracer; t != nil {
		t.CircuitClosed(c.relayed.Load(), time.Since(c.start))
	}
	c.s.untrack(c.b)
}

// copyLimited copies src to dst through buf until src ends (nil error),
// limit bytes have been copied (hit; limit 0 means none), or an error.
func copyLimited(dst io.Writer, src io.Reader, buf []byte, limit int64) (n int64, hit bool, err error) {
	for {
		b := buf
		if limit > 0 {
			if n >= limit {
				return n, true, nil
			}
			if rem := limit - n; rem < int64(len(b)) {
				b = b[:rem]
			}
		}
		r, rerr := src.Read(b)
		if r > 0 {
			w, werr := dst.Write(b[:r])
			n += int64(w)
			if werr != nil {
				return n, false, werr
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return n, false, nil
			}
			return n, false, rerr
		}
	}
}
