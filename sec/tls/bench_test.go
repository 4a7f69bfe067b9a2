package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkHandshake measures a full handshake, both sides, over a pipe.
func BenchmarkHandshake(b *testing.B) {
	ct := newTransport(b, ed25519Key(b, 0), yamux)
	st := newTransport(b, ed25519Key(b, 1), yamux)
	serverID := peerID(b, ed25519Key(b, 1))
	b.ReportAllocs()
	for b.Loop() {
		craw, sraw := net.Pipe()
		cr, sch := handshake(b.Context(), ct, st, craw, sraw, serverID, "")
		sr := <-sch
		if cr.err != nil || sr.err != nil {
			b.Fatal(cr.err, sr.err)
		}
		craw.Close()
		sraw.Close()
	}
}

// BenchmarkThroughput measures one direction of a connection over
// loopback TCP in 1 MiB writes, for libp2p TLS and for bare crypto/tls
// with the same kind of certificate, the baseline DESIGN.md compares to.
func BenchmarkThroughput(b *testing.B) {
	b.Run("libp2p", func(b *testing.B) {
		ct := newTransport(b, ed25519Key(b, 0), yamux)
		st := newTransport(b, ed25519Key(b, 1), yamux)
		craw, sraw := tcpPair(b)
		c, s := mustHandshake(b, ct, st, craw, sraw, peerID(b, ed25519Key(b, 1)), "")
		benchThroughput(b, c, s)
	})
	b.Run("bare", func(b *testing.B) {
		cert := bareCert(b)
		craw, sraw := tcpPair(b)
		c := stdtls.Client(craw, &stdtls.Config{MinVersion: stdtls.VersionTLS13, InsecureSkipVerify: true})
		s := stdtls.Server(sraw, &stdtls.Config{MinVersion: stdtls.VersionTLS13, Certificates: []stdtls.Certificate{cert}})
		errc := make(chan error, 1)
		go func() { errc <- s.Handshake() }()
		if err := c.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		benchThroughput(b, c, s)
	})
}

// benchThroughput writes 1 MiB per iteration from w while r is drained.
func benchThroughput(b *testing.B, w, r net.Conn) {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := r.Read(buf); err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	r.Close()
}

// bareCert returns a self-signed ECDSA P-256 certificate without the
// libp2p extension.
func bareCert(b *testing.B) stdtls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "bench"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
