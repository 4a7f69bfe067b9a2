// Package testtransport is an in-memory transport.Transport for tests of
// the swarm and what is built on it. Transports made from one Network
// reach each other's listeners by peer ID, whatever address is dialed, so
// a test can give a peer many addresses and decide per address whether a
// dial succeeds, fails with a given error, blocks until released, takes a
// given time (fake time under testing/synctest), reaches another peer, or
// yields a limited connection. Each Transport counts and logs its dials.
//
// Connections need no goroutine. Each stream is a pair of io.Pipes, so
// writes block until the other side reads; half-close and reset work as
// the network.MuxedStream contract says, deadlines are not supported.
//
// It may import network, transport, peer, crypto, go-multiaddr and the
// standard library.
package testtransport
