package rcmgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// The words a limit field may hold instead of a number.
const (
	wordUnlimited = "unlimited"
	wordBlockAll  = "blockAll"
	wordDefault   = "default"
)

// knownLimitFields lists the fields of a Limit object, for error messages.
var knownLimitFields = func() string {
	names := make([]string, 0, numResources)
	for _, r := range limitFieldOrder {
		names = append(names, resourceField[r])
	}
	return strings.Join(names, ", ")
}()

// MarshalJSON writes the limit as an object with every field: counts as
// numbers, memory as a size such as "64MiB" (or a number of bytes when no
// unit divides it), and "unlimited" for no limit.
func (l Limit) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 192)
	b = append(b, '{')
	for i, r := range limitFieldOrder {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, resourceField[r]...)
		b = append(b, '"', ':')
		b = appendLimitValue(b, r, l.field(r))
	}
	return append(b, '}'), nil
}

// limitFieldOrder is the order in which MarshalJSON writes the fields.
var limitFieldOrder = [numResources]Resource{
	ResourceMemory, ResourceFD,
	ResourceConns, ResourceConnsInbound, ResourceConnsOutbound,
	ResourceStreams, ResourceStreamsInbound, ResourceStreamsOutbound,
}

// appendLimitValue appends the JSON value of field r holding v.
func appendLimitValue(b []byte, r Resource, v int64) []byte {
	if unlimited(r, v) {
		return append(b, `"`+wordUnlimited+`"`...)
	}
	if r == ResourceMemory && v > 0 {
		for _, u := range sizeUnits {
			if v%u.size == 0 {
				b = append(b, '"')
				b = strconv.AppendInt(b, v/u.size, 10)
				b = append(b, u.name...)
				return append(b, '"')
			}
		}
	}
	return strconv.AppendInt(b, v, 10)
}

// sizeUnits are the units of memory sizes, largest first.
var sizeUnits = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40},
	{"GiB", gib},
	{"MiB", mib},
	{"KiB", kib},
}

// UnmarshalJSON sets the fields present in data and leaves the others
// alone. A field holds a whole number, "unlimited", "blockAll" (0) or
// "default" (leave the field alone); Memory may also hold a size such as
// "512MiB". An unknown field is an error.
func (l *Limit) UnmarshalJSON(data []byte) error {
	if err := overlayLimit(data, l); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLimits, err)
	}
	return nil
}

// overlayLimit sets the fields of l present in data.
func overlayLimit(data []byte, l *Limit) error {
	fields, err := asObject(data)
	if err != nil || fields == nil {
		return err
	}
	for _, name := range sortedKeys(fields) {
		r, ok := resourceOfField(name)
		if !ok {
			return fmt.Errorf("unknown field %q (known fields: %s)", name, knownLimitFields)
		}
		v, set, err := parseLimitValue(r, fields[name])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if set {
			l.set(r, v)
		}
	}
	return nil
}

// resourceOfField returns the resource a Limit field name limits.
func resourceOfField(name string) (Resource, bool) {
	for r, f := range resourceField {
		if f == name {
			return Resource(r), true
		}
	}
	return 0, false
}

// set sets the field of l that limits r.
func (l *Limit) set(r Resource, v int64) {
	switch r {
	case ResourceMemory:
		l.Memory = v
	case ResourceStreamsInbound:
		l.StreamsInbound = int(v)
	case ResourceStreamsOutbound:
		l.StreamsOutbound = int(v)
	case ResourceStreams:
		l.Streams = int(v)
	case ResourceConnsInbound:
		l.ConnsInbound = int(v)
	case ResourceConnsOutbound:
		l.ConnsOutbound = int(v)
	case ResourceConns:
		l.Conns = int(v)
	case ResourceFD:
		l.FD = int(v)
	}
}

// parseLimitValue parses the value of field r; set is false for "default"
// and null.
func parseLimitValue(r Resource, raw json.RawMessage) (v int64, set bool, err error) {
	raw = bytes.TrimSpace(raw)
	top := int64(math.MaxInt)
	if r == ResourceMemory {
		top = math.MaxInt64
	}
	want := `want a whole number, "unlimited", "blockAll" or "default"`
	if r == ResourceMemory {
		want = `want a number of bytes, a size such as "512MiB", "unlimited", "blockAll" or "default"`
	}
	switch {
	case string(raw) == "null":
		return 0, false, nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false, err
		}
		switch s {
		case wordUnlimited:
			return top, true, nil
		case wordBlockAll:
			return 0, true, nil
		case wordDefault:
			return 0, false, nil
		}
		if r == ResourceMemory {
			if n, err := parseSize(s); err == nil {
				return n, true, nil
			} else if !errors.Is(err, errNotASize) {
				return 0, false, err
			}
		}
		return 0, false, fmt.Errorf("%s, not %q", want, s)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 || n > top {
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return 0, false, fmt.Errorf("%s is out of range 0 to %d", raw, top)
		}
		return 0, false, fmt.Errorf("%s, not %.40s", want, raw)
	}
	return n, true, nil
}

// errNotASize says a string does not look like a size at all.
var errNotASize = errors.New("not a size")

// parseSize parses a memory size: a whole number of bytes optionally
// followed by B, KiB, MiB, GiB or TiB, with an optional space between.
func parseSize(s string) (int64, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errNotASize
	}
	unit := strings.TrimPrefix(s[i:], " ")
	mult := int64(0)
	switch unit {
	case "", "B":
		mult = 1
	default:
		for _, u := range sizeUnits {
			if u.name == unit {
				mult = u.size
			}
		}
	}
	if mult == 0 {
		return 0, errNotASize
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// asObject decodes a JSON object into its fields; null gives a nil map.
func asObject(data []byte) (map[string]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil, nil
	}
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("want a JSON object, not %.40s", data)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, err
	}
	return fields, nil
}

// sortedKeys returns the keys of m in order, so that errors are the same
// from run to run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// limitsJSON is the shape in which Limits are written.
type limitsJSON struct {
	System               Limit
	Transient            Limit
	AllowlistedSystem    Limit
	AllowlistedTransient Limit
	ServiceDefault       Limit
	ServicePeerDefault   Limit
	ProtocolDefault      Limit
	ProtocolPeerDefault  Limit
	PeerDefault          Limit
	Conn                 Limit
	Stream               Limit
	Shares               Shares
	Service              map[string]Limit `json:",omitempty"`
	ServicePeer          map[string]Limit `json:",omitempty"`
	Protocol             map[string]Limit `json:",omitempty"`
	ProtocolPeer         map[string]Limit `json:",omitempty"`
	Peer                 map[string]Limit `json:",omitempty"`
}

// MarshalJSON writes the limits in the format the package documentation
// describes, every field present.
func (l Limits) MarshalJSON() ([]byte, error) {
	out := limitsJSON{
		System:               l.System,
		Transient:            l.Transient,
		AllowlistedSystem:    l.AllowlistedSystem,
		AllowlistedTransient: l.AllowlistedTransient,
		ServiceDefault:       l.ServiceDefault,
		ServicePeerDefault:   l.ServicePeerDefault,
		ProtocolDefault:      l.ProtocolDefault,
		ProtocolPeerDefault:  l.ProtocolPeerDefault,
		PeerDefault:          l.PeerDefault,
		Conn:                 l.Conn,
		Stream:               l.Stream,
		Shares:               l.Shares,
		Service:              l.Service,
		ServicePeer:          l.ServicePeer,
		Protocol:             stringKeys(l.Protocol, func(p protocol.ID) string { return string(p) }),
		ProtocolPeer:         stringKeys(l.ProtocolPeer, func(p protocol.ID) string { return string(p) }),
		Peer:                 stringKeys(l.Peer, peer.ID.String),
	}
	return json.Marshal(out)
}

// stringKeys re-keys m by the text form of its keys.
func stringKeys[K comparable](m map[K]Limit, text func(K) string) map[string]Limit {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]Limit, len(m))
	for k, v := range m {
		out[text(k)] = v
	}
	return out
}

// WriteJSON writes the limits to w as indented JSON.
func (l Limits) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// UnmarshalJSON overlays data on l: a scope or field present in data
// replaces l's, one missing keeps l's. An entry of an override map (Peer,
// Protocol, …) starts from l's entry for the same key if there is one,
// else from the matching default (PeerDefault, ProtocolDefault, …) as
// data leaves it. Unknown fields, bad values and bad peer IDs are errors
// wrapping ErrInvalidLimits; on error l is unchanged.
func (l *Limits) UnmarshalJSON(data []byte) error {
	out := l.clone()
	if err := out.overlay(data); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLimits, err)
	}
	*l = out
	return nil
}

// LoadLimits reads limits in JSON from r, the format the package
// documentation describes, on top of DefaultLimits.
func LoadLimits(r io.Reader) (Limits, error) {
	return ParseLimits(r, DefaultLimits())
}

// ParseLimits reads limits in JSON from r on top of defaults: what r does
// not set keeps its value in defaults.
func ParseLimits(r io.Reader, defaults Limits) (Limits, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Limits{}, err
	}
	if err := defaults.UnmarshalJSON(data); err != nil {
		return Limits{}, err
	}
	return defaults, nil
}

// The override maps, and the Shares, as JSON names them.
const (
	keyShares       = "Shares"
	keyService      = "Service"
	keyServicePeer  = "ServicePeer"
	keyProtocol     = "Protocol"
	keyProtocolPeer = "ProtocolPeer"
	keyPeer         = "Peer"
)

// overlay sets what data sets; l's maps are its own.
func (l *Limits) overlay(data []byte) error {
	top, err := asObject(data)
	if err != nil || top == nil {
		return err
	}
	fixed := l.fixed()
	known := make([]string, 0, len(fixed)+6)
	for _, f := range fixed {
		known = append(known, f.name)
	}
	known = append(known, keyShares, keyService, keyServicePeer, keyProtocol, keyProtocolPeer, keyPeer)
	for _, k := range sortedKeys(top) {
		if !slices.Contains(known, k) {
			return fmt.Errorf("unknown field %q (known fields: %s)", k, strings.Join(known, ", "))
		}
	}
	// The defaults first: the overrides start from them.
	for _, f := range fixed {
		if raw, ok := top[f.name]; ok {
			if err := overlayLimit(raw, f.limit); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	if raw, ok := top[keyShares]; ok {
		if err := l.Shares.overlay(raw); err != nil {
			return fmt.Errorf("%s: %w", keyShares, err)
		}
	}
	same := func(s string) (string, error) { return s, nil }
	proto := func(s string) (protocol.ID, error) { return protocol.ID(s), nil }
	if err := overlayMap(top[keyService], keyService, &l.Service, l.ServiceDefault, same); err != nil {
		return err
	}
	if err := overlayMap(top[keyServicePeer], keyServicePeer, &l.ServicePeer, l.ServicePeerDefault, same); err != nil {
		return err
	}
	if err := overlayMap(top[keyProtocol], keyProtocol, &l.Protocol, l.ProtocolDefault, proto); err != nil {
		return err
	}
	if err := overlayMap(top[keyProtocolPeer], keyProtocolPeer, &l.ProtocolPeer, l.ProtocolPeerDefault, proto); err != nil {
		return err
	}
	return overlayMap(top[keyPeer], keyPeer, &l.Peer, l.PeerDefault, peer.Decode)
}

// overlayMap overlays the override map called name, whose JSON is raw
// (nil when absent), on *m.
func overlayMap[K comparable](raw json.RawMessage, name string, m *map[K]Limit, def Limit, parseKey func(string) (K, error)) error {
	if raw == nil {
		return nil
	}
	entries, err := asObject(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, k := range sortedKeys(entries) {
		path := name + "[" + strconv.Quote(k) + "]"
		key, err := parseKey(k)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		l, ok := (*m)[key]
		if !ok {
			l = def
		}
		if err := overlayLimit(entries[k], &l); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if *m == nil {
			*m = make(map[K]Limit)
		}
		(*m)[key] = l
	}
	return nil
}

// MarshalJSON writes the shares as an object with every field: numbers,
// and "unlimited" for a cap of 0, which caps nothing.
func (s Shares) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	for i, f := range shareFields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		if v := *f.get(&s); v == 0 && f.bits == 0 {
			b = append(b, `"`+wordUnlimited+`"`...)
		} else {
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	return append(b, '}'), nil
}

// UnmarshalJSON sets the fields present in data and leaves the others
// alone. A cap holds a whole number, "unlimited" (the same as 0: no cap)
// or "default" (leave it alone); a prefix length holds a whole number or
// "default". An unknown field is an error.
func (s *Shares) UnmarshalJSON(data []byte) error {
	out := *s
	if err := out.overlay(data); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLimits, err)
	}
	*s = out
	return nil
}

// knownShareFields lists the fields of a Shares object, for error
// messages.
var knownShareFields = func() string {
	names := make([]string, 0, len(shareFields))
	for _, f := range shareFields {
		names = append(names, f.name)
	}
	return strings.Join(names, ", ")
}()

// overlay sets the fields of s present in data.
func (s *Shares) overlay(data []byte) error {
	fields, err := asObject(data)
	if err != nil || fields == nil {
		return err
	}
	for _, name := range sortedKeys(fields) {
		i := slices.IndexFunc(shareFields, func(f shareField) bool { return f.name == name })
		if i < 0 {
			return fmt.Errorf("unknown field %q (known fields: %s)", name, knownShareFields)
		}
		f := shareFields[i]
		v, set, err := parseShareValue(f, fields[name])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if set {
			*f.get(s) = v
		}
	}
	return nil
}

// parseShareValue parses the value of field f; set is false for
// "default" and null.
func parseShareValue(f shareField, raw json.RawMessage) (v int, set bool, err error) {
	raw = bytes.TrimSpace(raw)
	top := math.MaxInt
	want := `want a whole number, "unlimited" or "default"`
	if f.bits > 0 {
		top = f.bits
		want = fmt.Sprintf(`want a prefix length from 0 to %d or "default"`, f.bits)
	}
	switch {
	case string(raw) == "null":
		return 0, false, nil
	case len(raw) > 0 && raw[0] == '"':
		var w string
		if err := json.Unmarshal(raw, &w); err != nil {
			return 0, false, err
		}
		switch {
		case w == wordDefault:
			return 0, false, nil
		case w == wordUnlimited && f.bits == 0:
			return 0, true, nil
		}
		return 0, false, fmt.Errorf("%s, not %q", want, w)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 || n > int64(top) {
		return 0, false, fmt.Errorf("%s, not %.40s", want, raw)
	}
	return int(n), true, nil
}
