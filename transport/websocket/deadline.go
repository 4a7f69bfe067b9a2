package websocket

import (
	"net"
	"sync"
	"time"
)

// deadlineConn is the socket (TCP, or TLS over TCP) under a WebSocket
// connection, as gorilla/websocket sees it. Two parties set its deadlines:
// our user, through Conn, and the library, which sets and clears them
// around its handshakes and sets the write deadline before every frame
// (to its own, which is zero unless it writes a control frame). Each party
// has its own pair of deadlines, and the socket gets the earlier of the
// two, so that the library clearing its own never clears the user's (an
// upgrader's handshake deadline, yamux's write timeout) and a deadline the
// user sets from another goroutine interrupts a frame being written.
type deadlineConn struct {
	net.Conn

	mu      sync.Mutex // guards the following
	user    [2]time.Time
	lib     [2]time.Time
	applied [2]time.Time // what the socket has
}

// Directions of a deadline, the indexes of deadlineConn's arrays.
const (
	readDir  = 0
	writeDir = 1
)

// SetDeadline sets the library's read and write deadlines.
func (c *deadlineConn) SetDeadline(t time.Time) error {
	if err := c.set(&c.lib, readDir, t); err != nil {
		return err
	}
	return c.set(&c.lib, writeDir, t)
}

// SetReadDeadline sets the library's read deadline.
func (c *deadlineConn) SetReadDeadline(t time.Time) error { return c.set(&c.lib, readDir, t) }

// SetWriteDeadline sets the library's write deadline.
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { return c.set(&c.lib, writeDir, t) }

// setUser sets the user's deadline in direction dir.
func (c *deadlineConn) setUser(dir int, t time.Time) error { return c.set(&c.user, dir, t) }

// set records t as party's deadline in direction dir and gives the socket
// the earlier of the two parties' deadlines (zero meaning none), unless it
// has it already: the library sets the write deadline before every frame,
// almost always to what the socket has.
func (c *deadlineConn) set(party *[2]time.Time, dir int, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	party[dir] = t
	eff := earlier(c.user[dir], c.lib[dir])
	if eff.Equal(c.applied[dir]) {
		return nil
	}
	var err error
	if dir == readDir {
		err = c.Conn.SetReadDeadline(eff)
	} else {
		err = c.Conn.SetWriteDeadline(eff)
	}
	if err != nil {
		return err
	}
	c.applied[dir] = eff
	return nil
}

// earlier returns the earlier of two deadlines, zero meaning none.
func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
