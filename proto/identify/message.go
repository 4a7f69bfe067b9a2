package identify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"google.golang.org/protobuf/encoding/protowire"
)

// Limits on what a peer may send. A message is one varint-length-prefixed
// protobuf; an exchange is every message read from one stream, merged.
const (
	// MaxMessageSize is the largest message accepted, in bytes: 8 KiB, as
	// go-libp2p and js-libp2p accept.
	MaxMessageSize = 8 << 10
	// MaxMessages is how many messages one exchange may hold, so an
	// exchange is at most MaxMessages*MaxMessageSize = 80 KiB.
	MaxMessages = 10
	// MaxListenAddrs is how many listen addresses of a peer are kept from
	// one exchange; later ones are dropped.
	MaxListenAddrs = 100
	// MaxProtocols is how many protocols of a peer are kept from one
	// exchange (the peerstore keeps no more); later ones are dropped.
	MaxProtocols = 256

	// maxOwnMessageSize bounds each message we send. It is 4 KiB because
	// rust-libp2p accepts no more; what does not fit goes into further
	// messages (protocols) or is left out (addresses).
	maxOwnMessageSize = 4 << 10
)

// Errors of decoding. Each decoding error matches ErrMalformed or one of
// the limits' errors under errors.Is.
var (
	// ErrMalformed is the error of bytes that are not an identify
	// message.
	ErrMalformed = errors.New("identify: malformed message")
	// ErrMessageTooLarge is the error of a message larger than
	// MaxMessageSize.
	ErrMessageTooLarge = errors.New("identify: message too large")
	// ErrTooManyMessages is the error of an exchange of more than
	// MaxMessages messages.
	ErrTooManyMessages = errors.New("identify: too many messages")
)

// Field numbers of the Identify protobuf message.
const (
	fieldPublicKey        protowire.Number = 1
	fieldListenAddrs      protowire.Number = 2
	fieldProtocols        protowire.Number = 3
	fieldObservedAddr     protowire.Number = 4
	fieldProtocolVersion  protowire.Number = 5
	fieldAgentVersion     protowire.Number = 6
	fieldSignedPeerRecord protowire.Number = 8
)

// fields records which fields a message carried; in a push, only those
// update what we know of the peer.
type fields uint8

const (
	hasPublicKey fields = 1 << iota
	hasListenAddrs
	hasProtocols
	hasObservedAddr
	hasProtocolVersion
	hasAgentVersion
)

// message is an Identify message:
//
//	message Identify {
//	  optional string protocolVersion = 5;
//	  optional string agentVersion = 6;
//	  optional bytes publicKey = 1;
//	  repeated bytes listenAddrs = 2;
//	  optional bytes observedAddr = 4;
//	  repeated string protocols = 3;
//	  optional bytes signedPeerRecord = 8;
//	}
//
// We never send signedPeerRecord and ignore it when received: we keep no
// certified addresses.
type message struct {
	present         fields
	publicKey       []byte
	listenAddrs     []ma.Multiaddr
	protocols       []protocol.ID
	observedAddr    ma.Multiaddr
	protocolVersion string
	agentVersion    string
}

func (m *message) has(f fields) bool { return m.present&f != 0 }

// merge decodes the protobuf b into m with protobuf's merge semantics:
// optional fields take the last value seen, repeated fields are appended
// to (up to MaxListenAddrs and MaxProtocols). Unknown fields, and known
// fields of an unexpected wire type, are skipped, as protobuf does.
// Listen addresses that are not valid multiaddrs are dropped (and the
// field counts as absent if none is valid); an invalid observed address
// counts as absent. m keeps no reference to b.
func (m *message) merge(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType || num > fieldSignedPeerRecord {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fieldPublicKey:
			m.publicKey = append(m.publicKey[:0], v...)
			m.present |= hasPublicKey
		case fieldListenAddrs:
			if len(m.listenAddrs) < MaxListenAddrs {
				if a, err := ma.NewMultiaddrBytes(v); err == nil && len(a) > 0 {
					m.listenAddrs = append(m.listenAddrs, a)
					m.present |= hasListenAddrs
				}
			}
		case fieldProtocols:
			m.present |= hasProtocols
			if len(m.protocols) < MaxProtocols {
				m.protocols = append(m.protocols, protocol.ID(v))
			}
		case fieldObservedAddr:
			m.observedAddr = nil
			m.present &^= hasObservedAddr
			if a, err := ma.NewMultiaddrBytes(v); err == nil && len(a) > 0 {
				m.observedAddr = a
				m.present |= hasObservedAddr
			}
		case fieldProtocolVersion:
			m.protocolVersion = string(v)
			m.present |= hasProtocolVersion
		case fieldAgentVersion:
			m.agentVersion = string(v)
			m.present |= hasAgentVersion
		}
	}
	return nil
}

// size returns the size of m's protobuf encoding, without its length
// prefix.
func (m *message) size() int {
	n := 0
	if m.has(hasPublicKey) {
		n += bytesFieldSize(len(m.publicKey))
	}
	for _, a := range m.listenAddrs {
		n += bytesFieldSize(len(a.Bytes()))
	}
	for _, p := range m.protocols {
		n += bytesFieldSize(len(p))
	}
	if m.has(hasObservedAddr) {
		n += bytesFieldSize(len(m.observedAddr.Bytes()))
	}
	if m.has(hasProtocolVersion) {
		n += bytesFieldSize(len(m.protocolVersion))
	}
	if m.has(hasAgentVersion) {
		n += bytesFieldSize(len(m.agentVersion))
	}
	return n
}

// bytesFieldSize is the encoded size of a bytes or string field of
// length n whose number is below 16 (one-byte tag).
func bytesFieldSize(n int) int { return 1 + protowire.SizeBytes(n) }

// appendDelimited appends m's protobuf encoding, prefixed with its
// length as a varint, to dst. Fields go in field-number order, as the
// reference protobuf encoder writes them.
func (m *message) appendDelimited(dst []byte) []byte {
	dst = protowire.AppendVarint(dst, uint64(m.size()))
	if m.has(hasPublicKey) {
		dst = appendBytesField(dst, fieldPublicKey, m.publicKey)
	}
	for _, a := range m.listenAddrs {
		dst = appendBytesField(dst, fieldListenAddrs, a.Bytes())
	}
	for _, p := range m.protocols {
		dst = appendStringField(dst, fieldProtocols, string(p))
	}
	if m.has(hasObservedAddr) {
		dst = appendBytesField(dst, fieldObservedAddr, m.observedAddr.Bytes())
	}
	if m.has(hasProtocolVersion) {
		dst = appendStringField(dst, fieldProtocolVersion, m.protocolVersion)
	}
	if m.has(hasAgentVersion) {
		dst = appendStringField(dst, fieldAgentVersion, m.agentVersion)
	}
	return dst
}

func appendBytesField(dst []byte, num protowire.Number, v []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, v)
}

func appendStringField(dst []byte, num protowire.Number, v string) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, v)
}

// appendOwn appends what we send for m: one message if it fits in
// maxOwnMessageSize bytes, else as many as it takes, at most MaxMessages,
// for the receiver to merge. The first message carries the optional
// fields; listen addresses (the most useful first: public, then private,
// then loopback ones) and then protocols fill the messages in turn. What
// does not fit in MaxMessages messages is left out.
func (m *message) appendOwn(dst []byte) []byte {
	cur := *m
	cur.listenAddrs, cur.protocols = nil, nil
	room := maxOwnMessageSize - cur.size()
	msgs := 1
	// fit makes room for a field of n bytes, starting a new message if
	// needed; it reports false if there is none.
	fit := func(n int) bool {
		if n <= room {
			room -= n
			return true
		}
		if msgs == MaxMessages || n > maxOwnMessageSize {
			return false
		}
		dst = cur.appendDelimited(dst)
		cur, room = message{}, maxOwnMessageSize-n
		msgs++
		return true
	}
	addrs := slices.Clone(m.listenAddrs)
	slices.SortStableFunc(addrs, func(a, b ma.Multiaddr) int { return addrRank(b) - addrRank(a) })
	for _, a := range addrs {
		if fit(bytesFieldSize(len(a.Bytes()))) {
			cur.listenAddrs = append(cur.listenAddrs, a)
		}
	}
	for _, p := range m.protocols {
		if fit(bytesFieldSize(len(p))) {
			cur.protocols = append(cur.protocols, p)
		}
	}
	return cur.appendDelimited(dst)
}

// addrRank says how useful an address is to others: public 2, private
// (and anything else) 1, loopback 0.
func addrRank(a ma.Multiaddr) int {
	switch {
	case manet.IsPublicAddr(a):
		return 2
	case manet.IsIPLoopback(a):
		return 0
	}
	return 1
}

// readBufSize fits a largest message and its length prefix.
const readBufSize = MaxMessageSize + binary.MaxVarintLen64

// readBufPool holds *[]byte of readBufSize bytes.
var readBufPool = sync.Pool{New: func() any {
	b := make([]byte, readBufSize)
	return &b
}}

// readMessages reads length-prefixed messages from r until EOF, merging
// each into m. It fails on a malformed or oversized message, on more than
// MaxMessages messages, and on a stream that ends inside a message or
// before the first one.
func readMessages(r io.Reader, m *message) error {
	bp := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(bp)
	fr := frameReader{r: r, buf: *bp}
	for count := 0; ; count++ {
		msg, err := fr.next()
		if err == io.EOF {
			if count == 0 {
				return fmt.Errorf("%w: stream ended before any message: %w", ErrMalformed, io.ErrUnexpectedEOF)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if count == MaxMessages {
			return fmt.Errorf("%w: more than %d", ErrTooManyMessages, MaxMessages)
		}
		if err := m.merge(msg); err != nil {
			return err
		}
	}
}

// frameReader splits a stream into varint-length-prefixed frames. It
// reads ahead into buf, so a frame costs no read of its own when it came
// with the previous one.
type frameReader struct {
	r          io.Reader
	buf        []byte
	start, end int // buf[start:end] is read and not yet returned
	err        error
}

// next returns the next frame, valid until the following call, or io.EOF
// when the stream ends between frames.
func (f *frameReader) next() ([]byte, error) {
	for {
		avail := f.buf[f.start:f.end]
		length, n := binary.Uvarint(avail)
		switch {
		case n < 0:
			return nil, fmt.Errorf("%w: length prefix overflows", ErrMalformed)
		case n > 0:
			if n > 1 && avail[n-1] == 0 {
				return nil, fmt.Errorf("%w: length prefix not minimally encoded", ErrMalformed)
			}
			if length > MaxMessageSize {
				return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, length, MaxMessageSize)
			}
			if total := n + int(length); total <= len(avail) {
				f.start += total
				return avail[n:total], nil
			}
		case len(avail) >= binary.MaxVarintLen64:
			return nil, fmt.Errorf("%w: length prefix too long", ErrMalformed)
		}
		if err := f.fill(); err != nil {
			if err == io.EOF {
				if f.start == f.end {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("%w: stream ends inside a message: %w", ErrMalformed, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
}

// fill reads more bytes, first moving what is left to the front of buf.
func (f *frameReader) fill() error {
	if f.err != nil {
		return f.err
	}
	if f.start > 0 {
		f.end = copy(f.buf, f.buf[f.start:f.end])
		f.start = 0
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.end += n
	if n > 0 {
		f.err = err // report it once the bytes read with it are used
		return nil
	}
	if err == nil {
		return nil // io.Reader allows (0, nil); read again
	}
	f.err = err
	return err
}
