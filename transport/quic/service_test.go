package quic_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
)

// serviceTLS returns a server configuration with a self-signed
// certificate for ALPN proto.
func serviceTLS(t *testing.T, proto string) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{proto}}
	return func(*tls.ClientHelloInfo) (*tls.Config, error) { return conf, nil }
}

// TestServiceSharesSocket: a ServiceListener on port 0 takes the socket
// of the libp2p listener of the same IP; each protocol reaches its own
// listener; the service's connection holds the scope it was given and
// the socket; closing one listener leaves the other serving.
func TestServiceSharesSocket(t *testing.T) {
	a, b := newNode(t), newNode(t)
	l := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
	sl, err := b.tr.ListenService(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), "test/1", serviceTLS(t, "test/1"))
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	if sl.Addr().String() != l.Addr().String() || !sl.Multiaddr().Equal(l.Multiaddr()) {
		t.Fatalf("service on %s, libp2p on %s", sl.Addr(), l.Addr())
	}

	dialService := func() {
		t.Helper()
		scope, _ := a.rcmgr.OpenConnection(network.DirOutbound, false, sl.Multiaddr())
		conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"test/1"}}
		qc, err := a.tr.DialService(context.Background(), sl.Multiaddr(), conf, scope)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := sl.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := sc.ConnectionState().TLS.NegotiatedProtocol; got != "test/1" {
			t.Errorf("negotiated %q", got)
		}
		s, err := qc.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("hi"))
		s.Close()
		rs, err := sc.AcceptStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(rs); err != nil || string(got) != "hi" {
			t.Errorf("read %q, %v", got, err)
		}
		qc.CloseWithError(0, "")
		sc.CloseWithError(0, "")
	}
	dialService()
	c, s := connect(t, a, l, b.id)
	c.Close()
	s.Close()

	l.Close()
	dialService() // the service still serves
	a.rcmgr.waitReleased(t)

	// The libp2p ALPN is refused now that its listener is closed.
	if _, err := a.tr.Dial(context.Background(), sl.Multiaddr(), b.id); err == nil {
		t.Error("a libp2p dial succeeded with no libp2p listener on the socket")
	}
}

// TestListenServiceErrors: a service cannot take libp2p's ALPN, nor an
// ALPN another service holds on the socket.
func TestListenServiceErrors(t *testing.T) {
	n := newNode(t)
	addr := ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")
	if _, err := n.tr.ListenService(addr, "libp2p", serviceTLS(t, "libp2p")); !errors.Is(err, quic.ErrInvalidOption) {
		t.Errorf("ListenService(libp2p) = %v", err)
	}
	sl, err := n.tr.ListenService(addr, "test/1", serviceTLS(t, "test/1"))
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	// The same ALPN on the same port needs a socket of its own, which
	// the port cannot give.
	if sl2, err := n.tr.ListenService(sl.Multiaddr(), "test/1", serviceTLS(t, "test/1")); err == nil {
		sl2.Close()
		t.Error("two listeners of one ALPN on one port")
	}
	conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"libp2p"}}
	if _, err := n.tr.DialService(context.Background(), sl.Multiaddr(), conf, &network.NullScope{}); !errors.Is(err, quic.ErrInvalidOption) {
		t.Errorf("DialService with ALPN libp2p = %v", err)
	}
}
