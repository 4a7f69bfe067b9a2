package tcp

import (
	"fmt"
	"net"
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
	remote := c.RemoteAddr().String()
	if tu.busy(remote) {
		t.Fatal("busy before any connection")
	}
	tc := tu.track(c)
	if _, ok := tc.(*trackedConn); !ok {
		t.Fatalf("track returned %T", tc)
	}
	if !tu.busy(remote) {
		t.Error("not busy while a connection is open")
	}
	tc.Close()
	tc.Close() // a second Close is not counted again
	if got := tu.open[remote]; got != 0 {
		t.Errorf("%d open after Close", got)
	}
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
}

func TestTuplesBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	tu := newTuples()
	tu.now = func() time.Time { return now }
	for i := range maxTupleEntries {
		tu.open[fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)] = 1
	}
	c, _ := pipeTCP(t)
	if tc := tu.track(c); tc != net.Conn(c) {
		t.Fatalf("a full table tracked another address: %T", tc)
	}
	clear(tu.open)

	// A full closed table makes room from expired entries only.
	for i := range maxTupleEntries {
		tu.closed[fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)] = now
	}
	tu.open["192.0.2.1:1"] = 1
	tu.closedConn("192.0.2.1:1")
	if _, ok := tu.closed["192.0.2.1:1"]; ok || len(tu.closed) != maxTupleEntries {
		t.Fatalf("a full table of fresh entries took another: %d entries", len(tu.closed))
	}
	now = now.Add(reuseQuarantine)
	tu.open["192.0.2.1:1"] = 1
	tu.closedConn("192.0.2.1:1")
	if _, ok := tu.closed["192.0.2.1:1"]; !ok || len(tu.closed) != 1 {
		t.Fatalf("expired entries not pruned: %d entries", len(tu.closed))
	}
}
