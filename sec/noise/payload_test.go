package noise

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestPayloadEncoding(t *testing.T) {
	p := handshakePayload{
		identityKey: []byte{1, 2},
		identitySig: []byte{3},
		certHashes:  [][]byte{{9}},
		muxers:      []string{"/yamux/1.0.0"},
	}
	want := []byte{
		0x0a, 2, 1, 2, // identity_key
		0x12, 1, 3, // identity_sig
		0x22, 17, // extensions
		0x0a, 1, 9, // webtransport_certhashes
		0x12, 12, '/', 'y', 'a', 'm', 'u', 'x', '/', '1', '.', '0', '.', '0', // stream_muxers
	}
	got := p.appendTo(nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	d, err := decodePayload(got)
	if err != nil {
		t.Fatal(err)
	}
	if !payloadsEqual(d, p) || !d.hasExtensions {
		t.Fatalf("decoded %+v, want %+v", d, p)
	}

	// No extensions at all when there is nothing to say.
	bare := handshakePayload{identityKey: []byte{1}, identitySig: []byte{2}}
	if got := bare.appendTo(nil); !bytes.Equal(got, []byte{0x0a, 1, 1, 0x12, 1, 2}) {
		t.Fatalf("bare encoding %x", got)
	}
	// Present but empty extensions survive a round trip.
	empty := handshakePayload{hasExtensions: true}
	if got := empty.appendTo(nil); !bytes.Equal(got, []byte{0x22, 0}) {
		t.Fatalf("empty extensions encoding %x", got)
	}
}

func TestPayloadDecodeForwardCompatible(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 3, protowire.BytesType) // the old "data" field
	b = protowire.AppendBytes(b, []byte("ignored"))
	b = protowire.AppendTag(b, fieldIdentityKey, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("key"))
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 12345)
	b = protowire.AppendTag(b, 100, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	b = protowire.AppendTag(b, 101, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1)
	var ext []byte
	ext = protowire.AppendTag(ext, 7, protowire.VarintType)
	ext = protowire.AppendVarint(ext, 1)
	ext = protowire.AppendTag(ext, fieldStreamMuxers, protowire.BytesType)
	ext = protowire.AppendString(ext, "/yamux/1.0.0")
	b = protowire.AppendTag(b, fieldExtensions, protowire.BytesType)
	b = protowire.AppendBytes(b, ext)
	// A second extensions field merges; a second key replaces.
	b = protowire.AppendTag(b, fieldExtensions, protowire.BytesType)
	b = protowire.AppendBytes(b, ext)
	b = protowire.AppendTag(b, fieldIdentityKey, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("key2"))

	p, err := decodePayload(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.identityKey) != "key2" || !slices.Equal(p.muxers, []string{"/yamux/1.0.0", "/yamux/1.0.0"}) {
		t.Fatalf("decoded %+v", p)
	}
}

func TestPayloadDecodeErrors(t *testing.T) {
	valid := (&handshakePayload{identityKey: []byte("k"), identitySig: []byte("s"), muxers: []string{"m"}}).appendTo(nil)
	cases := map[string][]byte{
		"truncated tag":            {0x80},
		"zero field number":        {0x02, 0},
		"bytes too long":           {0x0a, 5, 1},
		"sig as varint":            {0x10, 1},
		"extensions as fixed32":    {0x25, 0, 0, 0, 0},
		"unknown group":            {0x1b},
		"unknown truncated varint": {0x28, 0x80},
		"bad extensions":           {0x22, 2, 0x12, 5},
		"muxer as varint":          {0x22, 2, 0x10, 1},
		"certhash truncated":       {0x22, 2, 0x0a, 9},
		"extensions bad tag":       {0x22, 1, 0x80},
		"extensions unknown bad":   {0x22, 2, 0x38, 0x80},
		"truncated valid":          valid[:len(valid)-1],
	}
	for name, b := range cases {
		if _, err := decodePayload(b); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: error %v, want ErrBadPayload", name, err)
		}
	}
}

// payloadsEqual compares payloads, treating nil and empty alike.
func payloadsEqual(a, b handshakePayload) bool {
	return bytes.Equal(a.identityKey, b.identityKey) &&
		bytes.Equal(a.identitySig, b.identitySig) &&
		slices.EqualFunc(a.certHashes, b.certHashes, bytes.Equal) &&
		slices.Equal(a.muxers, b.muxers)
}

func FuzzHandshakePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add((&handshakePayload{identityKey: []byte{8, 1, 18, 1, 0}, identitySig: []byte("sig"), muxers: []string{"/yamux/1.0.0", "/mplex/6.7.0"}}).appendTo(nil))
	f.Add((&handshakePayload{identityKey: []byte("k"), certHashes: [][]byte{{1, 2, 3}}, hasExtensions: true}).appendTo(nil))
	f.Add([]byte{0x22, 0})
	f.Add([]byte{0x1a, 3, 'o', 'l', 'd', 0x0a, 1, 'k'})
	f.Add([]byte{0x22, 2, 0x12, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePayload(b)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error %v does not wrap ErrBadPayload", err)
			}
			return
		}
		enc := p.appendTo(nil)
		q, err := decodePayload(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if !payloadsEqual(p, q) || p.hasExtensions != q.hasExtensions {
			t.Fatalf("round trip changed %+v into %+v", p, q)
		}
		if again := q.appendTo(nil); !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not deterministic: %x then %x", enc, again)
		}
	})
}

// FuzzReadFrame feeds arbitrary bytes to a Conn as received transport
// messages and reads them back with buffers of a fuzzed size.
func FuzzReadFrame(f *testing.F) {
	msgs := encryptMessages(f, []byte("hello"), bytes.Repeat([]byte{7}, 3000), []byte("bye"))
	f.Add(msgs, uint16(0))
	f.Add(msgs, uint16(4))
	f.Add(msgs, uint16(30000))
	f.Add(msgs[:len(msgs)-1], uint16(100))
	tampered := bytes.Clone(msgs)
	tampered[10] ^= 1
	f.Add(tampered, uint16(2))
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5}, uint16(10))
	f.Add([]byte{0xff, 0xff}, uint16(10))
	f.Add([]byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, readSize uint16) {
		c := keyedConn(t, &bufConn{r: bytes.NewReader(data)})
		buf := make([]byte, 1+3*int(readSize))
		total := 0
		for {
			n, err := c.Read(buf)
			total += n
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d for a %d-byte buffer", n, len(buf))
			}
			if err == nil {
				if n == 0 {
					t.Fatal("Read returned 0, nil")
				}
				continue
			}
			if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrShortFrame) {
				t.Fatalf("unexpected error %v", err)
			}
			break
		}
		if total > len(data) {
			t.Fatalf("read %d bytes of plaintext from %d bytes of input", total, len(data))
		}
	})
}
