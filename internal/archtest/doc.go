// Package archtest holds no code, only tests that enforce p2pnet's
// architecture: the main module never depends on go-libp2p, and packages
// import only the layers below them (see DESIGN.md).
package archtest
