package tcp_test

import (
	"net"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/netns"

	ma "github.com/multiformats/go-multiaddr"
)

// TestListenFamilies: an unspecified IPv4 listen address opens an
// IPv4-only socket announced as /ip4/0.0.0.0, and an unspecified IPv6 one
// an IPv6-only socket, so each listener takes exactly its family.
//
// It binds wildcard addresses, so it runs in a network namespace of its
// own.
func TestListenFamilies(t *testing.T) {
	n := newNode(t)
	netns.Run(t, func() { listenFamilies(t, n) })
}

func listenFamilies(t *testing.T, n *node) {
	l4 := listen(t, n, "/ip4/0.0.0.0/tcp/0")
	if got := l4.Multiaddr(); got[0].Code() != ma.P_IP4 || got[0].Value() != "0.0.0.0" {
		t.Errorf("IPv4 listener announces %s; want /ip4/0.0.0.0/tcp/N", got)
	}
	port, _ := l4.Multiaddr().ValueForProtocol(ma.P_TCP)

	if !hasIPv6Loopback() {
		t.Error("no IPv6 loopback in the namespace")
		return
	}
	mustDial(t, "tcp4", net.JoinHostPort("127.0.0.1", port))
	// The IPv4 socket must not take IPv6 connections.
	if c, err := net.DialTimeout("tcp6", net.JoinHostPort("::1", port), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("an IPv6 connection reached the /ip4/0.0.0.0 listener on port %s", port)
	}
	// The IPv6 socket must not take IPv4 connections.
	l6 := listen(t, n, "/ip6/::/tcp/0")
	if got := l6.Multiaddr(); got[0].Code() != ma.P_IP6 || got[0].Value() != "::" {
		t.Errorf("IPv6 listener announces %s; want /ip6/::/tcp/N", got)
	}
	port6, _ := l6.Multiaddr().ValueForProtocol(ma.P_TCP)
	mustDial(t, "tcp6", net.JoinHostPort("::1", port6))
	if c, err := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", port6), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("an IPv4 connection reached the /ip6/:: listener on port %s", port6)
	}
}

func mustDial(t *testing.T, network, addr string) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Errorf("dialing the listener at %s: %v", addr, err)
		return
	}
	c.Close()
}

func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}
