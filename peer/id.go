// Package peer names libp2p peers: the peer ID derived from a public key,
// its text forms, and AddrInfo, a peer with its addresses.
//
// It is a vocabulary package: it imports only crypto of p2pnet's.
package peer

import b58 "github.com/mr-tron/base58/base58"

// ID is a libp2p peer ID: the bytes of a multihash of the peer's public
// key (identity for keys of at most 42 bytes, else sha2-256), held in a
// string so that it can be compared and used as a map key.
type ID string

// String returns the base58btc encoding of the peer ID, as libp2p prints
// it.
func (id ID) String() string {
	return b58.Encode([]byte(id))
}
