package quic_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport/quic"

	quicgo "github.com/quic-go/quic-go"
)

const benchWrite = 1 << 20

// drain reads r to EOF with a large buffer and reports the byte count.
func drain(r io.Reader, done chan<- int64) {
	buf := make([]byte, benchWrite)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err != nil {
			done <- n
			return
		}
	}
}

// pump writes b.N MiB to w, closes it for writing and waits for the
// reader to have it all.
func pump(b *testing.B, w io.Writer, closeWrite func() error, done <-chan int64) {
	buf := make([]byte, benchWrite)
	b.SetBytes(benchWrite)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := closeWrite(); err != nil {
		b.Fatal(err)
	}
	if n := <-done; n != int64(b.N)*benchWrite {
		b.Fatalf("read %d bytes; want %d", n, int64(b.N)*benchWrite)
	}
}

// BenchmarkThroughput: one stream of one p2pnet QUIC connection, 1 MiB
// writes.
func BenchmarkThroughput(b *testing.B) {
	a, n := newNode(b), newNode(b)
	l := listen(b, n, "/ip4/127.0.0.1/udp/0/quic-v1")
	c, sc := connect(b, a, l, n.id)
	defer c.Close()
	defer sc.Close()
	s, err := c.OpenStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	done := make(chan int64, 1)
	go func() {
		r, err := sc.AcceptStream()
		if err != nil {
			done <- 0
			return
		}
		defer r.Close()
		drain(r, done)
	}()
	pump(b, s, s.CloseWrite, done)
}

// BenchmarkBareQUICThroughput is BenchmarkThroughput over quic-go alone,
// with the same configuration and plain TLS: the measure of what the
// libp2p layer costs.
func BenchmarkBareQUICThroughput(b *testing.B) {
	client, server, closeAll := bareQUIC(b)
	defer closeAll()
	qc, err := client.Dial(context.Background(), server.Addr(), bareClientTLS, bareConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	sc, err := server.Accept(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer sc.CloseWithError(0, "")
	s, err := qc.OpenStreamSync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan int64, 1)
	go func() {
		r, err := sc.AcceptStream(context.Background())
		if err != nil {
			done <- 0
			return
		}
		drain(r, done)
	}()
	pump(b, s, s.Close, done)
}

// BenchmarkDialRequest: a new connection, a stream, one byte there and
// back, and close.
func BenchmarkDialRequest(b *testing.B) {
	a, n := newNode(b), newNode(b)
	l := listen(b, n, "/ip4/127.0.0.1/udp/0/quic-v1")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := c.AcceptStream()
				if err != nil {
					return
				}
				echoByte(s)
				c.AcceptStream() // until the dialer closes
			}()
		}
	}()
	buf := make([]byte, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := a.tr.Dial(ctx, l.Multiaddr(), n.id)
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.OpenStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
		s.Close()
		c.Close()
	}
	b.StopTimer()
	l.Close()
}

// BenchmarkBareQUICDialRequest is BenchmarkDialRequest over quic-go
// alone, with plain TLS.
func BenchmarkBareQUICDialRequest(b *testing.B) {
	client, server, closeAll := bareQUIC(b)
	defer closeAll()
	go func() {
		for {
			c, err := server.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer c.CloseWithError(0, "")
				s, err := c.AcceptStream(context.Background())
				if err != nil {
					return
				}
				echoByte(s)
				c.AcceptStream(context.Background())
			}()
		}
	}()
	buf := make([]byte, 1)
	ctx := context.Background()
	conf := bareConfig()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := client.Dial(ctx, server.Addr(), bareClientTLS, conf)
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.OpenStreamSync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
		s.Close()
		c.CloseWithError(0, "")
	}
}

// echoByte reads one byte from s, writes it back and closes s.
func echoByte(s io.ReadWriteCloser) {
	buf := make([]byte, 1)
	if _, err := io.ReadFull(s, buf); err == nil {
		s.Write(buf)
	}
	s.Close()
}

var _ network.MuxedStream = (*quic.Stream)(nil)

// bareConfig is the quic-go configuration of a p2pnet Transport with the
// default options.
func bareConfig() *quicgo.Config {
	return &quicgo.Config{
		Versions:                       []quicgo.Version{quicgo.Version1},
		HandshakeIdleTimeout:           quic.DefaultHandshakeTimeout,
		MaxIdleTimeout:                 quic.DefaultIdleTimeout,
		KeepAlivePeriod:                quic.DefaultKeepAlivePeriod,
		InitialStreamReceiveWindow:     512 << 10,
		MaxStreamReceiveWindow:         10 << 20,
		InitialConnectionReceiveWindow: 768 << 10,
		MaxConnectionReceiveWindow:     15 << 20,
		MaxIncomingStreams:             quic.DefaultMaxIncomingStreams,
		MaxIncomingUniStreams:          -1,
	}
}

var bareClientTLS = &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"bench"}}

// bareQUIC returns a client quic-go Transport and a listener, on loopback
// sockets of their own.
func bareQUIC(b *testing.B) (*quicgo.Transport, *quicgo.Listener, func()) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"bench"}}
	udpServer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	udpClient, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	st := &quicgo.Transport{Conn: udpServer}
	ct := &quicgo.Transport{Conn: udpClient}
	ln, err := st.Listen(serverTLS, bareConfig())
	if err != nil {
		b.Fatal(err)
	}
	return ct, ln, func() {
		ln.Close()
		ct.Close()
		st.Close()
		udpClient.Close()
		udpServer.Close()
	}
}
