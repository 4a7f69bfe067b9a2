// Package interop proves p2pnet on the wire against go-libp2p v0.51.0:
// each test runs a go-libp2p host and p2pnet's stack in one process, on
// loopback, and makes them talk in both directions.
//
// js-libp2p 3.x nodes run too: under Node.js (js/, see js_test.go) and in
// a page in headless Chromium (browser/, see browser_test.go), which
// reaches a p2pnet node the way browsers can.
//
// It is a module of its own so that the main module never depends on
// go-libp2p.
package interop
