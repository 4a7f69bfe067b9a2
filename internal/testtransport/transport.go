package testtransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrConnRefused is returned by a dial of a peer that has no listener.
var ErrConnRefused = errors.New("testtransport: connection refused")

// Behaviour is what dials of one address do. The zero Behaviour connects
// at once.
type Behaviour struct {
	// Delay is how long the dial takes before it does the rest.
	Delay time.Duration
	// Block, when not nil, makes the dial wait until it is closed.
	Block <-chan struct{}
	// Err, when not nil, makes the dial fail with it (after Delay and
	// Block).
	Err error
	// Limited makes the connection limited, as a relayed one is.
	Limited bool
	// Peer, when set, is the peer the dial reaches instead of the one
	// asked for.
	Peer peer.ID
	// BlockOpenStream makes OpenStream on the dialed connection wait
	// until its context ends.
	BlockOpenStream bool
}

// Dial is one logged dial.
type Dial struct {
	Addr ma.Multiaddr
	// At is when the dial started.
	At time.Time
}

// Transport is an in-memory transport.Transport.
type Transport struct {
	net      *Network
	local    peer.ID
	localKey ic.PubKey
	codes    []int

	mu         sync.Mutex // guards the following
	behaviours map[string]Behaviour
	dials      []Dial
	listenAddr ma.Multiaddr
}

var _ transport.Transport = (*Transport)(nil)

// New returns a transport of n for the local peer with key key that
// handles addresses with any of the protocol codes given (TCP and QUIC v1
// when none are given).
func New(n *Network, key ic.PrivKey, codes ...int) (*Transport, error) {
	pub := key.GetPublic()
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if len(codes) == 0 {
		codes = []int{ma.P_TCP, ma.P_QUIC_V1}
	}
	return &Transport{
		net:        n,
		local:      id,
		localKey:   pub,
		codes:      codes,
		behaviours: map[string]Behaviour{},
	}, nil
}

// SetBehaviour sets what dials of addr do from now on.
func (t *Transport) SetBehaviour(addr ma.Multiaddr, b Behaviour) {
	t.mu.Lock()
	t.behaviours[string(addr.Bytes())] = b
	t.mu.Unlock()
}

// Dials returns how many dials of addr were started.
func (t *Transport) Dials(addr ma.Multiaddr) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, d := range t.dials {
		if d.Addr.Equal(addr) {
			n++
		}
	}
	return n
}

// DialLog returns every dial started, in order.
func (t *Transport) DialLog() []Dial {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.dials)
}

// Protocols returns the protocol codes given to New.
func (t *Transport) Protocols() []int { return slices.Clone(t.codes) }

// CanDial reports whether addr has a component with one of the
// transport's protocol codes.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	for _, c := range addr {
		if slices.Contains(t.codes, c.Code()) {
			return true
		}
	}
	return false
}

// Dial connects to p's listener as addr's Behaviour says.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	t.mu.Lock()
	t.dials = append(t.dials, Dial{Addr: raddr, At: time.Now()})
	b := t.behaviours[string(raddr.Bytes())]
	laddr := t.listenAddr
	t.mu.Unlock()
	if laddr == nil {
		laddr = ma.StringCast("/ip4/127.0.0.1/tcp/1")
	}

	if b.Delay > 0 {
		timer := time.NewTimer(b.Delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("testtransport: dial %s: %w", raddr, ctx.Err())
		}
	}
	if b.Block != nil {
		select {
		case <-b.Block:
		case <-ctx.Done():
			return nil, fmt.Errorf("testtransport: dial %s: %w", raddr, ctx.Err())
		}
	}
	if b.Err != nil {
		return nil, fmt.Errorf("testtransport: dial %s: %w", raddr, b.Err)
	}
	if b.Peer != "" {
		p = b.Peer
	}
	l := t.net.listener(p)
	if l == nil {
		return nil, fmt.Errorf("testtransport: dial %s: %w", raddr, ErrConnRefused)
	}
	local, remote := newConnPair(t.local, t.localKey, laddr, l.t.local, l.t.localKey, raddr, b)
	select {
	case l.incoming <- remote:
		return local, nil
	case <-l.closed:
		return nil, fmt.Errorf("testtransport: dial %s: %w", raddr, ErrConnRefused)
	case <-ctx.Done():
		return nil, fmt.Errorf("testtransport: dial %s: %w", raddr, ctx.Err())
	}
}

// Listen makes the transport's peer reachable; laddr is what the listener
// reports.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	l := &Listener{
		t:        t,
		addr:     laddr,
		incoming: make(chan *Conn, 16),
		closed:   make(chan struct{}),
	}
	t.mu.Lock()
	if t.listenAddr == nil {
		t.listenAddr = laddr
	}
	t.mu.Unlock()
	t.net.addListener(t.local, l)
	return l, nil
}

// Close does nothing: the transport holds no shared resources.
func (t *Transport) Close() error { return nil }

// Listener accepts the connections dialed to its transport's peer.
type Listener struct {
	t        *Transport
	addr     ma.Multiaddr
	incoming chan *Conn
	closed   chan struct{}
	once     sync.Once
}

var _ transport.Listener = (*Listener)(nil)

// Accept returns the next connection, or an error wrapping net.ErrClosed
// once the listener is closed.
func (l *Listener) Accept() (transport.CapableConn, error) {
	select {
	case c := <-l.incoming:
		return c, nil
	case <-l.closed:
		return nil, fmt.Errorf("testtransport: accept: %w", net.ErrClosed)
	}
}

// Close stops listening.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.t.net.removeListener(l.t.local, l)
	})
	return nil
}

// Addr returns a placeholder net.Addr naming the multiaddr.
func (l *Listener) Addr() net.Addr { return memAddr(l.addr.String()) }

// Multiaddr returns the address given to Listen.
func (l *Listener) Multiaddr() ma.Multiaddr { return l.addr }

// memAddr is a net.Addr of the in-memory network.
type memAddr string

func (a memAddr) Network() string { return "memory" }
func (a memAddr) String() string  { return string(a) }
