package peer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// ErrInvalidAddr means a multiaddr that does not end in /p2p/<peer ID>
// where one was needed.
var ErrInvalidAddr = errors.New("peer: invalid p2p multiaddr")

// AddrInfo is a peer and the addresses it can be reached at.
type AddrInfo struct {
	ID    ID
	Addrs []ma.Multiaddr
}

// SplitAddr splits m into its transport part and the peer ID of its last
// /p2p component. When m does not end in a valid /p2p component it
// returns m and the empty ID; a bare /p2p/ID gives a nil transport.
func SplitAddr(m ma.Multiaddr) (transport ma.Multiaddr, id ID) {
	if len(m) == 0 {
		return nil, ""
	}
	if m[len(m)-1].Code() != ma.P_P2P {
		return m, ""
	}
	// SplitLast copies the prefix, so appending to it leaves m alone.
	rest, last := ma.SplitLast(m)
	id, err := IDFromBytes(last.RawValue())
	if err != nil {
		return m, ""
	}
	return rest, id
}

// AddrInfoFromP2pAddr returns the peer and transport address of a
// multiaddr ending in /p2p/<peer ID>. The transport part may be empty, in
// which case Addrs is empty.
func AddrInfoFromP2pAddr(m ma.Multiaddr) (*AddrInfo, error) {
	transport, id := SplitAddr(m)
	if id == "" {
		return nil, fmt.Errorf("%w: %q does not end in a valid /p2p component", ErrInvalidAddr, m.String())
	}
	info := &AddrInfo{ID: id}
	if len(transport) > 0 {
		info.Addrs = []ma.Multiaddr{transport}
	}
	return info, nil
}

// AddrInfoFromString parses a multiaddr ending in /p2p/<peer ID>.
func AddrInfoFromString(s string) (*AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAddr, err)
	}
	return AddrInfoFromP2pAddr(m)
}

// AddrInfosFromP2pAddrs groups multiaddrs ending in /p2p/<peer ID> by
// peer, in the order each peer first appears.
func AddrInfosFromP2pAddrs(maddrs ...ma.Multiaddr) ([]AddrInfo, error) {
	var infos []AddrInfo
	index := make(map[ID]int)
	for _, m := range maddrs {
		transport, id := SplitAddr(m)
		if id == "" {
			return nil, fmt.Errorf("%w: %q does not end in a valid /p2p component", ErrInvalidAddr, m.String())
		}
		i, ok := index[id]
		if !ok {
			i = len(infos)
			index[id] = i
			infos = append(infos, AddrInfo{ID: id})
		}
		if len(transport) > 0 {
			infos[i].Addrs = append(infos[i].Addrs, transport)
		}
	}
	return infos, nil
}

// AddrInfoToP2pAddrs returns each of the peer's addresses with
// /p2p/<peer ID> appended, or the bare /p2p/<peer ID> when it has none.
func AddrInfoToP2pAddrs(pi *AddrInfo) ([]ma.Multiaddr, error) {
	if pi == nil {
		return nil, fmt.Errorf("%w: nil AddrInfo", ErrInvalidAddr)
	}
	if err := pi.ID.Validate(); err != nil {
		return nil, err
	}
	p2p, err := ma.NewComponent("p2p", pi.ID.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidAddr, err)
	}
	if len(pi.Addrs) == 0 {
		return []ma.Multiaddr{p2p.Multiaddr()}, nil
	}
	out := make([]ma.Multiaddr, 0, len(pi.Addrs))
	for _, a := range pi.Addrs {
		out = append(out, a.Encapsulate(p2p))
	}
	return out, nil
}

// String returns the peer ID and its addresses, as "{ID: [addr ...]}".
func (pi AddrInfo) String() string {
	var b strings.Builder
	b.WriteByte('{')
	b.WriteString(pi.ID.String())
	b.WriteString(": [")
	for i, a := range pi.Addrs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
	}
	b.WriteString("]}")
	return b.String()
}

// addrInfoJSON is the JSON form of AddrInfo, the one go-libp2p uses.
type addrInfoJSON struct {
	ID    ID
	Addrs []string
}

// MarshalJSON encodes the AddrInfo as {"ID": "<base58>", "Addrs":
// ["<multiaddr>", ...]}.
func (pi AddrInfo) MarshalJSON() ([]byte, error) {
	addrs := make([]string, len(pi.Addrs))
	for i, a := range pi.Addrs {
		addrs[i] = a.String()
	}
	return json.Marshal(addrInfoJSON{ID: pi.ID, Addrs: addrs})
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (pi *AddrInfo) UnmarshalJSON(data []byte) error {
	var v addrInfoJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidAddr, err)
	}
	addrs := make([]ma.Multiaddr, 0, len(v.Addrs))
	for _, s := range v.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidAddr, err)
		}
		addrs = append(addrs, a)
	}
	pi.ID, pi.Addrs = v.ID, addrs
	return nil
}
