package noise

import (
	"crypto/cipher"
	"encoding/binary"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/sec"
)

// Framing of noise-libp2p: every message is preceded by its length as a
// 2-byte big-endian integer, and a transport message is at most 65535
// bytes, its 16-byte authentication tag included.
const (
	lengthPrefixSize = 2
	tagSize          = chacha20poly1305.Overhead
	maxMessageSize   = math.MaxUint16
	maxPlaintextSize = maxMessageSize - tagSize
	maxFrameSize     = lengthPrefixSize + maxMessageSize
)

// Buffer sizes.
const (
	// smallReadSize is the inline read buffer of a Conn. An idle
	// connection waits on it, so it holds no pooled buffer; small
	// messages (a multiplexer's control frames, short requests) never
	// need more. Every idle connection carries it: it is kept small.
	smallReadSize = 1024

	// frameReadSize is the size of the pooled buffers for reading a
	// message that does not fit the inline buffer but is not part of a
	// bulk transfer: one full frame.
	frameReadSize = maxFrameSize

	// bulkMessage: a message at least this large is read into a big
	// buffer, as part of a bulk transfer.
	bulkMessage = 16 << 10

	// maxBatchFrames is the most messages one Write seals into one
	// buffer for one write to the connection: 17 full frames, a little
	// over 1 MiB of plaintext, so that a Write of up to 1 MiB is one
	// system call, without a short write of its own after it.
	maxBatchFrames = 17

	// bigBufSize is the size of the pooled buffers for large writes and
	// for reading large messages: a whole batch, so that a bulk transfer
	// reads about as much per system call as was written with one (and a
	// reader that goes back to its inline buffer after draining the
	// pooled one does so about once per batch).
	bigBufSize = maxBatchFrames * maxFrameSize

	// smallWriteSize is the size of pooled buffers for short writes.
	smallWriteSize = 4096
)

var (
	bigBufPool = sync.Pool{New: func() any {
		b := make([]byte, bigBufSize)
		return &b
	}}
	frameReadPool = sync.Pool{New: func() any {
		b := make([]byte, frameReadSize)
		return &b
	}}
	smallWriteBufPool = sync.Pool{New: func() any {
		b := make([]byte, smallWriteSize)
		return &b
	}}
)

// Conn is a connection secured by noise-libp2p. It is safe for one
// goroutine to read while another writes; reads and writes are each
// serialised.
//
// Read decrypts into the caller's buffer when a whole message fits and
// keeps the rest of a message for later reads. Write cuts data into
// messages of at most 65519 bytes of plaintext and sends up to seventeen
// of them (a little over 1 MiB) per write to the underlying connection.
//
// A message that fails authentication ends reading for good: every later
// Read returns the same error. A failed write ends writing for good, since
// the remote can no longer decrypt what follows.
type Conn struct {
	raw       net.Conn
	localID   peer.ID
	remoteID  peer.ID
	remoteKey ic.PubKey
	state     network.ConnectionState

	rmu      sync.Mutex // guards the following read state
	dec      cipher.AEAD
	rn       uint64 // nonce of the next message to decrypt
	rnonce   [chacha20poly1305.NonceSize]byte
	rbuf     []byte     // c.small[:] or *c.big
	big      *[]byte    // pooled read buffer while a large message is being read
	bigPool  *sync.Pool // big's pool
	rpos     int        // start of the buffered bytes not yet consumed
	rend     int        // end of the buffered bytes
	pending  []byte     // plaintext decrypted in rbuf, not yet returned
	rerr     error      // sticky error of the read side
	smallBuf [smallReadSize]byte

	wmu    sync.Mutex // guards the following write state
	enc    cipher.AEAD
	wn     uint64 // nonce of the next message to encrypt
	wnonce [chacha20poly1305.NonceSize]byte
	werr   error // sticky error of the write side
}

var _ sec.Conn = (*Conn)(nil)

// newConn returns a Conn over raw without keys, ready for the handshake to
// read its messages through the Conn's buffer.
func newConn(raw net.Conn, localID peer.ID) *Conn {
	c := &Conn{raw: raw, localID: localID}
	c.rbuf = c.smallBuf[:]
	return c
}

// setKeys installs the transport keys of the completed handshake.
func (c *Conn) setKeys(encKey, decKey [32]byte) error {
	enc, err := chacha20poly1305.New(encKey[:])
	if err != nil {
		return err
	}
	dec, err := chacha20poly1305.New(decKey[:])
	if err != nil {
		return err
	}
	c.enc, c.dec = enc, dec
	return nil
}

// Read reads plaintext into p. It blocks only until one message arrives,
// then returns what that message and any further complete messages
// already received give, as far as p holds them.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()

	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.releaseBufLocked()
		return n, nil
	}
	if c.rerr != nil {
		return 0, c.rerr
	}
	if len(p) == 0 {
		return 0, nil
	}

	n := 0
	for n < len(p) {
		if c.rend-c.rpos < lengthPrefixSize {
			if n > 0 {
				break
			}
			if err := c.fillLocked(lengthPrefixSize); err != nil {
				return 0, err
			}
		}
		size := int(binary.BigEndian.Uint16(c.rbuf[c.rpos:]))
		if size < tagSize {
			c.rerr = ErrShortFrame
			break
		}
		plainSize := size - tagSize
		if n > 0 && (plainSize > len(p)-n || c.rend-c.rpos < lengthPrefixSize+size) {
			// Return what we have rather than wait or split a message.
			break
		}
		if err := c.fillLocked(lengthPrefixSize + size); err != nil {
			return 0, err // n == 0: only the first message may block
		}
		nonce, err := c.readNonceLocked()
		if err != nil {
			c.rerr = err
			break
		}
		msg := c.rbuf[c.rpos+lengthPrefixSize : c.rpos+lengthPrefixSize+size]
		c.rpos += lengthPrefixSize + size

		if plainSize <= len(p)-n {
			if _, err := c.dec.Open(p[n:n], nonce, msg, nil); err != nil {
				c.rerr = ErrDecrypt
				break
			}
			n += plainSize
			continue
		}
		// n == 0 and the message does not fit: decrypt in place and keep
		// what p cannot take.
		plain, err := c.dec.Open(msg[:0], nonce, msg, nil)
		if err != nil {
			c.rerr = ErrDecrypt
			break
		}
		n = copy(p, plain)
		c.pending = plain[n:]
		return n, nil
	}
	c.releaseBufLocked()
	if n == 0 && c.rerr != nil {
		return 0, c.rerr
	}
	return n, nil
}

// readNonceLocked returns the nonce of the next message to decrypt and
// advances the counter. Noise nonces for ChaChaPoly are 4 zero bytes and
// the 64-bit little-endian counter; 2^64-1 is reserved.
func (c *Conn) readNonceLocked() ([]byte, error) {
	if c.rn == math.MaxUint64 {
		return nil, ErrNonceExhausted
	}
	binary.LittleEndian.PutUint64(c.rnonce[4:], c.rn)
	c.rn++
	return c.rnonce[:], nil
}

// fillLocked reads from the underlying connection until at least need
// bytes are buffered, switching to a pooled buffer when the inline one is
// too small. Buffered bytes survive errors, so a read that times out can
// be retried.
func (c *Conn) fillLocked(need int) error {
	for c.rend-c.rpos < need {
		if c.rpos+need > len(c.rbuf) {
			c.makeRoomLocked(need)
		}
		n, err := c.raw.Read(c.rbuf[c.rend:])
		c.rend += n
		if err != nil {
			if c.rend-c.rpos >= need {
				return nil
			}
			if err == io.EOF && c.rend > c.rpos {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// makeRoomLocked moves the buffered bytes to the start of a buffer that
// can hold need bytes. It is called only when no pending plaintext lives
// in the buffer.
func (c *Conn) makeRoomLocked(need int) {
	if need > len(c.rbuf) {
		pool := &frameReadPool
		if need >= bulkMessage {
			pool = &bigBufPool
		}
		// Only the inline buffer can be too small: a pooled one holds
		// a whole frame.
		bp := pool.Get().(*[]byte)
		c.rend = copy(*bp, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
		c.rbuf, c.big, c.bigPool = *bp, bp, pool
		return
	}
	c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
	c.rpos = 0
}

// releaseBufLocked rewinds the read buffer when everything in it has been
// consumed, and returns a pooled buffer to its pool so that an idle
// connection holds none.
func (c *Conn) releaseBufLocked() {
	if len(c.pending) > 0 || c.rpos != c.rend {
		return
	}
	c.rpos, c.rend = 0, 0
	if c.big != nil {
		c.bigPool.Put(c.big)
		c.big, c.bigPool = nil, nil
		c.rbuf = c.smallBuf[:]
	}
}

// Write encrypts p and sends it as one or more messages. It returns
// len(p) unless the underlying connection fails; the count is then the
// plaintext of the batches sent before the failing one.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()

	if c.werr != nil {
		return 0, c.werr
	}
	if len(p) == 0 {
		return 0, nil
	}
	frames := (len(p) + maxPlaintextSize - 1) / maxPlaintextSize
	if uint64(frames) > math.MaxUint64-c.wn {
		c.werr = ErrNonceExhausted
		return 0, c.werr
	}

	pool := &bigBufPool
	if len(p)+frames*(lengthPrefixSize+tagSize) <= smallWriteSize {
		pool = &smallWriteBufPool
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp

	// Batches of maxBatchFrames messages, the last one holding the
	// rest: a Write of up to about 1 MiB is a single write, with no
	// short write after it.
	written := 0
	for written < len(p) {
		batchStart := written
		out := buf[:0]
		for range maxBatchFrames {
			if written == len(p) {
				break
			}
			chunk := min(len(p)-written, maxPlaintextSize)
			start := len(out)
			binary.LittleEndian.PutUint64(c.wnonce[4:], c.wn)
			c.wn++
			out = c.enc.Seal(out[:start+lengthPrefixSize], c.wnonce[:], p[written:written+chunk], nil)
			binary.BigEndian.PutUint16(out[start:], uint16(chunk+tagSize))
			written += chunk
		}
		if _, err := c.raw.Write(out); err != nil {
			c.werr = err
			return batchStart, err
		}
	}
	return written, nil
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.raw.Close() }

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// SetDeadline sets the underlying connection's read and write deadlines.
// A write that times out ends writing for good, as any failed write does.
func (c *Conn) SetDeadline(t time.Time) error { return c.raw.SetDeadline(t) }

// SetReadDeadline sets the underlying connection's read deadline. A read
// that times out may be retried: bytes received are kept.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.localID }

// RemotePeer returns the peer ID the remote proved in the handshake.
func (c *Conn) RemotePeer() peer.ID { return c.remoteID }

// RemotePublicKey returns the identity key the remote proved it holds.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.remoteKey }

// ConnState returns Security "/noise" and, when the handshake agreed on a
// multiplexer, that multiplexer with UsedEarlyMuxerNegotiation set. The
// Transport field is left empty for the upgrader, which knows the
// transport, to fill in.
func (c *Conn) ConnState() network.ConnectionState { return c.state }
