package connmgr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// Defaults of New, go-libp2p's host defaults.
const (
	// DefaultLowWater is how many connections a trim leaves open.
	DefaultLowWater = 160
	// DefaultHighWater is how many connections may be open before the
	// manager trims.
	DefaultHighWater = 192
	// DefaultGracePeriod is how long a newly connected peer is safe from
	// trimming.
	DefaultGracePeriod = time.Minute
	// DefaultSilencePeriod is the least time between two automatic trims,
	// and how often the manager looks whether it should trim.
	DefaultSilencePeriod = 10 * time.Second
	// DefaultPressureThreshold is the fraction of the resource manager's
	// connection or memory limit beyond which the manager trims whatever
	// the watermarks say (see WithResourceUsage).
	DefaultPressureThreshold = 0.9
	// DefaultDecayResolution is how often decaying tags are visited.
	DefaultDecayResolution = time.Minute
)

var (
	// ErrInvalidOption is wrapped by the errors of New given a bad option.
	ErrInvalidOption = errors.New("connmgr: invalid option")
	// ErrClosed is returned by the decaying-tag methods once the tag or
	// the manager is closed.
	ErrClosed = errors.New("connmgr: closed")
)

// ResourceUsage is what the manager needs of a resource manager: how
// full its limits are. The host adapts its rcmgr.Manager to it.
type ResourceUsage interface {
	// ResourcePressure returns how much of the connection limits and of
	// the memory limit is in use, each as a fraction: 0 when nothing is
	// used, 1 at the limit. For connections it is the fullest of the
	// limits that count them (all, inbound, outbound); a resource without
	// a limit reports 0.
	ResourcePressure() (conns, memory float64)
}

type config struct {
	low, high       int
	grace, silence  time.Duration
	usage           ResourceUsage
	threshold       float64
	decayResolution time.Duration
}

// Option configures a Manager.
type Option func(*config) error

// WithGracePeriod sets how long a peer is safe from trimming after its
// first connection opens. Default: DefaultGracePeriod. Zero makes new
// peers fair game at once.
func WithGracePeriod(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: negative grace period %v", ErrInvalidOption, d)
		}
		c.grace = d
		return nil
	}
}

// WithSilencePeriod sets the least time between two automatic trims,
// which is also how often the manager looks whether it should trim.
// Default: DefaultSilencePeriod.
func WithSilencePeriod(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: silence period %v, must be positive", ErrInvalidOption, d)
		}
		c.silence = d
		return nil
	}
}

// WithResourceUsage makes the manager trim also when the connection or
// memory use that u reports reaches threshold (a fraction of the limits,
// in (0, 1]; 0 means DefaultPressureThreshold), so that idle peers make
// room before the resource manager refuses newcomers. Under pressure a
// trim closes connections down to the low watermark, or to three
// quarters of the open connections when that is fewer (limits below the
// watermarks); protected peers and peers in their grace period stay.
// Default: none, only the watermarks count.
func WithResourceUsage(u ResourceUsage, threshold float64) Option {
	return func(c *config) error {
		if threshold < 0 || threshold > 1 {
			return fmt.Errorf("%w: pressure threshold %v outside [0, 1]", ErrInvalidOption, threshold)
		}
		if threshold == 0 {
			threshold = DefaultPressureThreshold
		}
		c.usage, c.threshold = u, threshold
		return nil
	}
}

// WithDecayResolution sets how often decaying tags are visited; their
// intervals are rounded up to a multiple of it. Default:
// DefaultDecayResolution.
func WithDecayResolution(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: decay resolution %v, must be positive", ErrInvalidOption, d)
		}
		c.decayResolution = d
		return nil
	}
}

// Manager keeps the number of open connections between a low and a high
// watermark. It learns of connections through its Notifee, which the
// host registers with the network. It is safe for concurrent use.
//
// The manager owns one goroutine, which trims, visits decaying tags and
// ends with Close. It trims when more than the high watermark are open
// (woken by the connection that crossed it, so without waiting for its
// clock) or when the resource manager is under pressure, at most once per
// silence period: it closes every connection of the peers with the least
// value until at most the low watermark remain. A peer's value is the
// sum of its tags; among peers of equal value, those with fewer open
// streams go first, then those connected longest. Protected peers and
// peers whose first connection is younger than the grace period are
// never closed, so a trim may leave more than the low watermark open.
type Manager struct {
	cfg config

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{}      // cap 1: a connection crossed a watermark
	trimReq chan chan struct{} // TrimOpenConns

	mu        sync.Mutex // guards the following
	peers     map[peer.ID]*peerInfo
	conns     int // open connections the manager knows of
	protected map[peer.ID]map[string]struct{}
	lastTrim  time.Time
	decaying  map[string]*DecayingTag
	closed    bool
	stats     TrimStats
}

// peerInfo is what the manager knows of one peer.
type peerInfo struct {
	firstSeen time.Time                       // of its oldest open connection, or of its first tag
	tags      map[string]int                  // nil until tagged
	decaying  map[*DecayingTag]*DecayingValue // nil until given a decaying tag
	conns     []connAt                        // its open connections, usually one
}

// connAt is an open connection of a peer and when it opened.
type connAt struct {
	c  network.Conn
	at time.Time
}

// connIndex returns the index of c in pi.conns, or -1.
func (pi *peerInfo) connIndex(c network.Conn) int {
	for i := range pi.conns {
		if pi.conns[i].c == c {
			return i
		}
	}
	return -1
}

// connList returns a copy of the peer's connections.
func (pi *peerInfo) connList() []network.Conn {
	cs := make([]network.Conn, len(pi.conns))
	for i, ca := range pi.conns {
		cs[i] = ca.c
	}
	return cs
}

// tag sets the tag named tag to value.
func (pi *peerInfo) tag(tag string, value int) {
	if pi.tags == nil {
		pi.tags = make(map[string]int, 1)
	}
	pi.tags[tag] = value
}

func (pi *peerInfo) value() int {
	v := 0
	for _, t := range pi.tags {
		v += t
	}
	for _, d := range pi.decaying {
		v += d.Value
	}
	return v
}

// TagInfo is what GetTagInfo tells of a peer.
type TagInfo struct {
	// FirstSeen is when its oldest open connection opened (or when it was
	// first tagged, while it has none).
	FirstSeen time.Time
	// Value is the sum of its tags.
	Value int
	// Tags holds its tags and decaying tags by name.
	Tags map[string]int
	// Conns maps the remote address of each open connection to when it
	// opened.
	Conns map[string]time.Time
}

// TrimStats counts what the manager trimmed.
type TrimStats struct {
	// Trims counts the trims that closed at least one connection.
	Trims uint64
	// Closed counts the connections trims closed.
	Closed uint64
}

// New returns a manager that trims down to low connections once more than
// high are open, and starts its goroutine. It needs 0 <= low <= high and
// high > 0.
func New(low, high int, opts ...Option) (*Manager, error) {
	if low < 0 || high <= 0 || low > high {
		return nil, fmt.Errorf("%w: watermarks low %d, high %d: need 0 <= low <= high, high > 0", ErrInvalidOption, low, high)
	}
	cfg := config{
		low: low, high: high,
		grace:           DefaultGracePeriod,
		silence:         DefaultSilencePeriod,
		decayResolution: DefaultDecayResolution,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:       cfg,
		ctx:       ctx,
		cancel:    cancel,
		wake:      make(chan struct{}, 1),
		trimReq:   make(chan chan struct{}),
		peers:     map[peer.ID]*peerInfo{},
		protected: map[peer.ID]map[string]struct{}{},
		decaying:  map[string]*DecayingTag{},
	}
	m.wg.Add(1)
	go m.loop()
	return m, nil
}

// Watermarks returns the low and high watermarks.
func (m *Manager) Watermarks() (low, high int) { return m.cfg.low, m.cfg.high }

// GracePeriod returns the grace period.
func (m *Manager) GracePeriod() time.Duration { return m.cfg.grace }

// Close stops the manager's goroutine and closes its decaying tags. It
// closes no connection.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// ConnCount returns how many open connections the manager knows of.
func (m *Manager) ConnCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns
}

// Stats returns what trims closed so far.
func (m *Manager) Stats() TrimStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// NumProtected returns how many peers are protected under at least one
// tag.
func (m *Manager) NumProtected() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.protected)
}

// peerLocked returns p's entry, making one if needed.
func (m *Manager) peerLocked(p peer.ID, now time.Time) *peerInfo {
	pi := m.peers[p]
	if pi == nil {
		pi = &peerInfo{firstSeen: now}
		m.peers[p] = pi
	}
	return pi
}

// TagPeer sets p's tag named tag to value, replacing any earlier value.
// Tagging a peer without connections keeps the tag for a grace period,
// or for as long as the peer stays connected once it connects; a peer's
// tags are forgotten when its last connection closes.
func (m *Manager) TagPeer(p peer.ID, tag string, value int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peerLocked(p, time.Now()).tag(tag, value)
}

// UntagPeer removes p's tag named tag.
func (m *Manager) UntagPeer(p peer.ID, tag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pi := m.peers[p]; pi != nil {
		delete(pi.tags, tag)
	}
}

// UpsertTag sets p's tag named tag to upsert(old), where old is its value
// so far (0 for a new tag). upsert runs under the manager's lock and must
// not call the manager.
func (m *Manager) UpsertTag(p peer.ID, tag string, upsert func(int) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pi := m.peerLocked(p, time.Now())
	pi.tag(tag, upsert(pi.tags[tag]))
}

// GetTagInfo returns what the manager knows of p, or nil when it knows
// nothing.
func (m *Manager) GetTagInfo(p peer.ID) *TagInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	pi := m.peers[p]
	if pi == nil {
		return nil
	}
	ti := &TagInfo{
		FirstSeen: pi.firstSeen,
		Value:     pi.value(),
		Tags:      make(map[string]int, len(pi.tags)+len(pi.decaying)),
		Conns:     make(map[string]time.Time, len(pi.conns)),
	}
	maps.Copy(ti.Tags, pi.tags)
	for t, v := range pi.decaying {
		ti.Tags[t.name] = v.Value
	}
	for _, ca := range pi.conns {
		key := ca.c.ID()
		if a := ca.c.RemoteMultiaddr(); len(a) > 0 {
			key = a.String()
		}
		ti.Conns[key] = ca.at
	}
	return ti
}

// Protect keeps p's connections from being trimmed until every tag it was
// protected with is unprotected. Protection does not depend on p being
// connected.
func (m *Manager) Protect(p peer.ID, tag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tags := m.protected[p]
	if tags == nil {
		tags = map[string]struct{}{}
		m.protected[p] = tags
	}
	tags[tag] = struct{}{}
}

// Unprotect removes the protection tag gave p, and reports whether p is
// still protected by another tag.
func (m *Manager) Unprotect(p peer.ID, tag string) (protected bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tags := m.protected[p]
	delete(tags, tag)
	if len(tags) == 0 {
		delete(m.protected, p)
		return false
	}
	return true
}

// IsProtected reports whether tag protects p; with tag "", whether any
// tag does.
func (m *Manager) IsProtected(p peer.ID, tag string) (protected bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tags := m.protected[p]
	if tag == "" {
		return len(tags) > 0
	}
	_, ok := tags[tag]
	return ok
}

// Notifee returns the network.Notifiee through which the manager learns
// of connections; the host registers it with its network.
func (m *Manager) Notifee() network.Notifiee { return (*notifee)(m) }

type notifee Manager

func (n *notifee) Listen(network.Network, ma.Multiaddr)      {}
func (n *notifee) ListenClose(network.Network, ma.Multiaddr) {}

// Connected counts c, and wakes the manager's goroutine when c takes the
// count above the high watermark or a resource manager is watched.
func (n *notifee) Connected(_ network.Network, c network.Conn) {
	m := (*Manager)(n)
	now := time.Now()
	m.mu.Lock()
	pi := m.peerLocked(c.RemotePeer(), now)
	if pi.connIndex(c) >= 0 {
		m.mu.Unlock()
		return
	}
	if len(pi.conns) == 0 {
		pi.firstSeen = now // a tagged peer's grace starts with its connection
	}
	pi.conns = append(pi.conns, connAt{c, now})
	m.conns++
	wake := m.conns > m.cfg.high || m.cfg.usage != nil
	m.mu.Unlock()
	if wake {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Disconnected uncounts c; the peer is forgotten with its last connection
// (its protection stays).
func (n *notifee) Disconnected(_ network.Network, c network.Conn) {
	m := (*Manager)(n)
	m.mu.Lock()
	defer m.mu.Unlock()
	p := c.RemotePeer()
	pi := m.peers[p]
	if pi == nil {
		return
	}
	i := pi.connIndex(c)
	if i < 0 {
		return // a trim forgot it already
	}
	pi.conns = slices.Delete(pi.conns, i, i+1)
	m.conns--
	if len(pi.conns) == 0 {
		delete(m.peers, p)
	}
}

// TrimOpenConns trims now, whatever the high watermark and the silence
// period say: it closes the connections of the least valuable peers that
// are neither protected nor in their grace period until at most the low
// watermark remain. It returns when the connections are closed or ctx
// ends.
func (m *Manager) TrimOpenConns(ctx context.Context) {
	done := make(chan struct{})
	select {
	case m.trimReq <- done:
	case <-ctx.Done():
		return
	case <-m.ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// loop is the manager's goroutine.
func (m *Manager) loop() {
	defer m.wg.Done()
	tick := time.NewTicker(m.cfg.silence)
	defer tick.Stop()
	decay := time.NewTicker(m.cfg.decayResolution)
	defer decay.Stop()
	var retry *time.Timer // armed while a trim waits for the silence period
	var retryC <-chan time.Time
	check := func() {
		wait := m.maybeTrim(time.Now())
		if wait > 0 && retry == nil {
			retry = time.NewTimer(wait)
			retryC = retry.C
		}
	}
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-m.ctx.Done():
			m.closeDecaying()
			return
		case <-tick.C:
			check()
		case <-m.wake:
			check()
		case <-retryC:
			retry, retryC = nil, nil
			check()
		case done := <-m.trimReq:
			m.trim(time.Now(), m.cfg.low)
			close(done)
		case now := <-decay.C:
			m.decay(now)
		}
	}
}

// maybeTrim trims when there are more connections than the high
// watermark or the resource manager is under pressure, and the silence
// period since the last trim has passed. When only the silence period
// stands in the way it returns how long is left of it.
func (m *Manager) maybeTrim(now time.Time) (wait time.Duration) {
	m.mu.Lock()
	n, last := m.conns, m.lastTrim
	m.mu.Unlock()
	target := -1
	if n > m.cfg.high {
		target = m.cfg.low
	}
	if u := m.cfg.usage; u != nil && n > 0 {
		conns, mem := u.ResourcePressure()
		if max(conns, mem) >= m.cfg.threshold {
			target = min(m.cfg.low, n*3/4)
		}
	}
	if target < 0 {
		return 0
	}
	if since := now.Sub(last); !last.IsZero() && since < m.cfg.silence {
		return m.cfg.silence - since
	}
	m.trim(now, target)
	return 0
}

// candidate is a peer a trim may close.
type candidate struct {
	p         peer.ID
	value     int
	streams   int
	firstSeen time.Time
	conns     []network.Conn
}

// trim closes the connections of the least valuable peers that are
// neither protected nor in their grace period until at most target
// connections remain, and forgets those peers. It returns once the
// connections are closed.
func (m *Manager) trim(now time.Time, target int) {
	m.mu.Lock()
	m.lastTrim = now
	var cands []candidate
	if m.conns > target {
		for p, pi := range m.peers {
			if len(pi.conns) == 0 || len(m.protected[p]) > 0 || now.Sub(pi.firstSeen) < m.cfg.grace {
				continue
			}
			cands = append(cands, candidate{p: p, value: pi.value(), firstSeen: pi.firstSeen, conns: pi.connList()})
		}
	}
	// Peers tagged but never connected are kept for a grace period.
	for p, pi := range m.peers {
		if len(pi.conns) == 0 && now.Sub(pi.firstSeen) >= m.cfg.grace {
			delete(m.peers, p)
		}
	}
	m.mu.Unlock()
	if len(cands) == 0 {
		return
	}

	// Counting streams asks the connections, so not under our lock.
	for i := range cands {
		for _, c := range cands[i].conns {
			cands[i].streams += len(c.GetStreams())
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.value, b.value), cmp.Compare(a.streams, b.streams),
			a.firstSeen.Compare(b.firstSeen), cmp.Compare(a.p, b.p))
	})

	var closing []network.Conn
	m.mu.Lock()
	for _, cd := range cands {
		if m.conns <= target {
			break
		}
		pi := m.peers[cd.p]
		if pi == nil || len(m.protected[cd.p]) > 0 {
			continue // gone or protected meanwhile
		}
		for _, ca := range pi.conns {
			closing = append(closing, ca.c)
		}
		m.conns -= len(pi.conns)
		delete(m.peers, cd.p)
	}
	if len(closing) > 0 {
		m.stats.Trims++
		m.stats.Closed += uint64(len(closing))
	}
	m.mu.Unlock()

	// In parallel: closing a connection may wait for its peer.
	var wg sync.WaitGroup
	for _, c := range closing {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}
