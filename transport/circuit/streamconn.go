package circuit

import (
	"net"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// streamConn is a circuit stream seen as a net.Conn, for the upgrader.
type streamConn struct {
	network.Stream
	laddr, raddr circuitAddr
}

func newStreamConn(s network.Stream, relayID peer.ID) *streamConn {
	a := circuitMultiaddr(relayID)
	return &streamConn{Stream: s, laddr: circuitAddr{a}, raddr: circuitAddr{a}}
}

// Close closes the stream for both directions; the relay then ends the
// circuit.
func (c *streamConn) Close() error { return c.Stream.Close() }

// LocalAddr returns /p2p/RELAY/p2p-circuit.
func (c *streamConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns /p2p/RELAY/p2p-circuit.
func (c *streamConn) RemoteAddr() net.Addr { return c.raddr }

// circuitAddr is a circuit multiaddr as a net.Addr.
type circuitAddr struct{ a ma.Multiaddr }

func (a circuitAddr) Network() string { return "libp2p-circuit-relay" }
func (a circuitAddr) String() string  { return a.a.String() }
