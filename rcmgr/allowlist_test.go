package rcmgr

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/network"

	ma "github.com/multiformats/go-multiaddr"
)

// fullSystem returns limits whose system scope takes one inbound
// connection, and whose allowlisted scopes take anything.
func fullSystem() Limits {
	l := UnlimitedLimits()
	l.System.ConnsInbound = 1
	return l
}

func allowStat(m *Manager) network.ScopeStat {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.allowSystem.use
}

func TestAllowlistAdmitsWhatLimitsRefuse(t *testing.T) {
	m := newTestManager(t, fullSystem(), WithAllowlist(addr(t, "/ip4/10.0.0.0/ipcidr/8")))
	c1, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/192.0.2.1/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Done()
	if _, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/192.0.2.2/tcp/1")); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("second conn from a normal address: %v, want a refusal", err)
	}
	c2, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/10.1.2.3/tcp/1"))
	if err != nil {
		t.Fatalf("conn from an allowlisted address: %v", err)
	}
	one := network.ScopeStat{NumConnsInbound: 1, NumFD: 1}
	want(t, "allowlisted system", allowStat(m), one)
	want(t, "system", sysStat(t, m), one)
	if err := c2.SetPeer(testPeer(t, 1)); err != nil {
		t.Fatal(err)
	}
	want(t, "allowlisted system after SetPeer", allowStat(m), one)
	want(t, "peer", c2.PeerScope().Stat(), one)
	checkInvariants(t, m)
	c2.Done()
	c1.Done()
	checkEmpty(t, m)
}

func TestAllowlistPeerEntryCheckedAtSetPeer(t *testing.T) {
	good, bad := testPeer(t, 1), testPeer(t, 2)
	entry := addr(t, "/ip4/10.0.0.5/p2p/"+good.String())
	m := newTestManager(t, fullSystem(), WithAllowlist(entry))
	c1, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/192.0.2.1/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}

	c2, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/10.0.0.5/tcp/1"))
	if err != nil {
		t.Fatalf("conn from the allowlisted address: %v", err)
	}
	// The wrong peer must fit the normal limits, which are full.
	err = c2.SetPeer(bad)
	if !errors.Is(err, network.ErrResourceLimitExceeded) || !strings.Contains(err.Error(), "allowlist") {
		t.Fatalf("SetPeer with the wrong peer: %v, want a refusal naming the allowlist", err)
	}
	if c2.PeerScope() != nil {
		t.Fatal("refused SetPeer set the peer")
	}
	one := network.ScopeStat{NumConnsInbound: 1}
	want(t, "allowlisted system", allowStat(m), one)
	checkInvariants(t, m)
	// The right peer stays under the allowlisted system scope.
	if err := c2.SetPeer(good); err != nil {
		t.Fatalf("SetPeer with the allowlisted peer: %v", err)
	}
	want(t, "allowlisted system", allowStat(m), one)
	want(t, "system", sysStat(t, m), one)
	checkInvariants(t, m)
	c2.Done()

	// With room in the normal scopes, the wrong peer moves there.
	c1.Done()
	c3, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/192.0.2.1/tcp/1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Done()
	c4, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/10.0.0.5/tcp/2"))
	if err != nil {
		t.Fatal(err)
	}
	c3.Done()
	if err := c4.SetPeer(bad); err != nil {
		t.Fatalf("SetPeer with the wrong peer and room in the system scope: %v", err)
	}
	want(t, "allowlisted system", allowStat(m), network.ScopeStat{})
	want(t, "system", sysStat(t, m), one)
	checkInvariants(t, m)
	c4.Done()
	checkEmpty(t, m)
}

func TestAllowlistEntries(t *testing.T) {
	p := testPeer(t, 1)
	for _, s := range []string{
		"/ip4/1.2.3.4",
		"/ip4/1.2.3.0/ipcidr/24",
		"/ip6/2001:db8::/ipcidr/32",
		"/ip6/::1",
		"/ip4/1.2.3.4/p2p/" + p.String(),
		"/ip4/1.2.0.0/ipcidr/16/p2p/" + p.String(),
	} {
		if _, err := New(UnlimitedLimits(), WithAllowlist(addr(t, s))); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{
		"/dns4/example.com",
		"/ip4/1.2.3.4/tcp/1",
		"/ip4/1.2.3.4/ipcidr/33",
		"/p2p/" + p.String(),
		"/ip4/1.2.3.4/p2p/" + p.String() + "/p2p-circuit",
	} {
		if _, err := New(UnlimitedLimits(), WithAllowlist(addr(t, s))); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	e, err := parseAllowEntry(addr(t, "/ip4/1.2.3.99/ipcidr/24/p2p/"+p.String()))
	if err != nil {
		t.Fatal(err)
	}
	if e.prefix.String() != "1.2.3.0/24" || e.peer != p {
		t.Fatalf("entry %v %s", e.prefix, e.peer)
	}
}

func TestConnLimitPerIP(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits(), WithLoopbackExempt(false))
	var conns []network.ConnManagementScope
	defer func() {
		for _, c := range conns {
			c.Done()
		}
	}()
	for i := range 8 {
		c, err := m.OpenConnection(network.DirInbound, true, addr(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+i)))
		if err != nil {
			t.Fatalf("conn %d: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	_, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/127.0.0.1/tcp/2000"))
	var le *LimitError
	if !errors.As(err, &le) || le.Kind != KindIP || !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("9th conn from one IP: %v, want a per-IP refusal", err)
	}
	if want := "ip 127.0.0.1/32: cannot reserve inbound connection: 8 of 8 in use (limit from ConnLimitsPerIP)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	// Other addresses, outbound connections and relayed connections are
	// not affected.
	for _, c := range []struct {
		dir network.Direction
		a   string
	}{
		{network.DirInbound, "/ip4/127.0.0.2/tcp/1"},
		{network.DirOutbound, "/ip4/127.0.0.1/tcp/1"},
		{network.DirInbound, "/ip4/127.0.0.1/tcp/1/p2p/" + testPeer(t, 1).String() + "/p2p-circuit"},
	} {
		sc, err := m.OpenConnection(c.dir, false, addr(t, c.a))
		if err != nil {
			t.Fatalf("%s %s: %v", c.dir, c.a, err)
		}
		conns = append(conns, sc)
	}
	// A slot frees when a connection ends.
	conns[0].Done()
	c, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/127.0.0.1/tcp/2000"))
	if err != nil {
		t.Fatalf("after one conn ended: %v", err)
	}
	conns = append(conns, c)
	checkInvariants(t, m)
}

func TestConnLimitPerIPLoopbackExempt(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits())
	for i := range 20 {
		for _, a := range []string{"/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/1"} {
			c, err := m.OpenConnection(network.DirInbound, true, addr(t, a))
			if err != nil {
				t.Fatalf("conn %d from %s: %v", i+1, a, err)
			}
			defer c.Done()
		}
	}
	// A public address is limited by default.
	for i := range 9 {
		c, err := m.OpenConnection(network.DirInbound, true, addr(t, "/ip4/192.0.2.1/tcp/1"))
		if i == 8 {
			if !errors.Is(err, network.ErrResourceLimitExceeded) {
				t.Fatalf("9th conn from a public IP: %v", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Done()
	}
}

func TestConnLimitPerIPv6Subnets(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits(), WithConnLimitsPerIP(nil, []SubnetLimit{{PrefixLen: 64, Conns: 2}, {PrefixLen: 48, Conns: 3}}))
	open := func(a string) error {
		c, err := m.OpenConnection(network.DirInbound, false, addr(t, a))
		if err == nil {
			t.Cleanup(c.Done)
		}
		return err
	}
	for _, a := range []string{"/ip6/2001:db8:1:1::1/udp/1/quic-v1", "/ip6/2001:db8:1:1::2/udp/1/quic-v1"} {
		if err := open(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := open("/ip6/2001:db8:1:1::3/udp/1/quic-v1"); err == nil || !strings.HasPrefix(err.Error(), "ip 2001:db8:1:1::/64:") {
		t.Fatalf("third conn from one /64: %v", err)
	}
	if err := open("/ip6/2001:db8:1:2::1/udp/1/quic-v1"); err != nil {
		t.Fatalf("conn from another /64: %v", err)
	}
	if err := open("/ip6/2001:db8:1:3::1/udp/1/quic-v1"); err == nil || !strings.HasPrefix(err.Error(), "ip 2001:db8:1::/48:") {
		t.Fatalf("fourth conn from one /48: %v", err)
	}
	// IPv4 keeps its default.
	if err := open("/ip4/192.0.2.1/tcp/1"); err != nil {
		t.Fatal(err)
	}
}

func TestAllowlistExemptFromPerIPLimit(t *testing.T) {
	m := newTestManager(t, UnlimitedLimits(), WithLoopbackExempt(false), WithAllowlist(addr(t, "/ip4/127.0.0.1")))
	for i := range 20 {
		c, err := m.OpenConnection(network.DirInbound, false, addr(t, "/ip4/127.0.0.1/tcp/1"))
		if err != nil {
			t.Fatalf("conn %d: %v", i+1, err)
		}
		defer c.Done()
	}
}

func TestBadConnLimitsPerIP(t *testing.T) {
	for _, c := range []struct{ v4, v6 []SubnetLimit }{
		{v4: []SubnetLimit{{PrefixLen: 33, Conns: 1}}},
		{v6: []SubnetLimit{{PrefixLen: 129, Conns: 1}}},
		{v4: []SubnetLimit{{PrefixLen: 32, Conns: -1}}},
		{v4: []SubnetLimit{{PrefixLen: 32, Conns: 1}, {PrefixLen: 32, Conns: 2}}},
	} {
		if _, err := New(UnlimitedLimits(), WithConnLimitsPerIP(c.v4, c.v6)); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("%+v: %v, want ErrInvalidLimits", c, err)
		}
	}
}

func TestEndpointIP(t *testing.T) {
	for s, want := range map[string]string{
		"/ip4/1.2.3.4/tcp/1":             "1.2.3.4",
		"/ip6/::ffff:1.2.3.4/tcp/1":      "1.2.3.4",
		"/ip6zone/eth0/ip6/fe80::1":      "fe80::1",
		"/ip6/2001:db8::1/udp/1/quic":    "2001:db8::1",
		"/dns4/example.com/tcp/1":        "",
		"/ip4/1.2.3.4/tcp/1/p2p-circuit": "",
	} {
		ip, ok := endpointIP(addr(t, s))
		got := ""
		if ok {
			got = ip.String()
		}
		if got != want {
			t.Errorf("endpointIP(%s) = %q, want %q", s, got, want)
		}
	}
	if _, ok := endpointIP(ma.Multiaddr(nil)); ok {
		t.Error("endpointIP(nil) found an IP")
	}
}
