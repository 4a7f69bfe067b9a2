package noise

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/flynn/noise"
	"go.uber.org/goleak"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cipherSuite is the one suite noise-libp2p allows, with flynn/noise's
// own X25519: the reference the tests check dh25519 and the transport
// ciphers against.
var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

const (
	yamux = protocol.ID("/yamux/1.0.0")
	mplex = protocol.ID("/mplex/6.7.0")
)

// newTransport returns a Transport with a fresh key of type typ.
func newTransport(tb testing.TB, typ ic.KeyType, muxers ...protocol.ID) *Transport {
	tb.Helper()
	bits := 0
	if typ == ic.RSA {
		bits = 2048
	}
	priv, _, err := ic.GenerateKeyPair(typ, bits)
	if err != nil {
		tb.Fatal(err)
	}
	tpt, err := New(priv, muxers)
	if err != nil {
		tb.Fatal(err)
	}
	return tpt
}

// connPair is a way to get two connected raw connections.
type connPair struct {
	name string
	make func(testing.TB) (client, server net.Conn)
}

var connPairs = []connPair{
	{"pipe", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		client.Close()
		tb.Fatal(r.err)
	}
	return client, r.c
}

// handshakeResult is what both sides of a handshake returned.
type handshakeResult struct {
	out, in       sec.Conn
	outErr, inErr error
}

// runHandshake runs SecureOutbound on client (expecting outPeer) and
// SecureInbound on server (expecting inPeer) concurrently.
func runHandshake(ctx context.Context, client, server net.Conn, initiator, responder *Transport, outPeer, inPeer peer.ID) handshakeResult {
	var r handshakeResult
	var wg sync.WaitGroup
	wg.Go(func() {
		r.in, r.inErr = responder.SecureInbound(ctx, server, inPeer)
	})
	r.out, r.outErr = initiator.SecureOutbound(ctx, client, outPeer)
	wg.Wait()
	return r
}

// securePair returns two connections secured by initiator and responder.
func securePair(tb testing.TB, pair connPair, initiator, responder *Transport) (out, in *Conn) {
	tb.Helper()
	client, server := pair.make(tb)
	r := runHandshake(context.Background(), client, server, initiator, responder, responder.localID, "")
	if r.outErr != nil || r.inErr != nil {
		tb.Fatalf("handshake: outbound %v, inbound %v", r.outErr, r.inErr)
	}
	tb.Cleanup(func() {
		r.out.Close()
		r.in.Close()
	})
	return r.out.(*Conn), r.in.(*Conn)
}

// exchange writes a message each way and checks it arrives.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, dir := range []struct{ from, to net.Conn }{{a, b}, {b, a}} {
		msg := []byte("hello from " + dir.from.LocalAddr().String())
		errc := make(chan error, 1)
		go func() {
			_, err := dir.from.Write(msg)
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
}

func TestHandshakeKeyTypes(t *testing.T) {
	types := []ic.KeyType{ic.Ed25519, ic.Secp256k1, ic.ECDSA, ic.RSA}
	tpts := map[ic.KeyType]*Transport{}
	for _, typ := range types {
		tpts[typ] = newTransport(t, typ)
	}
	for _, pair := range connPairs {
		for _, typ := range types {
			t.Run(pair.name+"/"+typ.String(), func(t *testing.T) {
				// Each key type meets an Ed25519 peer and one of its own.
				initiator := tpts[typ]
				responder := tpts[ic.Ed25519]
				if typ == ic.Ed25519 {
					responder = newTransport(t, ic.Ed25519)
				}
				for _, sides := range [][2]*Transport{{initiator, responder}, {responder, initiator}} {
					out, in := securePair(t, pair, sides[0], sides[1])
					if out.LocalPeer() != sides[0].localID || out.RemotePeer() != sides[1].localID {
						t.Errorf("outbound: local %s remote %s", out.LocalPeer(), out.RemotePeer())
					}
					if in.LocalPeer() != sides[1].localID || in.RemotePeer() != sides[0].localID {
						t.Errorf("inbound: local %s remote %s", in.LocalPeer(), in.RemotePeer())
					}
					if !out.RemotePublicKey().Equals(sides[1].priv.GetPublic()) {
						t.Error("outbound: wrong remote public key")
					}
					if !in.RemotePublicKey().Equals(sides[0].priv.GetPublic()) {
						t.Error("inbound: wrong remote public key")
					}
					for _, c := range []*Conn{out, in} {
						st := c.ConnState()
						if st.Security != ID || st.StreamMultiplexer != "" || st.UsedEarlyMuxerNegotiation || st.Transport != "" {
							t.Errorf("ConnState = %+v", st)
						}
					}
					exchange(t, out, in)
				}
			})
		}
	}
}

// isClosed reports whether writing to c fails because c was closed.
func isClosed(c net.Conn) bool {
	_, err := c.Write([]byte{0})
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)
}

func TestOutboundPeerMismatch(t *testing.T) {
	initiator := newTransport(t, ic.Ed25519)
	responder := newTransport(t, ic.Ed25519)
	other := newTransport(t, ic.Ed25519)
	for _, pair := range connPairs {
		t.Run(pair.name, func(t *testing.T) {
			client, server := pair.make(t)
			defer server.Close()
			r := runHandshake(context.Background(), client, server, initiator, responder, other.localID, "")
			if !errors.Is(r.outErr, sec.ErrPeerIDMismatch) {
				t.Fatalf("outbound error %v, want a peer ID mismatch", r.outErr)
			}
			var me *sec.MismatchError
			if !errors.As(r.outErr, &me) || me.Expected != other.localID || me.Actual != responder.localID {
				t.Fatalf("outbound error %#v, want expected %s actual %s", r.outErr, other.localID, responder.localID)
			}
			if r.out != nil {
				t.Error("outbound returned a connection")
			}
			if r.inErr == nil {
				t.Error("inbound handshake succeeded although the initiator gave up")
			}
			if !isClosed(client) {
				t.Error("the initiator's raw connection is still open")
			}
			if !isClosed(server) {
				t.Error("the responder's raw connection is still open")
			}
		})
	}
}

func TestOutboundEmptyPeerMatchesNobody(t *testing.T) {
	initiator := newTransport(t, ic.Ed25519)
	responder := newTransport(t, ic.Ed25519)
	client, server := net.Pipe()
	r := runHandshake(context.Background(), client, server, initiator, responder, "", "")
	var me *sec.MismatchError
	if !errors.As(r.outErr, &me) || me.Expected != "" || me.Actual != responder.localID {
		t.Fatalf("outbound error %v, want a mismatch naming %s", r.outErr, responder.localID)
	}
}

func TestInboundPeerMismatch(t *testing.T) {
	initiator := newTransport(t, ic.Ed25519)
	responder := newTransport(t, ic.Ed25519)
	other := newTransport(t, ic.Ed25519)
	client, server := net.Pipe()
	defer client.Close()
	r := runHandshake(context.Background(), client, server, initiator, responder, responder.localID, other.localID)
	var me *sec.MismatchError
	if !errors.As(r.inErr, &me) || me.Expected != other.localID || me.Actual != initiator.localID {
		t.Fatalf("inbound error %v, want a mismatch: expected %s actual %s", r.inErr, other.localID, initiator.localID)
	}
	if !isClosed(server) {
		t.Error("the responder's raw connection is still open")
	}
	// The initiator finished its part; its first read sees the close.
	if r.outErr != nil {
		t.Fatalf("outbound: %v", r.outErr)
	}
	if _, err := r.out.Read(make([]byte, 1)); err == nil {
		t.Error("read on a connection the responder closed succeeded")
	}
	r.out.Close()
}

func TestInboundExpectedPeer(t *testing.T) {
	initiator := newTransport(t, ic.Ed25519)
	responder := newTransport(t, ic.Ed25519)
	client, server := net.Pipe()
	r := runHandshake(context.Background(), client, server, initiator, responder, responder.localID, initiator.localID)
	if r.outErr != nil || r.inErr != nil {
		t.Fatalf("outbound %v, inbound %v", r.outErr, r.inErr)
	}
	r.out.Close()
	r.in.Close()
}

func TestEarlyMuxerNegotiation(t *testing.T) {
	cases := []struct {
		name                 string
		initiator, responder []protocol.ID
		want                 protocol.ID
	}{
		{"same", []protocol.ID{yamux}, []protocol.ID{yamux}, yamux},
		{"initiator's preference wins", []protocol.ID{yamux, mplex}, []protocol.ID{mplex, yamux}, yamux},
		{"initiator's preference wins again", []protocol.ID{mplex, yamux}, []protocol.ID{yamux, mplex}, mplex},
		{"first shared", []protocol.ID{"/a", mplex, yamux}, []protocol.ID{yamux, mplex}, mplex},
		{"disjoint", []protocol.ID{yamux}, []protocol.ID{mplex}, ""},
		{"initiator offers none", nil, []protocol.ID{yamux}, ""},
		{"responder offers none", []protocol.ID{yamux}, nil, ""},
		{"neither offers", nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			initiator := newTransport(t, ic.Ed25519, tc.initiator...)
			responder := newTransport(t, ic.Ed25519, tc.responder...)
			out, in := securePair(t, connPairs[0], initiator, responder)
			for _, c := range []*Conn{out, in} {
				st := c.ConnState()
				if st.StreamMultiplexer != tc.want || st.UsedEarlyMuxerNegotiation != (tc.want != "") || st.Security != ID {
					t.Errorf("ConnState = %+v, want multiplexer %q", st, tc.want)
				}
			}
		})
	}
}

func TestRemoteMuxerListTooLong(t *testing.T) {
	long := make([]protocol.ID, maxRemoteMuxers+1)
	for i := range long {
		long[i] = yamux
	}
	initiator := newTransport(t, ic.Ed25519, yamux)
	responder := newTransport(t, ic.Ed25519, long...)
	out, in := securePair(t, connPairs[0], initiator, responder)
	if st := out.ConnState(); st.StreamMultiplexer != "" || st.UsedEarlyMuxerNegotiation {
		t.Errorf("outbound ConnState = %+v, want no early negotiation", st)
	}
	// The responder's own list may be long; the initiator's is short.
	if st := in.ConnState(); st.StreamMultiplexer != yamux {
		t.Errorf("inbound ConnState = %+v", st)
	}
}

// silentPeer reads whatever the other end sends until it is closed, and
// never answers.
func silentPeer(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}

func TestHandshakeContextDeadline(t *testing.T) {
	for _, outbound := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			tpt := newTransport(t, ic.Ed25519)
			local, remote := net.Pipe()
			defer remote.Close()
			go silentPeer(remote)

			ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
			defer cancel()
			start := time.Now()
			var err error
			if outbound {
				_, err = tpt.SecureOutbound(ctx, local, "")
			} else {
				_, err = tpt.SecureInbound(ctx, local, "")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want the context's deadline", err)
			}
			if d := time.Since(start); d != 7*time.Second {
				t.Fatalf("handshake gave up after %v, want 7s", d)
			}
			if !isClosed(local) {
				t.Error("raw connection left open")
			}
		})
	}
}

func TestHandshakeContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tpt := newTransport(t, ic.Ed25519)
		local, remote := net.Pipe()
		defer remote.Close()
		go silentPeer(remote)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(3*time.Second, cancel)
		start := time.Now()
		_, err := tpt.SecureOutbound(ctx, local, "")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("handshake gave up after %v, want 3s", d)
		}
	})
}

func TestHandshakeContextAlreadyDone(t *testing.T) {
	tpt := newTransport(t, ic.Ed25519)
	local, remote := net.Pipe()
	defer remote.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tpt.SecureInbound(ctx, local, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if !isClosed(local) {
		t.Error("raw connection left open")
	}
}

// TestHandshakeDeadlineCleared checks that the context's deadline does not
// outlive the handshake.
func TestHandshakeDeadlineCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		initiator := newTransport(t, ic.Ed25519)
		responder := newTransport(t, ic.Ed25519)
		client, server := net.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r := runHandshake(ctx, client, server, initiator, responder, responder.localID, "")
		if r.outErr != nil || r.inErr != nil {
			t.Fatalf("outbound %v, inbound %v", r.outErr, r.inErr)
		}
		defer r.out.Close()
		defer r.in.Close()
		time.Sleep(time.Minute) // advances the bubble's clock past the deadline
		exchange(t, r.out, r.in)
	})
}

// withPayload returns a copy of tpt that sends payload instead of its own.
func withPayload(tpt *Transport, payload []byte) *Transport {
	c := *tpt
	c.payload = payload
	return &c
}

func TestBadSignature(t *testing.T) {
	honest := newTransport(t, ic.Ed25519)
	other := newTransport(t, ic.Ed25519)

	good, err := decodePayload(honest.payload)
	if err != nil {
		t.Fatal(err)
	}
	flipped := good
	flipped.identitySig = bytes.Clone(good.identitySig)
	flipped.identitySig[0] ^= 1
	// A valid signature by the same key, but of another static key.
	otherStatic := good
	otherStatic.identitySig, err = honest.priv.Sign(staticKeySigMessage(other.static.Public))
	if err != nil {
		t.Fatal(err)
	}
	// Another peer's key with our signature.
	wrongKey := good
	wrongKey.identityKey, _ = ic.MarshalPublicKey(other.priv.GetPublic())
	noSig := good
	noSig.identitySig = nil

	for name, p := range map[string]handshakePayload{
		"flipped bit":        flipped,
		"other static key":   otherStatic,
		"other identity key": wrongKey,
		"no signature":       noSig,
	} {
		t.Run(name, func(t *testing.T) {
			bad := withPayload(honest, p.appendTo(nil))
			initiator := newTransport(t, ic.Ed25519)

			// A responder with a bad payload fails the initiator.
			client, server := net.Pipe()
			r := runHandshake(context.Background(), client, server, initiator, bad, bad.localID, "")
			if !errors.Is(r.outErr, ErrBadSignature) {
				t.Errorf("outbound error %v, want ErrBadSignature", r.outErr)
			}
			if r.inErr == nil {
				r.in.Close()
				t.Error("inbound handshake succeeded")
			}

			// An initiator with a bad payload fails the responder.
			client, server = net.Pipe()
			r = runHandshake(context.Background(), client, server, bad, initiator, initiator.localID, "")
			if !errors.Is(r.inErr, ErrBadSignature) {
				t.Errorf("inbound error %v, want ErrBadSignature", r.inErr)
			}
			if r.outErr == nil {
				r.out.Close()
			}
		})
	}
}

func TestBadPayload(t *testing.T) {
	honest := newTransport(t, ic.Ed25519)
	good, err := decodePayload(honest.payload)
	if err != nil {
		t.Fatal(err)
	}
	noKey := good
	noKey.identityKey = nil
	badKey := good
	badKey.identityKey = []byte{8, 1, 18, 3, 1, 2, 3} // Ed25519, 3 bytes

	for name, payload := range map[string][]byte{
		"not protobuf":   {0xff, 0xff, 0xff},
		"truncated":      honest.payload[:len(honest.payload)-1],
		"no key":         noKey.appendTo(nil),
		"bad key":        badKey.appendTo(nil),
		"empty":          nil,
		"key wire type":  {fieldIdentityKey << 3, 1}, // varint
		"extension junk": append(bytes.Clone(honest.payload), fieldExtensions<<3|2, 2, 0xff, 0xff),
	} {
		t.Run(name, func(t *testing.T) {
			bad := withPayload(honest, payload)
			initiator := newTransport(t, ic.Ed25519)
			client, server := net.Pipe()
			r := runHandshake(context.Background(), client, server, initiator, bad, bad.localID, "")
			if !errors.Is(r.outErr, ErrBadPayload) {
				t.Errorf("outbound error %v, want ErrBadPayload", r.outErr)
			}
			if r.inErr == nil {
				r.in.Close()
				t.Error("inbound handshake succeeded")
			}
		})
	}
}

// TestBadHandshakeMessages feeds the responder broken first messages.
func TestBadHandshakeMessages(t *testing.T) {
	tpt := newTransport(t, ic.Ed25519)
	for name, raw := range map[string][]byte{
		"short message":   {0, 3, 1, 2, 3},
		"EOF in length":   {0},
		"EOF in message":  {0, 32, 1, 2},
		"nothing at all":  {},
		"zero length msg": {0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			local, remote := net.Pipe()
			go func() {
				remote.Write(raw)
				remote.Close()
			}()
			if _, err := tpt.SecureInbound(context.Background(), local, ""); err == nil {
				t.Fatal("handshake succeeded")
			}
		})
	}
}

// TestWireCompatibleWithFlynnCipherState checks that our transport
// messages are what flynn/noise's CipherState, which go-libp2p uses,
// produces and accepts: same nonce layout, same framing.
func TestWireCompatibleWithFlynnCipherState(t *testing.T) {
	var key [32]byte
	copy(key[:], "0123456789abcdef0123456789abcdef")
	var sent bytes.Buffer
	w := newConn(&bufConn{w: &sent}, "")
	if err := w.setKeys(key, key); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("abcdefghij"), 20000) // 200000 bytes: 4 messages
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}

	// flynn decrypts what we wrote.
	dec := noise.UnsafeNewCipherState(cipherSuite, key, 0)
	wire := sent.Bytes()
	var got []byte
	for len(wire) > 0 {
		size := int(wire[0])<<8 | int(wire[1])
		if size > maxMessageSize || size > len(wire)-2 {
			t.Fatalf("bad length %d", size)
		}
		var err error
		got, err = dec.Decrypt(got, nil, wire[2:2+size])
		if err != nil {
			t.Fatal(err)
		}
		wire = wire[2+size:]
	}
	if !bytes.Equal(got, data) || dec.Nonce() != 4 {
		t.Fatalf("flynn decrypted %d bytes with nonce %d", len(got), dec.Nonce())
	}

	// We decrypt what flynn writes.
	enc := noise.UnsafeNewCipherState(cipherSuite, key, 0)
	var flynnWire []byte
	for _, msg := range [][]byte{[]byte("one"), {}, []byte("three")} {
		ct, err := enc.Encrypt(nil, nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		flynnWire = append(flynnWire, byte(len(ct)>>8), byte(len(ct)))
		flynnWire = append(flynnWire, ct...)
	}
	r := newConn(&bufConn{r: bytes.NewReader(flynnWire)}, "")
	if err := r.setKeys(key, key); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(r)
	if err != nil || string(all) != "onethree" {
		t.Fatalf("read %q, %v", all, err)
	}
}

func TestNewNilKey(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestTransportID(t *testing.T) {
	if got := newTransport(t, ic.Ed25519).ID(); got != "/noise" {
		t.Fatalf("ID() = %q", got)
	}
}

// holdingConn holds back its second write and sends it together with the
// third, as a peer that packs its last handshake message and its first
// data into one segment does.
type holdingConn struct {
	net.Conn
	writes int
	held   []byte
}

func (c *holdingConn) Write(p []byte) (int, error) {
	c.writes++
	switch c.writes {
	case 2:
		c.held = append([]byte(nil), p...)
		return len(p), nil
	case 3:
		if _, err := c.Conn.Write(append(c.held, p...)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestDataAfterLastHandshakeMessage checks that data arriving in the same
// read as the last handshake message is kept for the Conn.
func TestDataAfterLastHandshakeMessage(t *testing.T) {
	initiator := newTransport(t, ic.Ed25519, yamux)
	responder := newTransport(t, ic.Ed25519, yamux)
	client, server := net.Pipe()
	var in sec.Conn
	var inErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		in, inErr = responder.SecureInbound(context.Background(), server, "")
	}()
	out, err := initiator.SecureOutbound(context.Background(), &holdingConn{Conn: client}, responder.localID)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	wrote := make(chan error, 1)
	go func() {
		_, err := out.Write([]byte("early data"))
		wrote <- err
	}()
	<-done
	if inErr != nil {
		t.Fatal(inErr)
	}
	defer in.Close()
	if c := in.(*Conn); c.rend-c.rpos == 0 {
		t.Fatal("the data did not arrive with the last handshake message")
	}
	buf := make([]byte, 100)
	n, err := in.Read(buf)
	if err != nil || string(buf[:n]) != "early data" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if c := in.(*Conn); c.big != nil || c.rpos != 0 || c.rend != 0 {
		t.Error("read buffer not released after everything was read")
	}
}

// TestIdleConnHoldsNoPooledBuffer checks that a connection holds only its
// inline buffer after the handshake and after a large transfer.
func TestIdleConnHoldsNoPooledBuffer(t *testing.T) {
	initiator := newTransport(t, ic.RSA)
	responder := newTransport(t, ic.RSA)
	out, in := securePair(t, connPairs[1], initiator, responder)
	for _, c := range []*Conn{out, in} {
		if c.big != nil {
			t.Error("pooled read buffer held after the handshake")
		}
	}
	data := make([]byte, 3*bigBufSize)
	wrote := make(chan error, 1)
	go func() {
		_, err := out.Write(bytes.Clone(data))
		wrote <- err
	}()
	if _, err := io.ReadFull(in, data); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if in.big != nil {
		t.Error("pooled read buffer held after the transfer")
	}
}

// noDeadlineConn is a connection without deadlines.
type noDeadlineConn struct{ net.Conn }

var errNoDeadlines = errors.New("deadlines not supported")

func (noDeadlineConn) SetDeadline(time.Time) error      { return errNoDeadlines }
func (noDeadlineConn) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (noDeadlineConn) SetWriteDeadline(time.Time) error { return errNoDeadlines }

// TestHandshakeContextWithoutDeadlines checks that a connection without
// deadlines is closed when the context ends.
func TestHandshakeContextWithoutDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tpt := newTransport(t, ic.Ed25519)
		local, remote := net.Pipe()
		defer remote.Close()
		go silentPeer(remote)

		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		start := time.Now()
		_, err := tpt.SecureOutbound(ctx, noDeadlineConn{local}, "")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want the context's deadline", err)
		}
		if d := time.Since(start); d != 4*time.Second {
			t.Fatalf("handshake gave up after %v, want 4s", d)
		}
		if !isClosed(local) {
			t.Error("raw connection left open")
		}
	})
}
