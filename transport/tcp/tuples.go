package tcp

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// A dial leaves from our listen port (see dialRaw), so every connection
// to a peer's listen address has the same four-tuple. Right after one
// closes, the next dial's SYN can meet the old connection's TIME_WAIT or
// LAST_ACK at either end and be dropped; the dial then waits for TCP's
// one-second SYN retransmission (seen on loopback in about one reconnect
// of 200, and 10–20 ms lost in about one of 40). A dial to an address
// that shared a four-tuple with one of our listen ports less than
// reuseQuarantine ago therefore leaves from an ephemeral port. (While
// such a connection is open, the kernel refuses the four-tuple at once
// and dialRaw falls back by itself.)
const reuseQuarantine = 60 * time.Second // Linux's TIME_WAIT

// maxTupleEntries bounds the addresses remembered: inbound connections
// from many addresses cannot grow the table without limit. When it is
// full of fresh entries, a closing connection is not remembered (a later
// dial to its address may then stall as before).
const maxTupleEntries = 4096

// tuples remembers when connections whose local end is one of our listen
// ports (the ones we accepted and the ones we dialed from a listen port)
// closed, by remote address.
type tuples struct {
	now func() time.Time // time.Now; replaced in tests

	mu     sync.Mutex                   // guards closed
	closed map[netip.AddrPort]time.Time // remote address → when the last one closed
}

func newTuples() *tuples {
	return &tuples{now: time.Now, closed: map[netip.AddrPort]time.Time{}}
}

// busy reports whether a dial to remote must not leave from a listen
// port: a connection on that four-tuple closed lately.
func (t *tuples) busy(remote netip.AddrPort) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.closed[remote]
	if !ok {
		return false
	}
	if t.now().Sub(at) < reuseQuarantine {
		return true
	}
	delete(t.closed, remote)
	return false
}

// track wraps c, a connection from one of our listen ports, so that its
// close is noted. c is returned as is when it is not a *net.TCPConn.
func (t *tuples) track(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	ta, ok := tc.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return c
	}
	return &trackedConn{TCPConn: tc, tuples: t, remote: canonical(ta.AddrPort())}
}

// canonical is a as the map keys it: an IPv4-mapped IPv6 address as
// IPv4, no zone kept apart.
func canonical(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// closedConn notes that a tracked connection to remote closed.
func (t *tuples) closedConn(remote netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if _, ok := t.closed[remote]; !ok && len(t.closed) >= maxTupleEntries {
		for r, at := range t.closed {
			if now.Sub(at) >= reuseQuarantine {
				delete(t.closed, r)
			}
		}
		if len(t.closed) >= maxTupleEntries {
			return
		}
	}
	t.closed[remote] = now
}

// trackedConn is a TCP connection whose Close is noted in tuples. The
// embedded *net.TCPConn keeps its other methods (CloseWrite, SetLinger,
// ReadFrom, …).
type trackedConn struct {
	*net.TCPConn
	tuples *tuples
	remote netip.AddrPort
	once   sync.Once
}

// Close closes the connection.
func (c *trackedConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(func() { c.tuples.closedConn(c.remote) })
	return err
}

// trackingListener is a listener whose connections are tracked.
type trackingListener struct {
	net.Listener
	tuples *tuples
}

// Accept accepts a connection.
func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.tuples.track(c), nil
}
