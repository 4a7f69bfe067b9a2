package upgrader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of the fair sharing of a Listener's handshake slots (see
// Config).
const (
	// DefaultHandshakePrefixIPv4 groups IPv4 sources by address.
	DefaultHandshakePrefixIPv4 = 32
	// DefaultHandshakePrefixIPv6 groups IPv6 sources by /56, what one
	// site usually gets.
	DefaultHandshakePrefixIPv6 = 56
	// DefaultGroupShare is the share of the handshake slots one group may
	// hold by default: 1/DefaultGroupShare of them, at least one.
	DefaultGroupShare = 8
)

// Listener accepts raw connections from a net.Listener, reserves each in
// the resource manager, upgrades them concurrently (each bounded by
// InboundUpgradeTimeout) and hands out the upgraded ones. It owns one
// goroutine, the accept loop, plus one per handshake in progress or
// ending; Close waits for them all.
//
// At most MaxInflightInbound handshakes run at once, shared fairly among
// groups of source addresses (an IPv4 address or an IPv6 /56 by
// default): a group holds at most MaxInflightPerGroup of them. The accept
// loop never waits for a slot, so connections that stall their handshake
// cannot keep others in the kernel's backlog; it decides at once:
//
//   - a connection from a group at its cap is closed (refused);
//   - a free slot is taken;
//   - when every slot is taken, the oldest handshake of the most
//     represented group is cancelled (evicted) to make room, unless the
//     newcomer's own group is at least as represented, or no handshake
//     can be evicted (every slot holds an upgraded connection waiting
//     for Accept): then the newcomer is closed (refused).
//
// A group's representation counts its handshakes in progress and those
// evicted from it until their InboundUpgradeTimeout would have run out,
// so an address whose handshake was evicted cannot reconnect to take the
// slot back from the newcomer (and so on round the pool, until the
// newcomer is the oldest). A newcomer that evicted a handshake opens its
// resource scope once the evicted one has ended its own, so the
// transient scope need not have room for both.
//
// The resource manager's transient scope may have room for fewer
// connections than there are slots. When it refuses a newcomer's
// connection scope for want of resources while at least half the slots
// hold scopes, the same rule evicts a handshake holding one, and the
// newcomer asks again once that one has ended; if it is refused again,
// the refusal was its own (its address over a limit of its own), and its
// group is charged as if it had been evicted, so that one address cannot
// evict others again and again. Handshakes open their scopes one at a
// time, so that the room an eviction makes goes to the one that evicted.
//
// Refusals and evictions are counted (see HandshakeStats) and logged at
// Debug.
type Listener struct {
	u             *Upgrader
	nl            net.Listener
	laddr         ma.Multiaddr
	transportName string
	onClose       func()
	hook          func(handshakeEvent) // tests only: what happened to a connection; nil otherwise

	ctx      context.Context // cancelled by Close; bounds every handshake
	cancel   context.CancelFunc
	incoming chan *Conn
	// scopeGate is held while a handshake opens its connection scope.
	scopeGate chan struct{}
	wg        sync.WaitGroup

	closeOnce sync.Once
	mu        sync.Mutex // guards the following
	err       error      // why the accept loop stopped
	pool      handshakePool
}

var _ transport.Listener = (*Listener)(nil)

// Listen starts accepting on nl, whose address is laddr. transportName
// goes into each connection's ConnectionState. onClose, if not nil, runs
// once when the listener closes. A connection's remote address is its
// RemoteMultiaddr() when it has that method (a WebSocket connection's
// /…/tcp/N/ws), else its RemoteAddr().
func (u *Upgrader) Listen(nl net.Listener, laddr ma.Multiaddr, transportName string, onClose func()) *Listener {
	return u.listen(nl, laddr, transportName, onClose, nil)
}

// listen is Listen with a hook that sees every decision about a
// connection and every handshake's end, for tests.
func (u *Upgrader) listen(nl net.Listener, laddr ma.Multiaddr, transportName string, onClose func(), hook func(handshakeEvent)) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		u:             u,
		nl:            nl,
		laddr:         laddr,
		transportName: transportName,
		onClose:       onClose,
		hook:          hook,
		ctx:           ctx,
		cancel:        cancel,
		incoming:      make(chan *Conn, DefaultAcceptQueue),
		scopeGate:     make(chan struct{}, 1),
		pool:          newHandshakePool(&u.cfg),
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
		l.admit(raw)
	}
}

// isTemporary reports whether an accept error may clear by itself.
func isTemporary(err error) bool {
	type temporary interface{ Temporary() bool }
	var t temporary
	return errors.As(err, &t) && t.Temporary()
}

// admit gives raw a handshake slot, evicting another handshake if need
// be, and starts its upgrade; or it refuses raw and closes it. It never
// waits.
func (l *Listener) admit(raw net.Conn) {
	if !l.gateAccept(raw) {
		return
	}
	from := remoteAddr(raw.RemoteAddr())
	l.mu.Lock()
	h, victim, refusal := l.pool.admitLocked(from, time.Now())
	if h != nil {
		h.ctx, h.cancel = context.WithTimeout(l.ctx, l.u.cfg.InboundUpgradeTimeout)
	}
	if victim != nil {
		// Expires its socket (see Upgrade): its goroutine ends, closing
		// the socket and ending its resource scope.
		victim.cancel()
	}
	l.mu.Unlock()

	if h == nil {
		slog.Debug("inbound connection refused before its handshake", "from", raw.RemoteAddr(), "group", l.pool.groupOf(from.Addr()), "reason", refusalName(refusal))
		if tc, ok := raw.(lingerer); ok {
			// A reset, so a flood of refusals leaves no TIME_WAIT behind.
			tc.SetLinger(0)
		}
		raw.Close()
		l.notify(handshakeEvent{kind: refusal, from: from})
		return
	}
	if victim != nil {
		slog.Debug("inbound handshake evicted to make room", "from", victim.from, "group", victim.group,
			"age", time.Since(victim.start), "for", raw.RemoteAddr())
		l.notify(handshakeEvent{kind: eventEvicted, from: victim.from})
	}
	l.notify(handshakeEvent{kind: eventAdmitted, from: from})
	l.wg.Add(1)
	go l.upgrade(raw, h, victim)
}

// upgrade runs h's handshake on raw once victim, the handshake evicted
// for it if any, has released its resources.
func (l *Listener) upgrade(raw net.Conn, h, victim *handshake) {
	defer l.wg.Done()
	defer l.release(h)
	defer h.cancel()
	if victim != nil {
		// The evicted handshake's resource scope is the room the
		// resource manager may need for ours.
		select {
		case <-victim.done:
		case <-h.ctx.Done():
			raw.Close()
			return
		}
	}
	raddr, err := remoteMultiaddr(raw)
	if err != nil {
		raw.Close()
		return
	}
	scope, err := l.openScope(h, raddr)
	if err != nil {
		slog.Debug("inbound connection refused by the resource manager", "from", raddr, "err", err)
		raw.Close()
		return
	}
	c, err := l.u.Upgrade(h.ctx, raw, network.DirInbound, "", scope, l.laddr, raddr, l.transportName)
	if err != nil {
		slog.Debug("inbound upgrade failed", "from", raddr, "err", err)
		return
	}
	l.mu.Lock()
	evicted := h.evicted // after the handshake's last step: the eviction stands
	h.upgraded = !evicted
	l.mu.Unlock()
	if evicted {
		c.Close()
		return
	}
	select {
	case l.incoming <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// openScope opens h's connection scope. When the resource manager
// refuses it for want of resources while handshakes hold at least half
// the slots, the transient scope is most likely full of handshakes: then
// the oldest handshake of a group more represented than h's is evicted,
// as for a full pool, and the scope is asked for once more when that
// handshake has ended. If the manager refuses again, the refusal was
// h's own (its address is over a limit of its own), and h's group is
// charged as if h had been evicted, so that it cannot evict again and
// again.
func (l *Listener) openScope(h *handshake, raddr ma.Multiaddr) (network.ConnManagementScope, error) {
	// One at a time, so that the room an eviction makes goes to the
	// handshake that evicted, not to another of ours asking meanwhile.
	select {
	case l.scopeGate <- struct{}{}:
	case <-h.ctx.Done():
		return nil, h.ctx.Err()
	}
	defer func() { <-l.scopeGate }()
	rm := l.u.cfg.ResourceManager
	scope, err := rm.OpenConnection(network.DirInbound, true, raddr)
	if err != nil && errors.Is(err, network.ErrResourceLimitExceeded) {
		l.mu.Lock()
		victim := l.pool.evictForScopeLocked(h, time.Now())
		if victim != nil {
			victim.cancel()
		}
		l.mu.Unlock()
		if victim == nil {
			l.countRefusedScope()
			return nil, err
		}
		slog.Debug("inbound handshake evicted to make room in the resource manager", "from", victim.from, "group", victim.group,
			"age", time.Since(victim.start), "for", h.from)
		l.notify(handshakeEvent{kind: eventEvicted, from: victim.from})
		select {
		case <-victim.done:
		case <-h.ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, h.ctx.Err())
		}
		scope, err = rm.OpenConnection(network.DirInbound, true, raddr)
		if err != nil {
			l.mu.Lock()
			l.pool.chargeLocked(h)
			l.mu.Unlock()
		}
	}
	if err != nil {
		l.countRefusedScope()
		return nil, err
	}
	l.mu.Lock()
	if !h.evicted { // else its upgrade fails at once and ends scope
		h.scoped = true
		l.pool.scoped++
	}
	l.mu.Unlock()
	return scope, nil
}

func (l *Listener) countRefusedScope() {
	l.mu.Lock()
	l.pool.stats.RefusedByManager++
	l.mu.Unlock()
}

// release frees h's slot, unless an eviction took it already.
func (l *Listener) release(h *handshake) {
	l.mu.Lock()
	l.pool.releaseLocked(h)
	l.mu.Unlock()
	close(h.done)
	l.notify(handshakeEvent{kind: eventEnded, from: h.from})
}

func (l *Listener) notify(ev handshakeEvent) {
	if l.hook != nil {
		l.hook(ev)
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

// HandshakeStats is a snapshot of what a Listener did with inbound
// connections before their upgrade.
type HandshakeStats struct {
	// InFlight is how many connections hold a handshake slot: those in
	// their handshake and those upgraded but not yet accepted.
	InFlight int
	// Groups is how many groups of source addresses they come from.
	Groups int
	// Admitted counts the connections given a slot.
	Admitted uint64
	// RefusedAtCap counts the connections closed at once because their
	// group held MaxInflightPerGroup handshakes (evicted ones included).
	RefusedAtCap uint64
	// RefusedFull counts the connections closed at once because every
	// slot was taken and no handshake could be evicted for them: their
	// group was at least as represented as any, or every slot held an
	// upgraded connection.
	RefusedFull uint64
	// Evicted counts the handshakes cancelled to make room for a
	// connection from a less represented group, in the slots or in the
	// resource manager.
	Evicted uint64
	// RefusedByManager counts the connections given a slot whose
	// connection scope the resource manager then refused.
	RefusedByManager uint64
}

// Refused returns how many connections were refused, for any reason.
func (s HandshakeStats) Refused() uint64 { return s.RefusedAtCap + s.RefusedFull }

// HandshakeStats returns the listener's handshake counters. The counts
// only grow; InFlight and Groups are the current values.
func (l *Listener) HandshakeStats() HandshakeStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.pool.stats
	s.InFlight = l.pool.n
	for _, g := range l.pool.groups {
		if len(g.live) > 0 {
			s.Groups++
		}
	}
	return s
}

// remoteAddr returns the IP address and port of a connection's remote
// end, or the zero AddrPort if it has none.
func remoteAddr(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handshake is one inbound connection holding a slot of a Listener.
type handshake struct {
	from   netip.AddrPort
	group  netip.Prefix
	seq    uint64    // admission order: the oldest has the lowest
	start  time.Time // when it was admitted
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once it has released its slot and resources

	// Guarded by Listener.mu.
	upgraded bool // the upgrade succeeded: no longer evictable
	evicted  bool // cancelled to make room: its slot is gone
	scoped   bool // it holds a connection scope of the resource manager
}

// handshakeGroup is what one group of source addresses holds.
type handshakeGroup struct {
	live []*handshake // in admission order
	// ghosts are when each handshake evicted from the group would have
	// timed out: until then it still counts against the group.
	ghosts []time.Time
}

func (g *handshakeGroup) count() int { return len(g.live) + len(g.ghosts) }

// expire forgets the ghosts whose time has run out.
func (g *handshakeGroup) expire(now time.Time) {
	g.ghosts = slices.DeleteFunc(g.ghosts, func(t time.Time) bool { return !now.Before(t) })
}

// oldestEvictable returns the group's oldest handshake still in
// progress, holding a connection scope if scoped says so, or nil.
func (g *handshakeGroup) oldestEvictable(scoped bool) *handshake {
	for _, h := range g.live {
		if !h.upgraded && (h.scoped || !scoped) {
			return h
		}
	}
	return nil
}

// handshakePool shares a Listener's handshake slots among groups of
// source addresses. It is guarded by Listener.mu.
type handshakePool struct {
	size      int // slots
	perGroup  int // cap of one group
	bits4     int // IPv4 prefix length of a group
	bits6     int // IPv6 prefix length of a group
	timeout   time.Duration
	maxGroups int // groups remembered, ghosts included

	n         int // handshakes holding a slot
	scoped    int // of them, those holding a connection scope
	seq       uint64
	groups    map[netip.Prefix]*handshakeGroup
	nextSweep time.Time // when to forget expired ghosts of every group
	stats     HandshakeStats
}

func newHandshakePool(cfg *Config) handshakePool {
	size := max(cfg.MaxInflightInbound, 1)
	perGroup := cfg.MaxInflightPerGroup
	if perGroup <= 0 {
		perGroup = max(1, size/DefaultGroupShare)
	}
	prefix := func(bits, def, all int) int {
		if bits <= 0 {
			return def
		}
		return min(bits, all)
	}
	return handshakePool{
		size:      size,
		perGroup:  min(perGroup, size),
		bits4:     prefix(cfg.HandshakePrefixIPv4, DefaultHandshakePrefixIPv4, 32),
		bits6:     prefix(cfg.HandshakePrefixIPv6, DefaultHandshakePrefixIPv6, 128),
		timeout:   cfg.InboundUpgradeTimeout,
		maxGroups: 4 * size,
		groups:    make(map[netip.Prefix]*handshakeGroup),
	}
}

// groupOf returns the group of source address ip. Connections without an
// IP address form one group, the zero Prefix.
func (p *handshakePool) groupOf(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := p.bits6
	if ip.Is4() {
		bits = p.bits4
	}
	g, err := ip.WithZone("").Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return g
}

// Reasons a handshakeEvent reports, refusals first.
const (
	eventRefusedAtCap = iota // refused: the group is at its cap
	eventRefusedFull         // refused: the pool is full, nothing to evict for it
	eventAdmitted            // given a slot
	eventEvicted             // a handshake was evicted (from is the evicted one's)
	eventEnded               // a handshake released its slot
)

// handshakeEvent is what the test hook of a Listener sees.
type handshakeEvent struct {
	kind int
	from netip.AddrPort
}

// refusalName names a refusal for logs.
type refusalName int

func (r refusalName) String() string {
	if r == eventRefusedAtCap {
		return "its address group is at its cap of handshakes"
	}
	return "every handshake slot is taken by groups no more represented than its own"
}

// admitLocked decides about a connection from from at now. It returns the
// handshake admitted and, when the pool was full, the handshake evicted
// for it (already out of the pool; the caller cancels it); or no
// handshake and the reason of the refusal.
func (p *handshakePool) admitLocked(from netip.AddrPort, now time.Time) (h, victim *handshake, refusal int) {
	p.sweepLocked(now)
	key := p.groupOf(from.Addr())
	g := p.groups[key]
	count := 0
	if g != nil {
		g.expire(now)
		count = g.count()
	}
	if count >= p.perGroup {
		p.stats.RefusedAtCap++
		return nil, nil, eventRefusedAtCap
	}
	if p.n >= p.size {
		victim = p.victimLocked(now, false)
		if victim == nil || count >= p.groups[victim.group].count() {
			p.stats.RefusedFull++
			return nil, nil, eventRefusedFull
		}
		p.evictLocked(victim)
	}
	if g == nil {
		g = &handshakeGroup{}
		p.groups[key] = g
	}
	p.seq++
	h = &handshake{from: from, group: key, seq: p.seq, start: now, done: make(chan struct{})}
	g.live = append(g.live, h)
	p.n++
	p.stats.Admitted++
	return h, victim, eventAdmitted
}

// victimLocked returns the handshake to evict from a full pool: the
// oldest one in progress (holding a connection scope, if scoped) of the
// most represented group, the older candidate when groups tie; nil if
// there is none.
func (p *handshakePool) victimLocked(now time.Time, scoped bool) *handshake {
	var best *handshake
	bestCount := 0
	for _, g := range p.groups {
		h := g.oldestEvictable(scoped)
		if h == nil {
			continue
		}
		g.expire(now)
		c := g.count()
		if best == nil || c > bestCount || c == bestCount && h.seq < best.seq {
			best, bestCount = h, c
		}
	}
	return best
}

// evictForScopeLocked returns the handshake to evict so that h can have
// a connection scope, already evicted, or nil if h's group is as
// represented as any (h not counted) or if fewer than half the slots
// hold a connection scope: then the manager's refusal is not the
// handshakes' doing.
func (p *handshakePool) evictForScopeLocked(h *handshake, now time.Time) *handshake {
	if h.evicted || p.scoped < (p.size+1)/2 {
		return nil
	}
	victim := p.victimLocked(now, true)
	g := p.groups[h.group]
	g.expire(now)
	if victim == nil || g.count()-1 >= p.groups[victim.group].count() {
		return nil
	}
	p.evictLocked(victim)
	return victim
}

// chargeLocked makes h count against its group until its time would
// have run out, as if it had been evicted.
func (p *handshakePool) chargeLocked(h *handshake) {
	// As in evictLocked, a group outliving its handshakes for its ghosts
	// alone is remembered only while there is room.
	if g := p.groups[h.group]; g != nil && !h.evicted && (len(g.live) > 1 || len(p.groups) <= p.maxGroups) {
		g.ghosts = append(g.ghosts, h.start.Add(p.timeout))
	}
}

// evictLocked takes h's slot away; h still counts against its group
// until its time would have run out.
func (p *handshakePool) evictLocked(h *handshake) {
	g := p.groups[h.group]
	g.live = slices.DeleteFunc(g.live, func(x *handshake) bool { return x == h })
	// The number of groups is bounded: a group is remembered for its
	// ghosts alone only while there is room.
	if len(g.live) > 0 || len(p.groups) <= p.maxGroups {
		g.ghosts = append(g.ghosts, h.start.Add(p.timeout))
	}
	if g.count() == 0 {
		delete(p.groups, h.group)
	}
	h.evicted = true
	p.n--
	if h.scoped {
		p.scoped--
	}
	p.stats.Evicted++
}

// releaseLocked frees h's slot when its handshake ends, unless it was
// evicted.
func (p *handshakePool) releaseLocked(h *handshake) {
	if h.evicted {
		return
	}
	g := p.groups[h.group]
	g.live = slices.DeleteFunc(g.live, func(x *handshake) bool { return x == h })
	if g.count() == 0 {
		delete(p.groups, h.group)
	}
	p.n--
	if h.scoped {
		p.scoped--
	}
}

// sweepLocked forgets expired ghosts of every group, at most every
// eighth of the timeout, so groups remembered for their ghosts alone do
// not pile up.
func (p *handshakePool) sweepLocked(now time.Time) {
	if now.Before(p.nextSweep) {
		return
	}
	p.nextSweep = now.Add(p.timeout / 8)
	for key, g := range p.groups {
		g.expire(now)
		if g.count() == 0 {
			delete(p.groups, key)
		}
	}
}
