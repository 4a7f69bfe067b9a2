package peerstore

import (
	"encoding/binary"
	"unique"

	"github.com/p2pnet/p2pnet/protocol"
)

// protoList is a peer's list of protocol IDs, stored once for all the
// peers that announce the same list: peers running the same software
// announce the same protocols, so a store of many peers keeps a handful
// of lists rather than one copy each. The list is interned with package
// unique, which drops it once no peer has it. The zero protoList is
// empty.
type protoList struct {
	// h is the encoded list: each ID as a uvarint length and its bytes.
	h unique.Handle[string]
}

// makeProtoList returns the list of ids, in their order.
func makeProtoList(ids []protocol.ID) protoList {
	if len(ids) == 0 {
		return protoList{}
	}
	n := 0
	for _, id := range ids {
		n += binary.MaxVarintLen16 + len(id)
	}
	buf := make([]byte, 0, n)
	for _, id := range ids {
		buf = binary.AppendUvarint(buf, uint64(len(id)))
		buf = append(buf, id...)
	}
	return protoList{unique.Make(string(buf))}
}

// empty reports whether the list has no IDs.
func (l protoList) empty() bool { return l.h == unique.Handle[string]{} }

// each calls f with each ID in order until f returns false. The IDs share
// the interned string's bytes.
func (l protoList) each(f func(protocol.ID) bool) {
	if l.empty() {
		return
	}
	enc := l.h.Value()
	for len(enc) > 0 {
		n, k := uvarint(enc)
		if k == 0 || n > uint64(len(enc)-k) {
			return // cannot happen: the encoding is ours
		}
		enc = enc[k:]
		if !f(protocol.ID(enc[:n])) {
			return
		}
		enc = enc[n:]
	}
}

// ids returns a new slice of the IDs, nil when there are none.
func (l protoList) ids() []protocol.ID {
	var out []protocol.ID
	l.each(func(id protocol.ID) bool {
		out = append(out, id)
		return true
	})
	return out
}

// contains reports whether id is in the list.
func (l protoList) contains(id protocol.ID) bool {
	found := false
	l.each(func(x protocol.ID) bool {
		found = x == id
		return !found
	})
	return found
}

// uvarint decodes the uvarint at the start of s and returns it and its
// length, or 0, 0 when s does not start with one.
func uvarint(s string) (uint64, int) {
	var x uint64
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			return x | uint64(b)<<(7*i), i + 1
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, 0
}
