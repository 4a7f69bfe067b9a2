package rcmgr

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
)

// docExample is the example of the package documentation.
const docExample = `{
  "System":    {"Memory": "4GiB", "Conns": 1024, "ConnsInbound": 512, "FD": 4096},
  "Transient": {"Memory": "256MiB"},
  "Shares":    {"UnnegotiatedStreamsPerPeer": 8, "IPv6Prefix": 48},
  "PeerDefault": {"Streams": 1024, "StreamsInbound": 512},
  "Protocol": {
    "/ipfs/bitswap/1.2.0": {"Memory": "1GiB", "Streams": "unlimited"}
  },
  "Peer": {
    "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA": {"Conns": 64, "Memory": "unlimited"}
  }
}`

// fixedDefaults are defaults that do not depend on the machine.
func fixedDefaults() Limits { return ScaledDefaultLimits(1<<30, 1024) }

func TestJSONRoundTrip(t *testing.T) {
	withOverrides := fixedDefaults()
	withOverrides.Service = map[string]Limit{"svc": BlockAll}
	withOverrides.ServicePeer = map[string]Limit{"svc": Unlimited}
	withOverrides.Protocol = map[protocol.ID]Limit{"/p/1": {Memory: 12345, Streams: 3}}
	withOverrides.ProtocolPeer = map[protocol.ID]Limit{"/p/1": {Memory: 3 << 20}}
	withOverrides.Peer = map[peer.ID]Limit{testPeer(t, 1): Unlimited, testPeer(t, 2): {FD: 1}}
	for name, l := range map[string]Limits{
		"default":   DefaultLimits(),
		"scaled":    fixedDefaults(),
		"tiny":      ScaledDefaultLimits(0, 0),
		"huge":      ScaledDefaultLimits(1<<40, 1<<20),
		"unlimited": UnlimitedLimits(),
		"overrides": withOverrides,
		"blockAll":  {},
	} {
		var buf bytes.Buffer
		if err := l.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		// Parse on top of different defaults: everything must come from
		// the file.
		got, err := ParseLimits(bytes.NewReader(buf.Bytes()), UnlimitedLimits())
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, buf.String())
		}
		if !reflect.DeepEqual(got, l) {
			t.Fatalf("%s: round trip gave\n%+v\nwant\n%+v\nfile:\n%s", name, got, l, buf.String())
		}
	}
}

func TestJSONDocExample(t *testing.T) {
	def := fixedDefaults()
	got, err := ParseLimits(strings.NewReader(docExample), def)
	if err != nil {
		t.Fatal(err)
	}
	want := fixedDefaults()
	want.System.Memory, want.System.Conns, want.System.ConnsInbound, want.System.FD = 4<<30, 1024, 512, 4096
	want.Transient.Memory = 256 << 20
	want.Shares.UnnegotiatedStreamsPerPeer, want.Shares.IPv6Prefix = 8, 48
	want.PeerDefault.Streams, want.PeerDefault.StreamsInbound = 1024, 512
	bitswap := want.ProtocolDefault
	bitswap.Memory, bitswap.Streams = 1<<30, math.MaxInt
	want.Protocol = map[protocol.ID]Limit{"/ipfs/bitswap/1.2.0": bitswap}
	p, err := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	if err != nil {
		t.Fatal(err)
	}
	// The override starts from PeerDefault as the file leaves it.
	pl := want.PeerDefault
	pl.Conns, pl.Memory = 64, math.MaxInt64
	want.Peer = map[peer.ID]Limit{p: pl}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", got, want)
	}
	if !reflect.DeepEqual(def, fixedDefaults()) {
		t.Fatal("ParseLimits changed its defaults")
	}
}

func TestJSONValues(t *testing.T) {
	in := `{"Conn": {"Memory": "blockAll", "FD": "unlimited", "Conns": "default", "Streams": null,
		"ConnsInbound": 0, "ConnsOutbound": 7, "StreamsInbound": "unlimited", "StreamsOutbound": "blockAll"},
		"Stream": {"Memory": "1 KiB"}, "Transient": {"Memory": 1000}, "System": {"Memory": "12B"},
		"PeerDefault": {"Memory": "unlimited"}, "ProtocolDefault": {"Memory": "2TiB"}, "ServiceDefault": {"Memory": "0"}}`
	def := fixedDefaults()
	got, err := ParseLimits(strings.NewReader(in), def)
	if err != nil {
		t.Fatal(err)
	}
	wantConn := Limit{Memory: 0, FD: math.MaxInt, Conns: def.Conn.Conns, Streams: def.Conn.Streams,
		ConnsInbound: 0, ConnsOutbound: 7, StreamsInbound: math.MaxInt, StreamsOutbound: 0}
	if got.Conn != wantConn {
		t.Errorf("Conn %+v, want %+v", got.Conn, wantConn)
	}
	for what, c := range map[string][2]int64{
		"Stream":          {got.Stream.Memory, 1024},
		"Transient":       {got.Transient.Memory, 1000},
		"System":          {got.System.Memory, 12},
		"PeerDefault":     {got.PeerDefault.Memory, math.MaxInt64},
		"ProtocolDefault": {got.ProtocolDefault.Memory, 2 << 40},
		"ServiceDefault":  {got.ServiceDefault.Memory, 0},
	} {
		if c[0] != c[1] {
			t.Errorf("%s.Memory = %d, want %d", what, c[0], c[1])
		}
	}
}

func TestJSONOverrideInheritsFileDefault(t *testing.T) {
	// The override comes first in the file, the default it inherits from
	// second.
	in := `{"Peer": {"` + testPeer(t, 1).String() + `": {"Memory": 5}}, "PeerDefault": {"Conns": 3}}`
	got, err := ParseLimits(strings.NewReader(in), fixedDefaults())
	if err != nil {
		t.Fatal(err)
	}
	l := got.Peer[testPeer(t, 1)]
	if l.Conns != 3 || l.Memory != 5 || l.Streams != fixedDefaults().PeerDefault.Streams {
		t.Fatalf("override %+v", l)
	}
	// An override already present is updated, not replaced.
	def := fixedDefaults()
	def.Protocol = map[protocol.ID]Limit{"/p": {Memory: 1, Streams: 2}}
	got, err = ParseLimits(strings.NewReader(`{"Protocol": {"/p": {"Memory": 9}}}`), def)
	if err != nil {
		t.Fatal(err)
	}
	if got.Protocol["/p"] != (Limit{Memory: 9, Streams: 2}) {
		t.Fatalf("updated override %+v", got.Protocol["/p"])
	}
	if def.Protocol["/p"] != (Limit{Memory: 1, Streams: 2}) {
		t.Fatal("ParseLimits changed the defaults' map")
	}
}

func TestJSONErrors(t *testing.T) {
	p := testPeer(t, 1).String()
	for _, c := range []struct{ in, want string }{
		{`{"Systen": {}}`, `unknown field "Systen" (known fields: System, Transient,`},
		{`{"System": {"Conz": 1}}`, `System: unknown field "Conz" (known fields: Memory, FD, Conns, ConnsInbound,`},
		{`{"Peer": {"` + p + `": {"Memry": 1}}}`, `Peer["` + p + `"]: unknown field "Memry"`},
		{`{"Peer": {"notapeer": {}}}`, `Peer["notapeer"]: `},
		{`{"System": {"Conns": -1}}`, `System: Conns: -1 is out of range`},
		{`{"System": {"Conns": 1.5}}`, `System: Conns: want a whole number, "unlimited", "blockAll" or "default", not 1.5`},
		{`{"System": {"Conns": "lots"}}`, `System: Conns: want a whole number`},
		{`{"System": {"Conns": "1KiB"}}`, `System: Conns: want a whole number`},
		{`{"System": {"Memory": "1GB"}}`, `System: Memory: want a number of bytes, a size such as "512MiB", "unlimited", "blockAll" or "default", not "1GB"`},
		{`{"System": {"Memory": "99999999999TiB"}}`, `System: Memory: size "99999999999TiB" is too large`},
		{`{"System": {"Memory": 99999999999999999999}}`, `System: Memory: 99999999999999999999 is out of range`},
		{`{"System": []}`, `System: want a JSON object, not []`},
		{`{"Protocol": 5}`, `Protocol: want a JSON object, not 5`},
		{`[]`, `want a JSON object, not []`},
		{`{"System": {}} {}`, `invalid character`},
		{``, `want a JSON object`},
		{`{"System": {"Memory": 1`, `unexpected end of JSON input`},
	} {
		def := fixedDefaults()
		got := def
		err := got.UnmarshalJSON([]byte(c.in))
		if !errors.Is(err, ErrInvalidLimits) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.in, err, c.want)
		}
		if !reflect.DeepEqual(got, def) {
			t.Errorf("%s: a failed UnmarshalJSON changed the limits", c.in)
		}
	}
}

func TestLimitJSONFormat(t *testing.T) {
	b, err := Limit{Memory: 3 << 20, FD: math.MaxInt, Conns: 1, Streams: 2, StreamsInbound: 3}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Memory":"3MiB","FD":"unlimited","Conns":1,"ConnsInbound":0,"ConnsOutbound":0,"Streams":2,"StreamsInbound":3,"StreamsOutbound":0}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	for mem, want := range map[int64]string{0: `0`, 1000: `1000`, 1024: `"1KiB"`, 1536: `1536`, 5 << 30: `"5GiB"`, 1 << 40: `"1TiB"`, math.MaxInt64: `"unlimited"`} {
		b, _ := Limit{Memory: mem}.MarshalJSON()
		if !strings.HasPrefix(string(b), `{"Memory":`+want+`,`) {
			t.Errorf("Memory %d written as %s", mem, b)
		}
	}
	var l Limit
	if err := l.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if err := l.UnmarshalJSON([]byte(`{"Bogus": 1}`)); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestNewRejectsNegativeLimits(t *testing.T) {
	l := fixedDefaults()
	l.Protocol = map[protocol.ID]Limit{"/p": {Streams: -1}}
	_, err := New(l)
	if !errors.Is(err, ErrInvalidLimits) || !strings.Contains(err.Error(), `Protocol["/p"].Streams is negative`) {
		t.Fatalf("New: %v", err)
	}
	l = fixedDefaults()
	l.System.Memory = -1
	if _, err := New(l); !errors.Is(err, ErrInvalidLimits) {
		t.Fatalf("New: %v", err)
	}
}

func FuzzLoadLimits(f *testing.F) {
	for _, s := range []string{
		docExample,
		`{}`,
		`null`,
		`{"System": {"Memory": "unlimited", "Conns": "blockAll"}}`,
		`{"Peer": {"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA": {"FD": 3}}}`,
		`{"ServicePeer": {"svc": {"Memory": "1 KiB"}}, "ProtocolPeer": {"/p": {"Streams": "default"}}}`,
		`{"System": {"Conz": 1}}`,
		`{"System": {"Memory": "99999999999TiB"}}`,
		`{"System": {"Memory": 1`,
		`[1, 2]`,
		`{"Peer": {"bad": {}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLimits(bytes.NewReader(data), fixedDefaults())
		if err != nil {
			if !errors.Is(err, ErrInvalidLimits) {
				t.Fatalf("error %v does not wrap ErrInvalidLimits", err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("parsed limits are invalid: %v", err)
		}
		var buf bytes.Buffer
		if err := l.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := ParseLimits(&buf, Limits{})
		if err != nil {
			t.Fatalf("reading what WriteJSON wrote: %v", err)
		}
		if !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip changed the limits:\n%+v\n%+v", l, again)
		}
	})
}
