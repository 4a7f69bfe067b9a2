package tls

import (
	stdtls "crypto/tls"
	"net"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
)

// Conn is a connection secured by libp2p TLS. Like the crypto/tls.Conn it
// wraps, it is safe for concurrent use.
type Conn struct {
	tls        *stdtls.Conn
	raw        *recordConn // under tls: groups a Write's records into one socket write
	localPeer  peer.ID
	remotePeer peer.ID
	remoteKey  ic.PubKey
	muxer      protocol.ID // agreed through ALPN; "" when none was
}

var _ sec.Conn = (*Conn)(nil)

// Read reads decrypted application data.
func (c *Conn) Read(b []byte) (int, error) { return c.tls.Read(b) }

// Write encrypts and writes b. Its records go to the socket together, in
// writes of up to 256 KiB, rather than one system call per 16 KiB record.
func (c *Conn) Write(b []byte) (int, error) {
	c.raw.begin()
	n, err := c.tls.Write(b)
	if ferr := c.raw.end(); err == nil && ferr != nil {
		// crypto/tls handed the records over; writing them failed.
		return 0, ferr
	}
	return n, err
}

// Close sends a TLS close_notify alert, giving it at most five seconds,
// and closes the underlying connection.
func (c *Conn) Close() error { return c.tls.Close() }

// CloseWrite sends a TLS close_notify alert, after which the peer reads
// io.EOF, and then half-closes the underlying connection if it can (as
// *net.TCPConn can). Reading goes on until the peer closes.
func (c *Conn) CloseWrite() error {
	if err := c.tls.CloseWrite(); err != nil {
		return err
	}
	if cw, ok := c.tls.NetConn().(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.tls.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.tls.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.tls.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tls.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline. A Write that times out leaves
// the TLS stream broken: later writes fail too.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tls.SetWriteDeadline(t) }

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.localPeer }

// RemotePeer returns the peer ID the remote proved.
func (c *Conn) RemotePeer() peer.ID { return c.remotePeer }

// RemotePublicKey returns the host key the remote proved it holds.
func (c *Conn) RemotePublicKey() ic.PubKey { return c.remoteKey }

// ConnState reports the security protocol and the multiplexer agreed in
// the handshake, if any. Transport is left for the upgrader to fill in.
func (c *Conn) ConnState() network.ConnectionState {
	return network.ConnectionState{
		StreamMultiplexer:         c.muxer,
		Security:                  ID,
		UsedEarlyMuxerNegotiation: c.muxer != "",
	}
}
