package nat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

// Defaults of the PortMapper.
const (
	// DefaultPortMapLease is the lease asked for each mapping; the
	// mapper renews it at half the lease the gateway grants.
	DefaultPortMapLease = time.Hour
	// DefaultDiscoveryTimeout bounds one round of gateway discovery
	// (UPnP IGD and NAT-PMP at once).
	DefaultDiscoveryTimeout = 10 * time.Second
	// DefaultRediscoverInterval is how long the mapper waits before
	// looking for a gateway again when none answered, or the one it had
	// stopped answering.
	DefaultRediscoverInterval = 5 * time.Minute
	// DefaultPortMapRetry is how long the mapper waits before asking
	// again for a mapping the gateway refused.
	DefaultPortMapRetry = time.Minute
	// DefaultPortMapDescription is the description UPnP mappings carry.
	DefaultPortMapDescription = "p2pnet"
)

// opTimeout bounds each request to the gateway.
const opTimeout = 5 * time.Second

// closeTimeout bounds the removal of every mapping on Close.
const closeTimeout = 5 * time.Second

// ErrNoGateway is returned by discovery when no gateway answered.
var ErrNoGateway = errors.New("nat: no UPnP IGD or NAT-PMP gateway answered")

// Mapping is a port the gateway forwards to us.
type Mapping struct {
	// Protocol is TCP or UDP.
	Protocol network.NATTransportProtocol
	// InternalPort is our port: the listen port.
	InternalPort uint16
	// External is the gateway's public address and the port it forwards
	// to InternalPort.
	External netip.AddrPort
}

// gateway is a router that forwards ports for us: upnpGateway,
// natpmpGateway, or a test's fake.
type gateway interface {
	// externalIP returns the gateway's public address.
	externalIP(ctx context.Context) (netip.Addr, error)
	// addMapping asks the gateway to forward its port ext (a wish: the
	// gateway may pick another) to our port internal for lease, and
	// returns the external port and the lease granted (0: permanent).
	// Asked again for the same ports, it renews the mapping.
	addMapping(ctx context.Context, proto network.NATTransportProtocol, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error)
	// deleteMapping removes a mapping addMapping made.
	deleteMapping(ctx context.Context, proto network.NATTransportProtocol, internal, ext uint16) error
	// String names the gateway's protocol and address.
	String() string
	// close frees what the gateway holds (idle HTTP connections).
	close()
}

// discoverFunc looks for one kind of gateway until ctx ends.
type discoverFunc func(ctx context.Context) (gateway, error)

// portKey is a port to map.
type portKey struct {
	proto network.NATTransportProtocol
	port  uint16
}

// mapping is the state of a port the mapper was asked to map.
type mapping struct {
	ext     uint16    // 0 until mapped
	renewAt time.Time // when to renew, or to retry after a refusal
}

// PortMapper keeps ports forwarded by the local network's gateway: it
// finds the gateway with UPnP IGD (SSDP search for WANIPConnection:2,
// WANIPConnection:1 and WANPPPConnection:1) and NAT-PMP (to the default
// route's gateway) at once, using whichever answers first, maps each port
// it is given (asking for the same external port first), renews each
// mapping at half its lease, looks for a gateway again every
// DefaultRediscoverInterval while it has none, and removes its mappings
// on Close. It is safe for concurrent use.
type PortMapper struct {
	lease, discoveryTimeout, rediscover, retry time.Duration
	description                                string
	log                                        *slog.Logger
	onChange                                   []func()
	discover                                   []discoverFunc

	wake    chan struct{} // cap 1: the wanted ports changed
	closing chan struct{}
	ctx     context.Context // cancelled by Close: requests in flight end
	cancel  context.CancelFunc
	done    chan struct{} // closed when run returns
	bg      sync.WaitGroup
	once    sync.Once

	mu       sync.Mutex // guards the following
	want     map[portKey]int
	mappings map[portKey]*mapping
	extIP    netip.Addr
	gwName   string
}

// PortMapOption configures a PortMapper.
type PortMapOption func(*PortMapper)

// PortMapLease sets the lease asked for each mapping; leases under 2 s
// are ignored. Default: DefaultPortMapLease. A gateway that accepts only
// permanent mappings (UPnP error 725) gets those, re-asserted at half
// the lease and removed on Close.
func PortMapLease(d time.Duration) PortMapOption {
	return func(m *PortMapper) {
		if d >= 2*time.Second {
			m.lease = d
		}
	}
}

// PortMapDiscoveryTimeout bounds each round of discovery. Default:
// DefaultDiscoveryTimeout.
func PortMapDiscoveryTimeout(d time.Duration) PortMapOption {
	return func(m *PortMapper) {
		if d > 0 {
			m.discoveryTimeout = d
		}
	}
}

// PortMapRediscoverInterval sets how long the mapper waits between
// rounds of discovery while it has no gateway. Default:
// DefaultRediscoverInterval.
func PortMapRediscoverInterval(d time.Duration) PortMapOption {
	return func(m *PortMapper) {
		if d > 0 {
			m.rediscover = d
		}
	}
}

// PortMapLogger sets where the mapper says what it maps ("port mapped",
// at Info) and what fails (at Debug). Default: slog.Default().
func PortMapLogger(l *slog.Logger) PortMapOption {
	return func(m *PortMapper) {
		if l != nil {
			m.log = l
		}
	}
}

// OnPortMapChange adds a function called (on the mapper's goroutine, so
// it must not block long) each time Mappings changes; given more than
// once, each is called. Default: none.
func OnPortMapChange(f func()) PortMapOption {
	return func(m *PortMapper) {
		if f != nil {
			m.onChange = append(m.onChange, f)
		}
	}
}

// withDiscovery replaces the discovery functions (tests).
func withDiscovery(fs ...discoverFunc) PortMapOption {
	return func(m *PortMapper) { m.discover = fs }
}

// NewPortMapper starts a mapper: it looks for a gateway at once and maps
// the ports Map gives it.
func NewPortMapper(opts ...PortMapOption) *PortMapper {
	m := &PortMapper{
		lease: DefaultPortMapLease, discoveryTimeout: DefaultDiscoveryTimeout,
		rediscover: DefaultRediscoverInterval, retry: DefaultPortMapRetry,
		description: DefaultPortMapDescription, log: slog.Default(),
		wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
		want: map[portKey]int{}, mappings: map[portKey]*mapping{},
	}
	for _, o := range opts {
		o(m)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if m.discover == nil {
		m.discover = []discoverFunc{
			func(ctx context.Context) (gateway, error) {
				return discoverUPnP(ctx, multicastAddrs, m.description)
			},
			func(ctx context.Context) (gateway, error) {
				return discoverNATPMP(ctx, defaultGateway)
			},
		}
	}
	go m.run()
	return m
}

// Map asks for port of proto to be forwarded. Calls add up: the mapping
// stays until Unmap has been called as many times.
func (m *PortMapper) Map(proto network.NATTransportProtocol, port uint16) {
	m.mu.Lock()
	m.want[portKey{proto, port}]++
	m.mu.Unlock()
	m.kick()
}

// Unmap undoes one Map; the last one removes the mapping.
func (m *PortMapper) Unmap(proto network.NATTransportProtocol, port uint16) {
	k := portKey{proto, port}
	m.mu.Lock()
	if m.want[k] > 0 {
		m.want[k]--
		if m.want[k] == 0 {
			delete(m.want, k)
		}
	}
	m.mu.Unlock()
	m.kick()
}

func (m *PortMapper) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Mappings returns the ports the gateway forwards now, sorted.
func (m *PortMapper) Mappings() []Mapping {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mappingsLocked()
}

func (m *PortMapper) mappingsLocked() []Mapping {
	var out []Mapping
	if !m.extIP.IsValid() {
		return nil
	}
	for k, mp := range m.mappings {
		if mp.ext != 0 {
			out = append(out, Mapping{Protocol: k.proto, InternalPort: k.port, External: netip.AddrPortFrom(m.extIP, mp.ext)})
		}
	}
	slices.SortFunc(out, func(a, b Mapping) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.InternalPort, b.InternalPort))
	})
	return out
}

// Gateway names the gateway in use ("UPnP WANIPConnection:2 at …",
// "NAT-PMP at …"), "" while there is none.
func (m *PortMapper) Gateway() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gwName
}

// Close removes the mappings (bounded by a few seconds) and stops the
// mapper.
func (m *PortMapper) Close() error {
	m.once.Do(func() {
		close(m.closing)
		m.cancel()
	})
	<-m.done
	m.bg.Wait()
	return nil
}

// run owns the gateway: it discovers, maps, renews, and on Close
// removes.
func (m *PortMapper) run() {
	defer close(m.done)
	var gw gateway
	var nextDiscovery time.Time // zero: now
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if gw == nil && !time.Now().Before(nextDiscovery) {
			gw = m.discoverOnce()
			if gw == nil {
				nextDiscovery = time.Now().Add(m.rediscover)
			} else {
				m.mu.Lock()
				m.gwName = gw.String()
				m.mu.Unlock()
				m.log.Info("port mapping gateway found", "gateway", gw.String())
			}
		}
		var next time.Time
		if gw != nil {
			var ok bool
			if next, ok = m.sync(gw); !ok {
				gw.close()
				gw = nil
				nextDiscovery = time.Now().Add(m.rediscover)
			}
		}
		if gw == nil {
			next = nextDiscovery
		}
		if m.ctx.Err() == nil {
			t.Reset(time.Until(next))
			select {
			case <-t.C:
				continue
			case <-m.wake:
				continue
			case <-m.closing:
			}
		}
		if gw != nil {
			m.removeAll(gw)
			gw.close()
		}
		return
	}
}

// discoverOnce runs every discovery at once and returns the first
// gateway found, nil when none answered in time or Close was called.
// Later answers are closed.
func (m *PortMapper) discoverOnce() gateway {
	ctx, cancel := context.WithTimeout(m.ctx, m.discoveryTimeout)
	found := make(chan gateway, len(m.discover))
	errs := make(chan error, len(m.discover))
	for _, d := range m.discover {
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			gw, err := d(ctx)
			if err != nil {
				errs <- err
				return
			}
			found <- gw
		}()
	}
	received := 0
	// Whatever answers after the winner (or after Close) is closed once
	// it does.
	defer func() {
		cancel()
		left := len(m.discover) - received
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			for range left {
				select {
				case gw := <-found:
					gw.close()
				case <-errs:
				}
			}
		}()
	}()
	var all []error
	for range m.discover {
		select {
		case gw := <-found:
			received++
			return gw
		case err := <-errs:
			received++
			all = append(all, err)
		case <-m.closing:
			return nil
		}
	}
	m.log.Debug("no port mapping gateway", "err", errors.Join(all...))
	return nil
}

// sync brings the gateway in line with the wanted ports: maps new ones,
// renews due ones, removes unwanted ones. It returns when to come back,
// and false when the gateway stopped answering.
func (m *PortMapper) sync(gw gateway) (time.Time, bool) {
	now := time.Now()
	m.mu.Lock()
	var todo, drop []portKey
	due := !m.extIP.IsValid()
	for k := range m.want {
		mp := m.mappings[k]
		if mp == nil {
			mp = &mapping{}
			m.mappings[k] = mp
		}
		if !mp.renewAt.After(now) {
			todo = append(todo, k)
			due = due || mp.ext != 0
		}
	}
	for k := range m.mappings {
		if m.want[k] == 0 {
			drop = append(drop, k)
		}
	}
	m.mu.Unlock()
	changed := false

	if due {
		ctx, cancel := context.WithTimeout(m.ctx, opTimeout)
		ip, err := gw.externalIP(ctx)
		cancel()
		if err != nil && m.ctx.Err() != nil {
			return time.Time{}, true // closing: removeAll follows
		}
		if err != nil {
			m.log.Debug("port mapping gateway stopped answering", "gateway", gw.String(), "err", err)
			m.mu.Lock()
			clear(m.mappings)
			m.extIP = netip.Addr{}
			m.gwName = ""
			m.mu.Unlock()
			m.changed()
			return time.Time{}, false
		}
		m.mu.Lock()
		if ip != m.extIP {
			m.extIP, changed = ip, true
		}
		m.mu.Unlock()
	}
	slices.SortFunc(todo, func(a, b portKey) int { return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port)) })
	for _, k := range todo {
		if m.ctx.Err() != nil {
			break // closing: removeAll follows
		}
		m.mu.Lock()
		wish := m.mappings[k].ext
		m.mu.Unlock()
		if wish == 0 {
			wish = k.port
		}
		ctx, cancel := context.WithTimeout(m.ctx, opTimeout)
		ext, granted, err := gw.addMapping(ctx, k.proto, k.port, wish, m.lease)
		cancel()
		if err != nil && m.ctx.Err() != nil {
			break // closing: the mapping stays as it was, for removeAll
		}
		m.mu.Lock()
		mp := m.mappings[k]
		if err != nil {
			m.log.Debug("port mapping refused", "protocol", k.proto.String(), "port", k.port, "gateway", gw.String(), "err", err)
			changed = changed || mp.ext != 0
			mp.ext, mp.renewAt = 0, time.Now().Add(m.retry)
			m.mu.Unlock()
			continue
		}
		if granted <= 0 || granted > m.lease {
			granted = m.lease // permanent, or more than asked: renew as asked
		}
		if mp.ext != ext {
			m.log.Info("port mapped", "protocol", k.proto.String(), "internal", k.port,
				"external", netip.AddrPortFrom(m.extIP, ext).String(), "gateway", gw.String())
			changed = true
		}
		mp.ext, mp.renewAt = ext, time.Now().Add(granted/2)
		m.mu.Unlock()
	}
	for _, k := range drop {
		if m.ctx.Err() != nil {
			break // closing: removeAll removes it
		}
		m.mu.Lock()
		mp := m.mappings[k]
		delete(m.mappings, k)
		m.mu.Unlock()
		if mp.ext == 0 {
			continue
		}
		changed = true
		ctx, cancel := context.WithTimeout(m.ctx, opTimeout)
		if err := gw.deleteMapping(ctx, k.proto, k.port, mp.ext); err != nil {
			m.log.Debug("port mapping removal failed", "protocol", k.proto.String(), "port", k.port, "err", err)
		}
		cancel()
	}
	if changed {
		m.changed()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next := now.Add(m.lease)
	for _, mp := range m.mappings {
		if mp.renewAt.Before(next) {
			next = mp.renewAt
		}
	}
	return next, true
}

// removeAll removes every mapping, within closeTimeout in all.
func (m *PortMapper) removeAll(gw gateway) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	m.mu.Lock()
	ms := m.mappingsLocked()
	clear(m.mappings)
	m.mu.Unlock()
	for _, mp := range ms {
		if err := gw.deleteMapping(ctx, mp.Protocol, mp.InternalPort, mp.External.Port()); err != nil {
			m.log.Debug("port mapping removal failed", "protocol", mp.Protocol.String(), "port", mp.InternalPort, "err", err)
		} else {
			m.log.Info("port unmapped", "protocol", mp.Protocol.String(), "internal", mp.InternalPort, "external", mp.External.String())
		}
	}
	if len(ms) > 0 {
		m.changed()
	}
}

func (m *PortMapper) changed() {
	for _, f := range m.onChange {
		f()
	}
}

// protoName is the protocol as UPnP and NAT-PMP spell it.
func protoName(p network.NATTransportProtocol, upper bool) (string, error) {
	switch {
	case p == network.NATTransportTCP && upper:
		return "TCP", nil
	case p == network.NATTransportUDP && upper:
		return "UDP", nil
	case p == network.NATTransportTCP:
		return "tcp", nil
	case p == network.NATTransportUDP:
		return "udp", nil
	}
	return "", fmt.Errorf("nat: unknown protocol %v", p)
}
