// Package peer names libp2p peers: the peer ID derived from a public key,
// its text forms, and AddrInfo, a peer with its addresses.
//
// It is a vocabulary package: it imports only crypto of p2pnet's.
package peer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	b58 "github.com/mr-tron/base58/base58"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	ic "github.com/p2pnet/p2pnet/crypto"
)

// MaxInlineKeyLength is the longest encoded public key that a peer ID
// holds verbatim, in an identity multihash; longer keys are hashed with
// sha2-256.
const MaxInlineKeyLength = 42

// libp2pKeyCodec is the multicodec of a peer ID written as a CID.
const libp2pKeyCodec = 0x72

// Errors returned by this package, checkable with errors.Is.
var (
	// ErrEmptyPeerID means the empty peer ID where a peer was needed.
	ErrEmptyPeerID = errors.New("peer: empty peer ID")
	// ErrInvalidPeerID means bytes or text that are not a peer ID: not a
	// multihash, a hash other than identity or sha2-256, a digest of the
	// wrong length, or a CID of another codec.
	ErrInvalidPeerID = errors.New("peer: invalid peer ID")
	// ErrNoPublicKey means a peer ID that hashes its key, so the key
	// cannot be read back from it.
	ErrNoPublicKey = errors.New("peer: public key is not embedded in peer ID")
)

// ID is a libp2p peer ID: the bytes of a multihash of the peer's public
// key (identity for keys of at most 42 bytes, else sha2-256), held in a
// string so that it can be compared and used as a map key.
type ID string

// String returns the base58btc encoding of the peer ID, as libp2p prints
// it.
func (id ID) String() string {
	return b58.Encode([]byte(id))
}

// ShortString returns an abbreviation of the base58 form for logs: its
// first two and last six characters.
func (id ID) ShortString() string {
	s := id.String()
	if len(s) <= 10 {
		return s
	}
	return s[:2] + "*" + s[len(s)-6:]
}

// Size returns the length of the peer ID in bytes.
func (id ID) Size() int {
	return len(id)
}

// IDFromPublicKey returns the peer ID of a public key: the identity
// multihash of its encoded PublicKey protobuf when that is at most 42
// bytes long, else the sha2-256 multihash.
func IDFromPublicKey(pk ic.PubKey) (ID, error) {
	b, err := ic.MarshalPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("peer: encoding public key: %w", err)
	}
	if len(b) <= MaxInlineKeyLength {
		m, _ := mh.Encode(b, mh.IDENTITY)
		return ID(m), nil
	}
	sum := sha256.Sum256(b)
	m, _ := mh.Encode(sum[:], mh.SHA2_256)
	return ID(m), nil
}

// IDFromPrivateKey returns the peer ID of a private key's public key.
func IDFromPrivateKey(sk ic.PrivKey) (ID, error) {
	if sk == nil {
		return "", fmt.Errorf("peer: %w", ic.ErrNilKey)
	}
	return IDFromPublicKey(sk.GetPublic())
}

// IDFromBytes returns the peer ID whose binary form is b, which must be an
// identity multihash of at most 42 bytes of digest or a sha2-256
// multihash.
func IDFromBytes(b []byte) (ID, error) {
	if _, err := decodeMultihash(b); err != nil {
		return "", err
	}
	return ID(b), nil
}

// decodeMultihash checks that b is a peer ID multihash and decodes it.
func decodeMultihash(b []byte) (*mh.DecodedMultihash, error) {
	if len(b) == 0 {
		return nil, ErrEmptyPeerID
	}
	dm, err := mh.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPeerID, err)
	}
	switch dm.Code {
	case mh.IDENTITY:
		if dm.Length > MaxInlineKeyLength {
			return nil, fmt.Errorf("%w: identity digest of %d bytes, at most %d", ErrInvalidPeerID, dm.Length, MaxInlineKeyLength)
		}
	case mh.SHA2_256:
		if dm.Length != sha256.Size {
			return nil, fmt.Errorf("%w: sha2-256 digest of %d bytes", ErrInvalidPeerID, dm.Length)
		}
	default:
		return nil, fmt.Errorf("%w: multihash code %#x is neither identity nor sha2-256", ErrInvalidPeerID, dm.Code)
	}
	return dm, nil
}

// Validate reports whether id is a well-formed peer ID: ErrEmptyPeerID for
// the empty ID, an error wrapping ErrInvalidPeerID for other bad bytes.
func (id ID) Validate() error {
	_, err := decodeMultihash([]byte(id))
	return err
}

// Decode parses a peer ID in either text form of the spec: a base58btc
// multihash (starting with "Qm" or "1"), or a CIDv1 with the libp2p-key
// codec in any multibase (by default base32, starting with "b").
func Decode(s string) (ID, error) {
	if s == "" {
		return "", ErrEmptyPeerID
	}
	if strings.HasPrefix(s, "Qm") || strings.HasPrefix(s, "1") {
		b, err := b58.Decode(s)
		if err != nil {
			return "", fmt.Errorf("%w: base58: %w", ErrInvalidPeerID, err)
		}
		return IDFromBytes(b)
	}
	_, b, err := multibase.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: multibase: %w", ErrInvalidPeerID, err)
	}
	return idFromCID(b)
}

// idFromCID extracts the peer ID from the binary form of a CIDv1:
// version, codec and multihash, each varint-prefixed.
func idFromCID(b []byte) (ID, error) {
	version, n, err := varint.FromUvarint(b)
	if err != nil {
		return "", fmt.Errorf("%w: CID version: %w", ErrInvalidPeerID, err)
	}
	if version != 1 {
		return "", fmt.Errorf("%w: CID version %d, want 1", ErrInvalidPeerID, version)
	}
	b = b[n:]
	codec, n, err := varint.FromUvarint(b)
	if err != nil {
		return "", fmt.Errorf("%w: CID codec: %w", ErrInvalidPeerID, err)
	}
	if codec != libp2pKeyCodec {
		return "", fmt.Errorf("%w: CID codec %#x, want libp2p-key (0x72)", ErrInvalidPeerID, codec)
	}
	return IDFromBytes(b[n:])
}

// CIDString returns the peer ID as a CIDv1 with the libp2p-key codec in
// base32, the spec's newer text form ("bafz..."). It returns "" for an
// invalid ID.
func (id ID) CIDString() string {
	if id.Validate() != nil {
		return ""
	}
	b := make([]byte, 0, 3+len(id))
	b = binary.AppendUvarint(b, 1)
	b = binary.AppendUvarint(b, libp2pKeyCodec)
	b = append(b, id...)
	s, err := multibase.Encode(multibase.Base32, b)
	if err != nil {
		return ""
	}
	return s
}

// ExtractPublicKey returns the public key held in an identity-multihash
// peer ID. A sha2-256 peer ID gives ErrNoPublicKey: the key must then come
// from elsewhere (a handshake, the peerstore).
func (id ID) ExtractPublicKey() (ic.PubKey, error) {
	dm, err := decodeMultihash([]byte(id))
	if err != nil {
		return nil, err
	}
	if dm.Code != mh.IDENTITY {
		return nil, ErrNoPublicKey
	}
	pk, err := ic.UnmarshalPublicKey(dm.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded public key: %w", ErrInvalidPeerID, err)
	}
	// A key whose canonical ID is another one (say, a key embedded in a
	// non-canonical encoding) does not belong to this ID.
	if !id.MatchesPublicKey(pk) {
		return nil, fmt.Errorf("%w: embedded public key does not derive this peer ID", ErrInvalidPeerID)
	}
	return pk, nil
}

// MatchesPublicKey reports whether id is the peer ID of pk.
func (id ID) MatchesPublicKey(pk ic.PubKey) bool {
	other, err := IDFromPublicKey(pk)
	return err == nil && other == id
}

// MatchesPrivateKey reports whether id is the peer ID of sk's public key.
func (id ID) MatchesPrivateKey(sk ic.PrivKey) bool {
	if sk == nil {
		return false
	}
	return id.MatchesPublicKey(sk.GetPublic())
}

// MarshalText returns the base58btc form of the peer ID (empty for the
// empty ID).
func (id ID) MarshalText() ([]byte, error) {
	return []byte(id.String()), nil
}

// UnmarshalText parses either text form accepted by Decode. Empty text
// gives the empty ID, so that the zero value round-trips.
func (id *ID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*id = ""
		return nil
	}
	v, err := Decode(string(text))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// MarshalJSON returns the base58btc form of the peer ID as a JSON string.
func (id ID) MarshalJSON() ([]byte, error) {
	return json.Marshal(id.String())
}

// UnmarshalJSON parses a JSON string holding either text form accepted by
// Decode; the empty string gives the empty ID.
func (id *ID) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPeerID, err)
	}
	return id.UnmarshalText([]byte(s))
}
