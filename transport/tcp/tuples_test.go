package tcp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// pipeTCP returns a connected pair of *net.TCPConn on loopback.
func pipeTCP(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.DialTCP("tcp4", nil, l.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.AcceptTCP()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

func TestTuplesQuarantine(t *testing.T) {
	now := time.Unix(1000, 0)
	tu := newTuples()
	tu.now = func() time.Time { return now }

	c, _ := pipeTCP(t)
	remote := canonical(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	tc := tu.track(c)
	if _, ok := tc.(*trackedConn); !ok {
		t.Fatalf("track returned %T", tc)
	}
	if tu.busy(remote) {
		t.Error("busy while open (the kernel refuses an open four-tuple by itself)")
	}
	tc.Close()
	tc.Close() // a second Close is not noted again
	now = now.Add(reuseQuarantine - time.Second)
	if !tu.busy(remote) {
		t.Error("not busy right after the connection closed")
	}
	now = now.Add(time.Second)
	if tu.busy(remote) {
		t.Error("still busy after the quarantine")
	}
	if len(tu.closed) != 0 {
		t.Errorf("%d closed entries kept after the quarantine", len(tu.closed))
	}
	// An IPv4-mapped address is the IPv4 one.
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.1]:4001")
	tu.closedConn(canonical(mapped))
	if !tu.busy(netip.MustParseAddrPort("192.0.2.1:4001")) {
		t.Error("an IPv4-mapped address is not the same as its IPv4 address")
	}
}

func TestTuplesBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	tu := newTuples()
	tu.now = func() time.Time { return now }
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)}), 1)
	}
	// A full table of fresh entries takes no other.
	for i := range maxTupleEntries {
		tu.closedConn(addr(i))
	}
	extra := netip.MustParseAddrPort("192.0.2.1:1")
	tu.closedConn(extra)
	if _, ok := tu.closed[extra]; ok || len(tu.closed) != maxTupleEntries {
		t.Fatalf("a full table of fresh entries took another: %d entries", len(tu.closed))
	}
	// Expired entries make room.
	now = now.Add(reuseQuarantine)
	tu.closedConn(extra)
	if _, ok := tu.closed[extra]; !ok || len(tu.closed) != 1 {
		t.Fatalf("expired entries not pruned: %d entries", len(tu.closed))
	}
}
