package swarm

import (
	"errors"
	"fmt"

	"github.com/p2pnet/p2pnet/network"
)

var (
	// ErrSwarmClosed is returned by operations on a closed swarm.
	ErrSwarmClosed = errors.New("swarm: closed")

	// ErrDialToSelf is returned when asked to dial our own peer ID, and
	// recorded for a peer address that is one of our listen addresses.
	ErrDialToSelf = errors.New("swarm: dial to self")

	// ErrNoTransport is returned for an address that no registered
	// transport can dial or listen on.
	ErrNoTransport = errors.New("swarm: no transport for address")

	// ErrTransportExists is returned by AddTransport when a transport is
	// already registered for one of the new transport's protocols.
	ErrTransportExists = errors.New("swarm: transport already registered for protocol")

	// ErrDialBackoff is recorded for an address that failed recently and
	// is not dialed again until its backoff expires.
	ErrDialBackoff = errors.New("swarm: dial backoff")

	// ErrAllDialsFailed is the cause of a DialError when every address
	// was tried and failed.
	ErrAllDialsFailed = errors.New("swarm: all dials failed")

	// ErrNoGoodAddresses is the cause of a DialError when the peer has
	// addresses but none can be dialed. It wraps network.ErrNoRemoteAddrs.
	ErrNoGoodAddresses = fmt.Errorf("swarm: no good addresses: %w", network.ErrNoRemoteAddrs)

	// ErrWrongPeer is returned when a dialed connection turns out to lead
	// to another peer than the one dialed; the connection is closed.
	ErrWrongPeer = errors.New("swarm: dialed connection leads to the wrong peer")

	// ErrConnClosed is returned when a stream is opened on a closed
	// connection.
	ErrConnClosed = errors.New("swarm: connection closed")

	// ErrNoStreamHandler is the reason an inbound stream is reset when no
	// stream handler is set.
	ErrNoStreamHandler = errors.New("swarm: no stream handler")
)
