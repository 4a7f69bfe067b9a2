package tls

import (
	"net"
	"sync"
	"sync/atomic"
)

// recordConn sits between crypto/tls and the raw connection. crypto/tls
// writes each record of at most 16 KiB with its own system call, and
// reads the socket into a buffer about a record large; recordConn groups
// the records of one Conn.Write into one write to the socket, and reads
// the socket up to 256 KiB at a time while a bulk transfer comes in.
//
// Grouping holds back only records of application data written inside a
// Conn.Write (begin/end), never beyond its end, and at most groupLimit
// bytes of them. A short record (an alert such as close_notify, a
// KeyUpdate, a handshake message: all under smallRecord bytes) is written
// at once, after whatever is held back, so records leave in the order
// crypto/tls wrote them and nothing waits once a Write has returned.
type recordConn struct {
	net.Conn

	groups atomic.Int32 // Conn.Writes in progress

	wmu  sync.Mutex // guards the following
	wbuf *[]byte    // records held back; nil when none
	werr error      // the first write error; sticky, as crypto/tls's is

	rmu  sync.Mutex // guards the following
	rbig *[]byte    // pooled read buffer while it holds unread bytes
	rbuf []byte     // unread bytes in *rbig
	rerr error      // an error that came with bytes still unread
	bulk bool       // the last read from the socket filled its buffer
}

const (
	// groupLimit is how many bytes of records are held back at most
	// before they are written.
	groupLimit = 256 << 10
	// smallRecord: records shorter than this are written at once. A
	// full record of application data is 16 KiB and more.
	smallRecord = 1 << 10
	// readBufSize is the size of the pooled read buffer.
	readBufSize = 256 << 10
)

var (
	// Room for groupLimit and one more full record (16 KiB of data, a
	// 5-byte header, the content type and a 16-byte tag, with room to
	// spare), so a buffer is never regrown.
	groupPool = sync.Pool{New: func() any {
		b := make([]byte, 0, groupLimit+17<<10)
		return &b
	}}
	readPool = sync.Pool{New: func() any {
		b := make([]byte, readBufSize)
		return &b
	}}
)

func newRecordConn(c net.Conn) *recordConn { return &recordConn{Conn: c} }

// begin starts holding back records: a Conn.Write starts.
func (c *recordConn) begin() { c.groups.Add(1) }

// end writes the records held back: a Conn.Write has returned from
// crypto/tls. It returns the write's error, if any.
func (c *recordConn) end() error {
	c.groups.Add(-1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wbuf != nil {
		return c.flushLocked()
	}
	return c.werr
}

// Write takes one record (or one handshake flight) from crypto/tls.
func (c *recordConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.wbuf == nil && (len(p) < smallRecord || c.groups.Load() == 0) {
		n, err := c.Conn.Write(p)
		if err != nil {
			c.werr = err
		}
		return n, err
	}
	if c.wbuf == nil {
		c.wbuf = groupPool.Get().(*[]byte)
	}
	*c.wbuf = append(*c.wbuf, p...)
	if len(p) < smallRecord || c.groups.Load() == 0 || len(*c.wbuf) >= groupLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flushLocked writes the records held back and returns the buffer to its
// pool. The caller holds wmu.
func (c *recordConn) flushLocked() error {
	b := c.wbuf
	c.wbuf = nil
	var err error
	if c.werr == nil {
		if _, err = c.Conn.Write(*b); err != nil {
			c.werr = err
		}
	}
	*b = (*b)[:0]
	groupPool.Put(b)
	return c.werr
}

// Read reads from the socket. After a read that filled its buffer (more
// is probably waiting), it reads into a pooled 256 KiB buffer and serves
// crypto/tls's reads from it; otherwise, as on an idle connection, it
// reads straight into crypto/tls's buffer and holds no pooled one.
func (c *recordConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.rbuf) > 0 {
		n := copy(p, c.rbuf)
		c.rbuf = c.rbuf[n:]
		if len(c.rbuf) == 0 {
			c.releaseLocked()
		}
		return n, nil
	}
	if c.rerr != nil {
		err := c.rerr
		c.rerr = nil
		return 0, err
	}
	if !c.bulk || len(p) >= readBufSize {
		n, err := c.Conn.Read(p)
		c.bulk = n > 0 && n == len(p)
		return n, err
	}
	bp := readPool.Get().(*[]byte)
	n, err := c.Conn.Read(*bp)
	c.bulk = n == len(*bp)
	k := copy(p, (*bp)[:n])
	if k == n {
		readPool.Put(bp)
		return k, err
	}
	// Keep the rest, and the error for after it.
	c.rbig, c.rbuf, c.rerr = bp, (*bp)[k:n], err
	return k, nil
}

// releaseLocked returns the pooled read buffer. The caller holds rmu.
func (c *recordConn) releaseLocked() {
	readPool.Put(c.rbig)
	c.rbig, c.rbuf = nil, nil
}

// CloseWrite half-closes the socket if it can.
func (c *recordConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the socket. Nothing is held back once no Conn.Write is in
// progress (and crypto/tls closes during a Write only to break it off),
// so there is nothing to flush; a Write in progress fails.
func (c *recordConn) Close() error { return c.Conn.Close() }
