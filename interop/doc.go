// Package interop proves p2pnet on the wire against go-libp2p v0.51.0:
// each test runs a go-libp2p host and p2pnet's stack in one process, on
// loopback, and makes them talk in both directions.
//
// It is a module of its own so that the main module never depends on
// go-libp2p.
package interop
