package tls

import (
	"bytes"
	stdtls "crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
)

const yamux protocol.ID = "/yamux/1.0.0"

func TestHandshakeKeyTypes(t *testing.T) {
	for _, cp := range connPairs {
		for _, kt := range keyTypes {
			t.Run(cp.name+"/"+kt.name, func(t *testing.T) {
				clientKey := hostKey(t, kt.typ, kt.bits, 0)
				serverKey := hostKey(t, kt.typ, kt.bits, 1)
				ct := newTransport(t, clientKey, yamux)
				st := newTransport(t, serverKey, yamux)
				craw, sraw := cp.pair(t)
				// The server accepts anyone: an empty expected peer.
				c, s := mustHandshake(t, ct, st, craw, sraw, peerID(t, serverKey), "")

				checkSecurity(t, c, clientKey, serverKey)
				checkSecurity(t, s, serverKey, clientKey)
				exchange(t, c, s)
			})
		}
	}
}

// checkSecurity checks what c knows about both ends.
func checkSecurity(t *testing.T, c sec.Conn, local, remote ic.PrivKey) {
	t.Helper()
	if c.LocalPeer() != peerID(t, local) {
		t.Errorf("LocalPeer = %s, want %s", c.LocalPeer(), peerID(t, local))
	}
	if c.RemotePeer() != peerID(t, remote) {
		t.Errorf("RemotePeer = %s, want %s", c.RemotePeer(), peerID(t, remote))
	}
	if !c.RemotePublicKey().Equals(remote.GetPublic()) {
		t.Error("RemotePublicKey is not the remote's key")
	}
	want := network.ConnectionState{StreamMultiplexer: yamux, Security: ID, UsedEarlyMuxerNegotiation: true}
	if got := c.ConnState(); got != want {
		t.Errorf("ConnState = %+v, want %+v", got, want)
	}
}

// exchange sends a message each way, concurrently so that it works over
// a synchronous pipe.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	errc := make(chan error, 2)
	send := func(from, to net.Conn, msg string) {
		go func() {
			_, err := from.Write([]byte(msg))
			errc <- err
		}()
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(to, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Fatalf("read %q, want %q", buf, msg)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	send(a, b, "ping from the dialer")
	send(b, a, "pong from the listener")
}

// The failure tests run over TCP: over a synchronous pipe, the side that
// sends an alert and the side still writing its flight block each other.

func TestOutboundPeerMismatch(t *testing.T) {
	serverKey, wrongKey := ed25519Key(t, 1), ed25519Key(t, 2)
	ct := newTransport(t, ed25519Key(t, 0), yamux)
	st := newTransport(t, serverKey, yamux)
	craw, sraw := tcpPair(t)
	cr, sch := handshake(t.Context(), ct, st, craw, sraw, peerID(t, wrongKey), "")
	sr := <-sch
	if !errors.Is(cr.err, sec.ErrPeerIDMismatch) {
		t.Fatalf("client error = %v, want ErrPeerIDMismatch", cr.err)
	}
	var me *sec.MismatchError
	if !errors.As(cr.err, &me) {
		t.Fatalf("client error %v is not a *sec.MismatchError", cr.err)
	}
	if me.Expected != peerID(t, wrongKey) || me.Actual != peerID(t, serverKey) {
		t.Errorf("MismatchError{%s, %s}, want {%s, %s}", me.Expected, me.Actual, peerID(t, wrongKey), peerID(t, serverKey))
	}
	if cr.conn != nil {
		t.Error("client got a connection")
	}
	if sr.err == nil {
		t.Error("server handshake succeeded against a client that rejected it")
	}
	checkClosed(t, craw)
	checkClosed(t, sraw)
}

func TestInboundPeerMismatch(t *testing.T) {
	clientKey, wrongKey := ed25519Key(t, 0), ed25519Key(t, 2)
	ct := newTransport(t, clientKey, yamux)
	st := newTransport(t, ed25519Key(t, 1), yamux)
	craw, sraw := tcpPair(t)
	cr, sch := handshake(t.Context(), ct, st, craw, sraw, "", peerID(t, wrongKey))
	// In TLS 1.3 the client is done before the server has judged
	// it; the server's verdict arrives as an alert on first read.
	if cr.err != nil {
		t.Fatalf("client handshake: %v", cr.err)
	}
	if _, err := cr.conn.Read(make([]byte, 1)); err == nil {
		t.Error("client read succeeded on a connection the server rejected")
	}
	sr := <-sch
	var me *sec.MismatchError
	if !errors.As(sr.err, &me) || !errors.Is(sr.err, sec.ErrPeerIDMismatch) {
		t.Fatalf("server error = %v, want *sec.MismatchError", sr.err)
	}
	if me.Expected != peerID(t, wrongKey) || me.Actual != peerID(t, clientKey) {
		t.Errorf("MismatchError{%s, %s}, want {%s, %s}", me.Expected, me.Actual, peerID(t, wrongKey), peerID(t, clientKey))
	}
	checkClosed(t, sraw)
}

// checkClosed checks that c has been closed locally.
func checkClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_, err := c.Write([]byte{0})
	if !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write on the raw connection: %v, want it closed", err)
	}
}

func TestMuxerNegotiation(t *testing.T) {
	const mplex protocol.ID = "/mplex/6.7.0"
	const other protocol.ID = "/other/1.0.0"
	tests := []struct {
		name           string
		client, server []protocol.ID
		want           protocol.ID
	}{
		{"same", []protocol.ID{yamux, mplex}, []protocol.ID{yamux, mplex}, yamux},
		{"client preference wins", []protocol.ID{mplex, yamux}, []protocol.ID{yamux, mplex}, mplex},
		{"client preference wins reversed", []protocol.ID{yamux, mplex}, []protocol.ID{mplex, yamux}, yamux},
		{"partial overlap", []protocol.ID{other, yamux}, []protocol.ID{mplex, yamux}, yamux},
		{"disjoint", []protocol.ID{yamux}, []protocol.ID{mplex}, ""},
		{"client has none", nil, []protocol.ID{yamux}, ""},
		{"server has none", []protocol.ID{yamux}, nil, ""},
		{"neither has any", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := newTransport(t, ed25519Key(t, 0), tt.client...)
			st := newTransport(t, ed25519Key(t, 1), tt.server...)
			craw, sraw := pipePair(t)
			c, s := mustHandshake(t, ct, st, craw, sraw, peerID(t, ed25519Key(t, 1)), "")
			want := network.ConnectionState{StreamMultiplexer: tt.want, Security: ID, UsedEarlyMuxerNegotiation: tt.want != ""}
			if got := c.ConnState(); got != want {
				t.Errorf("client ConnState = %+v, want %+v", got, want)
			}
			if got := s.ConnState(); got != want {
				t.Errorf("server ConnState = %+v, want %+v", got, want)
			}
		})
	}
}

func TestNewRejectsBadMuxers(t *testing.T) {
	for _, m := range []protocol.ID{"", "libp2p", protocol.ID(bytes.Repeat([]byte{'a'}, 256))} {
		if _, err := New(ed25519Key(t, 0), []protocol.ID{yamux, m}); !errors.Is(err, ErrInvalidMuxer) {
			t.Errorf("New with muxer %q: %v, want ErrInvalidMuxer", m, err)
		}
	}
	if tr := newTransport(t, ed25519Key(t, 0)); tr.ID() != "/tls/1.0.0" {
		t.Errorf("ID() = %q", tr.ID())
	}
}

func TestGarbageFromNetwork(t *testing.T) {
	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		{0x16, 0x03, 0x01, 0xff, 0xff, 0x01}, // a handshake record claiming 64 KiB
		{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28},
		bytes.Repeat([]byte{0x16}, 4096),
	}
	for _, g := range garbage {
		for _, inbound := range []bool{true, false} {
			tr := newTransport(t, ed25519Key(t, 0), yamux)
			raw, remote := net.Pipe()
			go io.Copy(io.Discard, remote) // swallow what we send
			go func() {
				remote.Write(g)
				remote.Close()
			}()
			var err error
			if inbound {
				_, err = tr.SecureInbound(t.Context(), raw, "")
			} else {
				_, err = tr.SecureOutbound(t.Context(), raw, peerID(t, ed25519Key(t, 1)))
			}
			if err == nil {
				t.Errorf("handshake against %q succeeded", g)
			}
			checkClosed(t, raw)
		}
	}
}

func TestCloseWrite(t *testing.T) {
	ct := newTransport(t, ed25519Key(t, 0), yamux)
	st := newTransport(t, ed25519Key(t, 1), yamux)
	craw, sraw := tcpPair(t)
	c, s := mustHandshake(t, ct, st, craw, sraw, peerID(t, ed25519Key(t, 1)), "")
	defer c.Close()
	defer s.Close()
	cc := c.(*Conn)

	if _, err := cc.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := cc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v; want %q, EOF", got, err, "request")
	}
	// The raw connection is half-closed too.
	if n, err := sraw.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("raw read after CloseWrite: %d, %v; want 0, EOF", n, err)
	}
	// The other direction still works.
	if _, err := s.Write([]byte("response")); err != nil {
		t.Fatal(err)
	}
	if err := s.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "response" {
		t.Fatalf("client read %q, %v; want %q, EOF", got, err, "response")
	}
	if _, err := cc.Write([]byte("more")); err == nil {
		t.Error("write after CloseWrite succeeded")
	}
}

func TestConfigForPeer(t *testing.T) {
	clientKey, serverKey := ed25519Key(t, 0), ed25519Key(t, 1)
	ci, err := NewIdentity(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	si, err := NewIdentity(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	craw, sraw := pipePair(t)
	ccfg, ckeys := ci.ConfigForPeer(peerID(t, serverKey), []string{ALPN})
	scfg, skeys := si.ConfigForPeer("", []string{ALPN})
	client, server := tlsClient(craw, ccfg), tlsServer(sraw, scfg)
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(t.Context()) }()
	if err := client.HandshakeContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		keys <-chan ic.PubKey
		want ic.PrivKey
		alpn string
	}{{ckeys, serverKey, client.ConnectionState().NegotiatedProtocol}, {skeys, clientKey, server.ConnectionState().NegotiatedProtocol}} {
		select {
		case k := <-side.keys:
			if !k.Equals(side.want.GetPublic()) {
				t.Error("verified key is not the peer's")
			}
		default:
			t.Error("no key after a successful handshake")
		}
		if side.alpn != ALPN {
			t.Errorf("ALPN = %q, want %q", side.alpn, ALPN)
		}
	}
}

// TestClientHello checks what our client offers on the wire: TLS 1.3
// only, no server name, and the multiplexers in order followed by
// "libp2p".
func TestClientHello(t *testing.T) {
	tr := newTransport(t, ed25519Key(t, 0), yamux, "/mplex/6.7.0")
	craw, sraw := pipePair(t)
	hellos := make(chan *stdtls.ClientHelloInfo, 1)
	srv := tlsServer(sraw, &stdtls.Config{
		GetConfigForClient: func(hello *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
			hellos <- hello
			return nil, errors.New("seen enough")
		},
	})
	go srv.HandshakeContext(t.Context())
	if _, err := tr.SecureOutbound(t.Context(), craw, peerID(t, ed25519Key(t, 1))); err == nil {
		t.Fatal("handshake succeeded")
	}
	hello := <-hellos
	if hello.ServerName != "" {
		t.Errorf("ServerName = %q, want none", hello.ServerName)
	}
	if !slices.Equal(hello.SupportedVersions, []uint16{stdtls.VersionTLS13}) {
		t.Errorf("SupportedVersions = %x, want only TLS 1.3", hello.SupportedVersions)
	}
	if want := []string{"/yamux/1.0.0", "/mplex/6.7.0", "libp2p"}; !slices.Equal(hello.SupportedProtos, want) {
		t.Errorf("ALPN offer = %q, want %q", hello.SupportedProtos, want)
	}
}
