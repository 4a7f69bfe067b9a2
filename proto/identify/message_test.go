package identify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/protocol"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// sampleMessage has every field we send.
func sampleMessage() *message {
	return &message{
		present:         hasPublicKey | hasListenAddrs | hasProtocols | hasObservedAddr | hasProtocolVersion | hasAgentVersion,
		publicKey:       []byte{8, 1, 18, 2, 0xaa, 0xbb},
		listenAddrs:     []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/4001"), ma.StringCast("/ip6/::1/udp/4001/quic-v1")},
		protocols:       []protocol.ID{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"},
		observedAddr:    ma.StringCast("/ip4/5.6.7.8/tcp/1234"),
		protocolVersion: "ipfs/0.1.0",
		agentVersion:    "p2pnet/test",
	}
}

// equalMessages reports whether a and b carry the same fields.
func equalMessages(a, b *message) bool {
	return a.present == b.present &&
		bytes.Equal(a.publicKey, b.publicKey) &&
		slices.EqualFunc(a.listenAddrs, b.listenAddrs, ma.Multiaddr.Equal) &&
		slices.Equal(a.protocols, b.protocols) &&
		a.observedAddr.Equal(b.observedAddr) &&
		a.protocolVersion == b.protocolVersion &&
		a.agentVersion == b.agentVersion
}

func (m *message) String() string {
	return fmt.Sprintf("{present:%06b key:%x addrs:%v protos:%q observed:%v pv:%q av:%q}",
		m.present, m.publicKey, m.listenAddrs, m.protocols, m.observedAddr, m.protocolVersion, m.agentVersion)
}

func decode(t testing.TB, b []byte) (*message, error) {
	t.Helper()
	var m message
	err := readMessages(bytes.NewReader(b), &m)
	return &m, err
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []*message{sampleMessage(), {}, {present: hasAgentVersion}} {
		b := m.appendDelimited(nil)
		got, err := decode(t, b)
		if err != nil {
			t.Fatalf("decoding %x: %v", b, err)
		}
		if !equalMessages(got, m) {
			t.Fatalf("round trip:\n got %v\nwant %v", got, m)
		}
		if n, _ := protowire.ConsumeVarint(b); int(n) != m.size() {
			t.Fatalf("length prefix %d, size %d", n, m.size())
		}
	}
}

func TestMessageBytes(t *testing.T) {
	m := &message{
		present:         hasPublicKey | hasListenAddrs | hasProtocols | hasObservedAddr | hasProtocolVersion | hasAgentVersion,
		publicKey:       []byte{0x08, 0x01},
		listenAddrs:     []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")},
		protocols:       []protocol.ID{"/a"},
		observedAddr:    ma.StringCast("/ip4/1.2.3.4/udp/2"),
		protocolVersion: "pv",
		agentVersion:    "av",
	}
	want := "" +
		"25" + // length 37
		"0a02" + "0801" + // publicKey
		"1208" + "047f000001" + "06" + "0001" + // listenAddrs: /ip4/127.0.0.1/tcp/1
		"1a02" + "2f61" + // protocols: "/a"
		"2209" + "0401020304" + "9102" + "0002" + // observedAddr: /ip4/1.2.3.4/udp/2
		"2a02" + "7076" + // protocolVersion
		"3202" + "6176" // agentVersion
	if got := hex.EncodeToString(m.appendDelimited(nil)); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
}

// identifyDescriptor describes the Identify message for the reference
// protobuf implementation.
func identifyDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	field := func(name string, num int32, label descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label.Enum(), Type: typ.Enum()}
	}
	const (
		opt = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		rep = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		byt = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("identify.proto"),
		Package: proto.String("identify.pb"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Identify"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("protocolVersion", 5, opt, str),
				field("agentVersion", 6, opt, str),
				field("publicKey", 1, opt, byt),
				field("listenAddrs", 2, rep, byt),
				field("observedAddr", 4, opt, byt),
				field("protocols", 3, rep, str),
				field("signedPeerRecord", 8, opt, byt),
			},
		}},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().Get(0)
}

// TestMessageMatchesReferenceProtobuf checks our encoding against the
// reference implementation's, both ways.
func TestMessageMatchesReferenceProtobuf(t *testing.T) {
	md := identifyDescriptor(t)
	m := sampleMessage()
	ref := dynamicpb.NewMessage(md)
	fd := md.Fields().ByName
	ref.Set(fd("publicKey"), protoreflect.ValueOfBytes(m.publicKey))
	la := ref.Mutable(fd("listenAddrs")).List()
	for _, a := range m.listenAddrs {
		la.Append(protoreflect.ValueOfBytes(a.Bytes()))
	}
	pl := ref.Mutable(fd("protocols")).List()
	for _, p := range m.protocols {
		pl.Append(protoreflect.ValueOfString(string(p)))
	}
	ref.Set(fd("observedAddr"), protoreflect.ValueOfBytes(m.observedAddr.Bytes()))
	ref.Set(fd("protocolVersion"), protoreflect.ValueOfString(m.protocolVersion))
	ref.Set(fd("agentVersion"), protoreflect.ValueOfString(m.agentVersion))
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	ours := m.appendDelimited(nil)
	_, n := protowire.ConsumeVarint(ours)
	if !bytes.Equal(ours[n:], want) {
		t.Fatalf("encoding differs from the reference:\n ours %x\n ref  %x", ours[n:], want)
	}

	// The reference decodes ours; we decode the reference's, with a
	// signed peer record and an unknown field, which we skip.
	back := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(ours[n:], back); err != nil || !proto.Equal(back, ref) {
		t.Fatalf("the reference decodes ours as %v, %v", back, err)
	}
	ref.Set(fd("signedPeerRecord"), protoreflect.ValueOfBytes([]byte("record")))
	withExtra, err := proto.MarshalOptions{Deterministic: true}.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	withExtra = protowire.AppendTag(withExtra, 99, protowire.VarintType)
	withExtra = protowire.AppendVarint(withExtra, 7)
	got, err := decode(t, protowire.AppendBytes(nil, withExtra))
	if err != nil || !equalMessages(got, m) {
		t.Fatalf("decoding the reference's: %v, %v; want %v", got, err, m)
	}
}

func TestMergeSemantics(t *testing.T) {
	first := &message{present: hasProtocols | hasAgentVersion | hasListenAddrs,
		protocols: []protocol.ID{"/a"}, agentVersion: "one",
		listenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/1.1.1.1/tcp/1")}}
	second := &message{present: hasProtocols | hasAgentVersion | hasPublicKey,
		protocols: []protocol.ID{"/b"}, agentVersion: "two", publicKey: []byte{1}}
	b := second.appendDelimited(first.appendDelimited(nil))
	got, err := decode(t, b)
	if err != nil {
		t.Fatal(err)
	}
	want := &message{present: first.present | second.present,
		protocols: []protocol.ID{"/a", "/b"}, agentVersion: "two", publicKey: []byte{1},
		listenAddrs: first.listenAddrs}
	if !equalMessages(got, want) {
		t.Fatalf("merged\n got %v\nwant %v", got, want)
	}
}

func TestDecodeSkipsWhatItCannotUse(t *testing.T) {
	var body []byte
	// A known field with the wrong wire type is skipped, as protobuf does.
	body = protowire.AppendTag(body, fieldAgentVersion, protowire.VarintType)
	body = protowire.AppendVarint(body, 5)
	// An invalid multiaddr among the listen addresses is dropped.
	body = appendBytesField(body, fieldListenAddrs, []byte{0xff, 0xff})
	body = appendBytesField(body, fieldListenAddrs, ma.StringCast("/ip4/1.2.3.4/tcp/5").Bytes())
	// An invalid observed address counts as absent.
	body = appendBytesField(body, fieldObservedAddr, []byte{0x04, 1})
	// Unknown fields of every wire type are skipped.
	body = protowire.AppendTag(body, 7, protowire.BytesType)
	body = protowire.AppendBytes(body, []byte("x"))
	body = protowire.AppendTag(body, 20, protowire.Fixed32Type)
	body = protowire.AppendFixed32(body, 1)
	body = protowire.AppendTag(body, 21, protowire.Fixed64Type)
	body = protowire.AppendFixed64(body, 1)
	body = protowire.AppendTag(body, 22, protowire.StartGroupType)
	body = protowire.AppendTag(body, 22, protowire.EndGroupType)
	got, err := decode(t, protowire.AppendBytes(nil, body))
	if err != nil {
		t.Fatal(err)
	}
	want := &message{present: hasListenAddrs, listenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/5")}}
	if !equalMessages(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDecodeCapsRepeatedFields(t *testing.T) {
	var m message
	for i := range MaxProtocols + 10 {
		body := appendStringField(nil, fieldProtocols, fmt.Sprintf("/p/%d", i))
		if err := m.merge(body); err != nil {
			t.Fatal(err)
		}
	}
	for i := range MaxListenAddrs + 10 {
		a := ma.StringCast(fmt.Sprintf("/ip4/10.0.0.1/tcp/%d", i+1))
		if err := m.merge(appendBytesField(nil, fieldListenAddrs, a.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.protocols) != MaxProtocols || m.protocols[MaxProtocols-1] != protocol.ID(fmt.Sprintf("/p/%d", MaxProtocols-1)) {
		t.Errorf("kept %d protocols, want the first %d", len(m.protocols), MaxProtocols)
	}
	if len(m.listenAddrs) != MaxListenAddrs {
		t.Errorf("kept %d addresses, want %d", len(m.listenAddrs), MaxListenAddrs)
	}
}

// frame prefixes body with its length.
func frame(body []byte) []byte { return protowire.AppendBytes(nil, body) }

func TestDecodeErrors(t *testing.T) {
	valid := sampleMessage().appendDelimited(nil)
	many := bytes.Repeat(frame(nil), MaxMessages+1)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"truncated tag", frame([]byte{0x80}), ErrMalformed},
		{"field number zero", frame([]byte{0x02, 0x00}), ErrMalformed},
		{"bytes longer than the message", frame([]byte{0x0a, 0x05, 1, 2}), ErrMalformed},
		{"truncated fixed64", frame([]byte{0x09, 1, 2}), ErrMalformed},
		{"unterminated group", frame([]byte{0x0b}), ErrMalformed},
		{"stream ends inside a message", valid[:len(valid)-1], ErrMalformed},
		{"stream ends inside a length", []byte{0x80}, ErrMalformed},
		{"non-minimal length", []byte{0x80, 0x00}, ErrMalformed},
		{"length overflows", bytes.Repeat([]byte{0xff}, 11), ErrMalformed},
		{"message too large", protowire.AppendVarint(nil, MaxMessageSize+1), ErrMessageTooLarge},
		{"one MiB message", frame(make([]byte, 1<<20)), ErrMessageTooLarge},
		{"too many messages", many, ErrTooManyMessages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode(t, tc.in); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
	// The limits themselves are fine.
	if _, err := decode(t, many[:MaxMessages]); err != nil {
		t.Errorf("%d empty messages: %v", MaxMessages, err)
	}
	big := appendBytesField(nil, fieldAgentVersion, make([]byte, MaxMessageSize-3))
	if len(big) != MaxMessageSize {
		t.Fatalf("test message of %d bytes", len(big))
	}
	if _, err := decode(t, bytes.Repeat(frame(big), MaxMessages)); err != nil {
		t.Errorf("%d largest messages: %v", MaxMessages, err)
	}
	if _, err := decode(t, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("no message at all: %v, want ErrMalformed", err)
	}
	if _, err := decode(t, []byte{0}); err != nil {
		t.Errorf("one empty message: %v", err)
	}
}

// oneByteReader returns one byte per Read, to exercise reassembly.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return o.r.Read(b[:1])
}

func TestReadMessagesAcrossReads(t *testing.T) {
	m := sampleMessage()
	b := m.appendDelimited(m.appendDelimited(nil))
	var got message
	if err := readMessages(oneByteReader{bytes.NewReader(b)}, &got); err != nil {
		t.Fatal(err)
	}
	want := *sampleMessage()
	want.listenAddrs = append(want.listenAddrs, want.listenAddrs...)
	want.protocols = append(want.protocols, want.protocols...)
	if !equalMessages(&got, &want) {
		t.Fatalf("got %v, want %v", &got, &want)
	}
	broken := errors.New("broken")
	err := readMessages(io.MultiReader(bytes.NewReader(b[:5]), errReader{broken}), &got)
	if !errors.Is(err, broken) {
		t.Fatalf("error of a failing reader: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestAppendOwnSplits(t *testing.T) {
	m := sampleMessage()
	m.listenAddrs = nil
	for i := range 60 {
		m.listenAddrs = append(m.listenAddrs, ma.StringCast(fmt.Sprintf("/ip4/10.0.%d.1/tcp/4001", i)))
	}
	m.listenAddrs = append(m.listenAddrs, ma.StringCast("/ip4/8.8.8.8/tcp/1"))
	m.protocols = nil
	for i := range 250 {
		m.protocols = append(m.protocols, protocol.ID(fmt.Sprintf("/some/protocol/%03d/1.0.0", i)))
	}
	b := m.appendOwn(nil)
	// Every message is within our own limit.
	msgs := 0
	for rest := b; len(rest) > 0; msgs++ {
		body, n := protowire.ConsumeBytes(rest)
		if n < 0 || len(body) > maxOwnMessageSize {
			t.Fatalf("message %d: %d bytes (n=%d)", msgs, len(body), n)
		}
		rest = rest[n:]
	}
	if msgs < 2 {
		t.Fatalf("%d bytes of fields went into %d message", len(b), msgs)
	}
	got, err := decode(t, b)
	if err != nil {
		t.Fatal(err)
	}
	// The public address comes first; nothing is lost.
	if !got.listenAddrs[0].Equal(ma.StringCast("/ip4/8.8.8.8/tcp/1")) || len(got.listenAddrs) != len(m.listenAddrs) {
		t.Errorf("addresses: first %v, %d of %d", got.listenAddrs[0], len(got.listenAddrs), len(m.listenAddrs))
	}
	if !slices.Equal(got.protocols, m.protocols) || got.agentVersion != m.agentVersion {
		t.Errorf("protocols or versions lost: %d protocols, agent %q", len(got.protocols), got.agentVersion)
	}

	// What cannot fit in MaxMessages messages is left out.
	m.protocols = nil
	for i := range MaxMessages * maxOwnMessageSize / 100 {
		m.protocols = append(m.protocols, protocol.ID(fmt.Sprintf("/%097d", i)))
	}
	m.protocols = append(m.protocols, protocol.ID("/"+strings.Repeat("x", maxOwnMessageSize)))
	got, err = decode(t, m.appendOwn(nil))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.protocols); n == 0 || n >= len(m.protocols)-1 {
		t.Errorf("kept %d of %d protocols", n, len(m.protocols))
	}

	// A small message stays one message.
	small := sampleMessage()
	if !bytes.Equal(small.appendOwn(nil), small.appendDelimited(nil)) {
		t.Error("a small message was not sent as one")
	}
}

func FuzzDecodeIdentify(f *testing.F) {
	f.Add(sampleMessage().appendDelimited(nil))
	f.Add(append(sampleMessage().appendDelimited(nil), sampleMessage().appendDelimited(nil)...))
	f.Add([]byte{})
	f.Add([]byte{0x00})
	f.Add([]byte{0x03, 0x0a, 0x05, 0x01})
	f.Add(protowire.AppendVarint(nil, MaxMessageSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m message
		if err := readMessages(bytes.NewReader(b), &m); err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		if m.size() > MaxMessageSize {
			return // merged from several messages; too big for one
		}
		again, err := decode(t, m.appendDelimited(nil))
		if err != nil {
			t.Fatalf("re-encoding of %v does not decode: %v", &m, err)
		}
		if !equalMessages(again, &m) {
			t.Fatalf("re-decoded\n got %v\nwant %v", again, &m)
		}
	})
}
