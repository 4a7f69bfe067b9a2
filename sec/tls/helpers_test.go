package tls

import (
	"context"
	"net"
	"sync"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var keyTypes = []struct {
	name string
	typ  ic.KeyType
	bits int
}{
	{"Ed25519", ic.Ed25519, 0},
	{"Secp256k1", ic.Secp256k1, 0},
	{"ECDSA", ic.ECDSA, 256},
	{"RSA", ic.RSA, 2048},
}

// testKeys caches host keys: RSA generation is slow under -race.
var testKeys struct {
	mu   sync.Mutex // guards the following
	keys map[[2]int]ic.PrivKey
}

// hostKey returns the n-th cached key of type typ.
func hostKey(t testing.TB, typ ic.KeyType, bits, n int) ic.PrivKey {
	t.Helper()
	testKeys.mu.Lock()
	defer testKeys.mu.Unlock()
	if testKeys.keys == nil {
		testKeys.keys = make(map[[2]int]ic.PrivKey)
	}
	k := [2]int{int(typ), n}
	if priv, ok := testKeys.keys[k]; ok {
		return priv
	}
	priv, _, err := ic.GenerateKeyPair(typ, bits)
	if err != nil {
		t.Fatal(err)
	}
	testKeys.keys[k] = priv
	return priv
}

func ed25519Key(t testing.TB, n int) ic.PrivKey { return hostKey(t, ic.Ed25519, 0, n) }

func peerID(t testing.TB, priv ic.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPublicKey(priv.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newTransport(t testing.TB, priv ic.PrivKey, muxers ...protocol.ID) *Transport {
	t.Helper()
	tr, err := New(priv, muxers)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// connPairs are the raw connections handshakes run over: a synchronous
// in-memory pipe and loopback TCP.
var connPairs = []struct {
	name string
	pair func(t testing.TB) (client, server net.Conn)
}{
	{"pipe", pipePair},
	{"tcp", tcpPair},
}

// pipePair returns the two ends of a net.Pipe, closed at cleanup.
func pipePair(t testing.TB) (net.Conn, net.Conn) {
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// tcpPair returns both ends of a loopback TCP connection, closed at
// cleanup.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
	c, err := net.Dial("tcp", ln.Addr().String())
	r := <-accepted
	if err != nil || r.err != nil {
		if c != nil {
			c.Close()
		}
		if r.c != nil {
			r.c.Close()
		}
		t.Fatal(err, r.err)
	}
	t.Cleanup(func() { c.Close(); r.c.Close() })
	return c, r.c
}

type handshakeResult struct {
	conn sec.Conn
	err  error
}

// handshake runs SecureOutbound on client (expecting clientWant) and
// SecureInbound on server (expecting serverWant) concurrently, and returns
// the client's result and a channel that delivers the server's. The
// server's result can depend on the client reading: over a pipe, a
// server's alert waits for the client to read it.
func handshake(ctx context.Context, ct, st *Transport, client, server net.Conn, clientWant, serverWant peer.ID) (handshakeResult, <-chan handshakeResult) {
	done := make(chan handshakeResult, 1)
	go func() {
		conn, err := st.SecureInbound(ctx, server, serverWant)
		done <- handshakeResult{conn, err}
	}()
	conn, err := ct.SecureOutbound(ctx, client, clientWant)
	return handshakeResult{conn, err}, done
}

// mustHandshake runs a handshake that both sides must pass.
func mustHandshake(t testing.TB, ct, st *Transport, client, server net.Conn, clientWant, serverWant peer.ID) (c, s sec.Conn) {
	t.Helper()
	cr, sch := handshake(t.Context(), ct, st, client, server, clientWant, serverWant)
	sr := <-sch
	if cr.err != nil || sr.err != nil {
		t.Fatalf("handshake: client: %v, server: %v", cr.err, sr.err)
	}
	return cr.conn, sr.conn
}
