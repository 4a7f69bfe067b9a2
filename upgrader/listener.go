package upgrader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Listener accepts raw connections from a net.Listener, reserves each in
// the resource manager, upgrades them concurrently (at most
// MaxInflightInbound at once, each bounded by InboundUpgradeTimeout) and
// hands out the upgraded ones. It owns one goroutine, the accept loop,
// plus one per handshake in progress.
type Listener struct {
	u             *Upgrader
	nl            net.Listener
	laddr         ma.Multiaddr
	transportName string
	onClose       func()

	ctx      context.Context // cancelled by Close; bounds every handshake
	cancel   context.CancelFunc
	incoming chan *Conn
	inflight chan struct{} // a token per handshake in progress
	wg       sync.WaitGroup

	closeOnce sync.Once
	mu        sync.Mutex // guards the following
	err       error      // why the accept loop stopped
}

var _ transport.Listener = (*Listener)(nil)

// Listen starts accepting on nl, whose address is laddr. transportName
// goes into each connection's ConnectionState. onClose, if not nil, runs
// once when the listener closes.
func (u *Upgrader) Listen(nl net.Listener, laddr ma.Multiaddr, transportName string, onClose func()) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		u:             u,
		nl:            nl,
		laddr:         laddr,
		transportName: transportName,
		onClose:       onClose,
		ctx:           ctx,
		cancel:        cancel,
		incoming:      make(chan *Conn, DefaultAcceptQueue),
		inflight:      make(chan struct{}, u.cfg.MaxInflightInbound),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		raw, err := l.nl.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && l.ctx.Err() == nil {
				continue
			}
			if l.ctx.Err() == nil && isTemporary(err) {
				// Out of file descriptors and the like: wait a little,
				// doubling up to a second, so the loop does not spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
					continue
				case <-l.ctx.Done():
					t.Stop()
				}
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.cancel()
			return
		}
		backoff = 0
		// Wait for a handshake slot: a flood of half-open connections
		// then stalls in the kernel's backlog, not in our memory.
		select {
		case l.inflight <- struct{}{}:
		case <-l.ctx.Done():
			raw.Close()
			return
		}
		l.wg.Add(1)
		go l.upgrade(raw)
	}
}

// isTemporary reports whether an accept error may clear by itself.
func isTemporary(err error) bool {
	type temporary interface{ Temporary() bool }
	var t temporary
	return errors.As(err, &t) && t.Temporary()
}

func (l *Listener) upgrade(raw net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.inflight }()
	raddr, err := manet.FromNetAddr(raw.RemoteAddr())
	if err != nil {
		raw.Close()
		return
	}
	scope, err := l.u.cfg.ResourceManager.OpenConnection(network.DirInbound, true, raddr)
	if err != nil {
		slog.Debug("inbound connection refused by the resource manager", "from", raddr, "err", err)
		raw.Close()
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.u.cfg.InboundUpgradeTimeout)
	defer cancel()
	c, err := l.u.Upgrade(ctx, raw, network.DirInbound, "", scope, l.laddr, raddr, l.transportName)
	if err != nil {
		slog.Debug("inbound upgrade failed", "from", raddr, "err", err)
		return
	}
	select {
	case l.incoming <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// Accept returns the next upgraded connection.
func (l *Listener) Accept() (transport.CapableConn, error) {
	select {
	case c := <-l.incoming:
		return c, nil
	case <-l.ctx.Done():
	}
	// Prefer connections already upgraded over reporting the close.
	select {
	case c := <-l.incoming:
		return c, nil
	default:
	}
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err == nil || errors.Is(err, net.ErrClosed) {
		return nil, fmt.Errorf("listener %s: %w", l.laddr, net.ErrClosed)
	}
	return nil, fmt.Errorf("listener %s: %w", l.laddr, err)
}

// Close stops listening, abandons handshakes in progress, closes
// connections nobody accepted, and returns once its goroutines have
// ended.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.cancel()
		err = l.nl.Close()
		l.wg.Wait()
		for {
			select {
			case c := <-l.incoming:
				c.Close()
				continue
			default:
			}
			break
		}
		if l.onClose != nil {
			l.onClose()
		}
	})
	return err
}

// Addr returns the socket's address.
func (l *Listener) Addr() net.Addr { return l.nl.Addr() }

// Multiaddr returns the address listened on.
func (l *Listener) Multiaddr() ma.Multiaddr { return l.laddr }
