package nat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/network"
)

var (
	tcp = network.NATTransportTCP
	udp = network.NATTransportUDP
)

// call is one request a fakeGateway received.
type call struct {
	at       time.Time
	op       string // "add", "delete", "ip"
	proto    network.NATTransportProtocol
	internal uint16
	ext      uint16
	lease    time.Duration
}

// fakeGateway records requests and answers as told.
type fakeGateway struct {
	mu       sync.Mutex
	ip       netip.Addr
	taken    map[uint16]bool // external ports another host holds
	grant    time.Duration   // lease granted; 0: as asked
	fail     bool            // every request fails
	calls    []call
	mapped   map[portKey]uint16
	closed   bool
	nextFree uint16
}

func newFakeGateway(ip string) *fakeGateway {
	return &fakeGateway{ip: netip.MustParseAddr(ip), taken: map[uint16]bool{}, mapped: map[portKey]uint16{}, nextFree: 50000}
}

var errFake = errors.New("fake gateway: refused")

func (g *fakeGateway) externalIP(context.Context) (netip.Addr, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, call{at: time.Now(), op: "ip"})
	if g.fail {
		return netip.Addr{}, errFake
	}
	return g.ip, nil
}

func (g *fakeGateway) addMapping(_ context.Context, proto network.NATTransportProtocol, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, call{at: time.Now(), op: "add", proto: proto, internal: internal, ext: ext, lease: lease})
	if g.fail {
		return 0, 0, errFake
	}
	if g.taken[ext] {
		ext = g.nextFree
		g.nextFree++
	}
	g.mapped[portKey{proto, internal}] = ext
	if g.grant != 0 {
		lease = g.grant
	}
	return ext, lease, nil
}

func (g *fakeGateway) deleteMapping(_ context.Context, proto network.NATTransportProtocol, internal, ext uint16) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, call{at: time.Now(), op: "delete", proto: proto, internal: internal, ext: ext})
	delete(g.mapped, portKey{proto, internal})
	return nil
}

func (g *fakeGateway) String() string { return "fake at " + g.ip.String() }

func (g *fakeGateway) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// takeCalls returns the calls since the last takeCalls.
func (g *fakeGateway) takeCalls() []call {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.calls
	g.calls = nil
	return c
}

func (g *fakeGateway) set(f func(*fakeGateway)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// found is a discovery that finds gw at once.
func found(gw gateway) discoverFunc {
	return func(context.Context) (gateway, error) { return gw, nil }
}

// nothing is a discovery that finds nothing when ctx ends.
func nothing(ctx context.Context) (gateway, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func ops(cs []call) []string {
	var out []string
	for _, c := range cs {
		s := c.op
		if c.op != "ip" {
			s = fmt.Sprintf("%s %v %d->%d %v", c.op, c.proto, c.ext, c.internal, c.lease)
		}
		out = append(out, s)
	}
	return out
}

// TestPortMapperMapsRenewsAndRemoves: each port is mapped to the same
// external port with the lease asked, renewed exactly at half the
// lease, and removed on Close; Mappings reports the external address.
func TestPortMapperMapsRenewsAndRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway("203.0.113.7")
		changes := 0
		start := time.Now()
		m := NewPortMapper(withDiscovery(found(gw)), PortMapLogger(quiet), OnPortMapChange(func() { changes++ }))
		m.Map(tcp, 4001)
		m.Map(udp, 4001)
		synctest.Wait()
		want := []Mapping{
			{Protocol: udp, InternalPort: 4001, External: netip.MustParseAddrPort("203.0.113.7:4001")},
			{Protocol: tcp, InternalPort: 4001, External: netip.MustParseAddrPort("203.0.113.7:4001")},
		}
		if got := m.Mappings(); !slices.Equal(got, want) {
			t.Fatalf("Mappings() = %v, want %v", got, want)
		}
		if changes == 0 {
			t.Error("no change reported")
		}
		if m.Gateway() != gw.String() {
			t.Errorf("Gateway() = %q", m.Gateway())
		}
		calls := gw.takeCalls()
		for _, c := range calls {
			if c.op == "add" && (c.lease != DefaultPortMapLease || c.ext != 4001) {
				t.Errorf("first request %+v: want external port 4001 for %v", c, DefaultPortMapLease)
			}
		}

		// Nothing before half the lease; the renewals exactly then.
		time.Sleep(DefaultPortMapLease/2 - time.Nanosecond)
		synctest.Wait()
		if c := gw.takeCalls(); len(c) != 0 {
			t.Fatalf("requests before half the lease: %v", ops(c))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		calls = gw.takeCalls()
		if got := ops(calls); !slices.Equal(got, []string{"ip", "add UDP 4001->4001 1h0m0s", "add TCP 4001->4001 1h0m0s"}) {
			t.Fatalf("renewal: %v", got)
		}
		for _, c := range calls {
			if d := c.at.Sub(start); d != DefaultPortMapLease/2 {
				t.Errorf("renewed after %v, want %v", d, DefaultPortMapLease/2)
			}
		}

		m.Close()
		calls = gw.takeCalls()
		if got := ops(calls); !slices.Equal(got, []string{"delete UDP 4001->4001 0s", "delete TCP 4001->4001 0s"}) {
			t.Fatalf("on Close: %v", got)
		}
		if len(m.Mappings()) != 0 || !gw.closed {
			t.Errorf("after Close: %v, gateway closed %v", m.Mappings(), gw.closed)
		}
	})
}

// TestPortMapperGrantedLease: a gateway that grants less than asked is
// renewed at half of what it granted; a taken port gets another.
func TestPortMapperGrantedLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway("203.0.113.7")
		gw.grant = 10 * time.Minute
		gw.taken[4001] = true
		m := NewPortMapper(withDiscovery(found(gw)), PortMapLogger(quiet))
		defer m.Close()
		m.Map(tcp, 4001)
		synctest.Wait()
		if got := m.Mappings(); len(got) != 1 || got[0].External.Port() != 50000 {
			t.Fatalf("Mappings() = %v, want external port 50000", got)
		}
		gw.takeCalls()
		time.Sleep(5*time.Minute - time.Nanosecond)
		synctest.Wait()
		if c := gw.takeCalls(); len(c) != 0 {
			t.Fatalf("requests before half the granted lease: %v", ops(c))
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		// The renewal asks for the port it has.
		if got := ops(gw.takeCalls()); !slices.Equal(got, []string{"ip", "add TCP 50000->4001 1h0m0s"}) {
			t.Fatalf("renewal: %v", got)
		}
	})
}

// TestPortMapperLaterPorts: a port mapped after discovery is mapped at
// once; the last Unmap removes it; a port asked twice stays until
// unmapped twice.
func TestPortMapperLaterPorts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway("203.0.113.7")
		m := NewPortMapper(withDiscovery(found(gw)), PortMapLogger(quiet))
		defer m.Close()
		synctest.Wait()
		time.Sleep(time.Minute)
		m.Map(udp, 5000)
		m.Map(udp, 5000)
		synctest.Wait()
		if got := ops(gw.takeCalls()); !slices.Equal(got, []string{"ip", "add UDP 5000->5000 1h0m0s"}) {
			t.Fatalf("later port: %v", got)
		}
		m.Unmap(udp, 5000)
		synctest.Wait()
		if c := gw.takeCalls(); len(c) != 0 {
			t.Fatalf("after one of two Unmaps: %v", ops(c))
		}
		m.Unmap(udp, 5000)
		synctest.Wait()
		if got := ops(gw.takeCalls()); !slices.Equal(got, []string{"delete UDP 5000->5000 0s"}) {
			t.Fatalf("after the last Unmap: %v", got)
		}
		if len(m.Mappings()) != 0 {
			t.Fatalf("Mappings() = %v", m.Mappings())
		}
	})
}

// TestPortMapperRediscovers: with no gateway, discovery runs again
// after the interval (each round bounded by the timeout); a gateway that
// stops answering is dropped, its mappings with it, and looked for
// again.
func TestPortMapperRediscovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway("203.0.113.7")
		var mu sync.Mutex
		var rounds []time.Time
		present := false
		discover := func(ctx context.Context) (gateway, error) {
			mu.Lock()
			rounds = append(rounds, time.Now())
			p := present
			mu.Unlock()
			if p {
				return gw, nil
			}
			return nothing(ctx)
		}
		start := time.Now()
		m := NewPortMapper(withDiscovery(discover, nothing), PortMapLogger(quiet))
		defer m.Close()
		m.Map(tcp, 4001)
		synctest.Wait()
		time.Sleep(DefaultDiscoveryTimeout + DefaultRediscoverInterval - time.Nanosecond)
		synctest.Wait()
		mu.Lock()
		if len(rounds) != 1 {
			t.Fatalf("%d rounds before the interval", len(rounds))
		}
		present = true
		mu.Unlock()
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		mu.Lock()
		if len(rounds) != 2 || rounds[1].Sub(start) != DefaultDiscoveryTimeout+DefaultRediscoverInterval {
			t.Fatalf("rounds at %v", rounds)
		}
		mu.Unlock()
		if got := m.Mappings(); len(got) != 1 {
			t.Fatalf("after discovery: %v", got)
		}

		// The gateway goes away: at the renewal it is dropped.
		gw.set(func(g *fakeGateway) { g.fail = true })
		time.Sleep(DefaultPortMapLease / 2)
		synctest.Wait()
		if got := m.Mappings(); len(got) != 0 || m.Gateway() != "" {
			t.Fatalf("after the gateway failed: %v, gateway %q", got, m.Gateway())
		}
		gw.set(func(g *fakeGateway) { g.fail = false })
		time.Sleep(DefaultRediscoverInterval)
		synctest.Wait()
		if got := m.Mappings(); len(got) != 1 {
			t.Fatalf("after rediscovery: %v", got)
		}
	})
}

// TestPortMapperRetriesRefused: a refused mapping is asked again after
// DefaultPortMapRetry, and Mappings never lists it meanwhile.
func TestPortMapperRetriesRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &refusingGateway{fakeGateway: newFakeGateway("203.0.113.7"), refuse: 2}
		m := NewPortMapper(withDiscovery(found(gw)), PortMapLogger(quiet))
		defer m.Close()
		start := time.Now()
		m.Map(tcp, 4001)
		synctest.Wait()
		if len(m.Mappings()) != 0 {
			t.Fatal("a refused mapping is listed")
		}
		time.Sleep(2 * DefaultPortMapRetry)
		synctest.Wait()
		if got := m.Mappings(); len(got) != 1 {
			t.Fatalf("after two retries: %v", got)
		}
		var adds []time.Duration
		for _, c := range gw.takeCalls() {
			if c.op == "add" {
				adds = append(adds, c.at.Sub(start))
			}
		}
		if !slices.Equal(adds, []time.Duration{0, DefaultPortMapRetry, 2 * DefaultPortMapRetry}) {
			t.Fatalf("requests at %v", adds)
		}
	})
}

// refusingGateway refuses the first refuse mappings.
type refusingGateway struct {
	*fakeGateway
	refuse int
}

func (g *refusingGateway) addMapping(ctx context.Context, proto network.NATTransportProtocol, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	g.mu.Lock()
	if g.refuse > 0 {
		g.refuse--
		g.calls = append(g.calls, call{at: time.Now(), op: "add", proto: proto, internal: internal, ext: ext, lease: lease})
		g.mu.Unlock()
		return 0, 0, errFake
	}
	g.mu.Unlock()
	return g.fakeGateway.addMapping(ctx, proto, internal, ext, lease)
}

// TestPortMapperExternalIPChange: a new external address at a renewal
// changes Mappings and is reported.
func TestPortMapperExternalIPChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway("203.0.113.7")
		changes := 0
		m := NewPortMapper(withDiscovery(found(gw)), PortMapLogger(quiet), OnPortMapChange(func() { changes++ }))
		defer m.Close()
		m.Map(tcp, 4001)
		synctest.Wait()
		before := changes
		gw.set(func(g *fakeGateway) { g.ip = netip.MustParseAddr("203.0.113.99") })
		time.Sleep(DefaultPortMapLease / 2)
		synctest.Wait()
		if got := m.Mappings(); len(got) != 1 || got[0].External.Addr().String() != "203.0.113.99" {
			t.Fatalf("Mappings() = %v", got)
		}
		if changes == before {
			t.Error("the new address was not reported")
		}
	})
}

// TestPortMapperCloseDuringDiscovery: Close returns while discovery is
// still waiting, and the discoveries end.
func TestPortMapperCloseDuringDiscovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewPortMapper(withDiscovery(nothing, nothing), PortMapLogger(quiet))
		m.Map(tcp, 4001)
		synctest.Wait()
		start := time.Now()
		m.Close()
		if d := time.Since(start); d > DefaultDiscoveryTimeout {
			t.Fatalf("Close took %v", d)
		}
	})
}

// TestPortMapperLateAnswerClosed: a gateway found after another won is
// closed.
func TestPortMapperLateAnswerClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first, late := newFakeGateway("203.0.113.7"), newFakeGateway("203.0.113.8")
		slow := func(context.Context) (gateway, error) {
			time.Sleep(time.Second)
			return late, nil
		}
		m := NewPortMapper(withDiscovery(found(first), slow), PortMapLogger(quiet))
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if !late.closed || first.closed {
			t.Fatalf("late closed %v, first closed %v", late.closed, first.closed)
		}
		m.Close()
	})
}

// blockingGateway's renewals wait for their context to end.
type blockingGateway struct {
	*fakeGateway
	block bool
}

func (g *blockingGateway) addMapping(ctx context.Context, proto network.NATTransportProtocol, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	g.mu.Lock()
	block := g.block
	g.mu.Unlock()
	if block {
		<-ctx.Done()
		return 0, 0, ctx.Err()
	}
	return g.fakeGateway.addMapping(ctx, proto, internal, ext, lease)
}

// TestPortMapperCloseDuringRenewal: Close ends a renewal in flight at
// once and still removes the mapping it was renewing.
func TestPortMapperCloseDuringRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &blockingGateway{fakeGateway: newFakeGateway("203.0.113.7")}
		m := NewPortMapper(withDiscovery(found(gw)), PortMapLogger(quiet))
		m.Map(tcp, 4001)
		synctest.Wait()
		gw.set(func(g *fakeGateway) { gw.block = true })
		time.Sleep(DefaultPortMapLease / 2)
		synctest.Wait() // the renewal waits
		gw.takeCalls()
		start := time.Now()
		m.Close()
		if d := time.Since(start); d != 0 {
			t.Errorf("Close took %v", d)
		}
		if got := ops(gw.takeCalls()); !slices.Equal(got, []string{"delete TCP 4001->4001 0s"}) {
			t.Fatalf("on Close: %v", got)
		}
	})
}
