package stacks

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Bare is a sink server of a bare transport (raw TCP, crypto/tls over
// TCP, or a quic-go stream) and a way to reach it: the ceilings the
// libp2p stacks are measured against.
type Bare struct {
	// Open makes a new connection (and stream) to the sink: write, then
	// CloseWrite, then read the one-byte answer.
	Open func(ctx context.Context) (Stream, error)
	// Close stops the server and waits for it.
	Close func()
}

// Bares are the bare transports NewBare knows.
var Bares = []string{"tcp", "tls", "quic"}

// NewBare starts the sink server of the bare transport kind (tcp, tls or
// quic) on loopback.
func NewBare(kind string) (*Bare, error) {
	switch kind {
	case "tcp":
		return bareTCP(nil)
	case "tls":
		conf, err := selfSigned()
		if err != nil {
			return nil, err
		}
		return bareTCP(conf)
	default:
		return bareQUIC()
	}
}

// selfSigned is a TLS 1.3 configuration with a fresh Ed25519 certificate,
// for both ends (the client does not verify it).
func selfSigned() (*tls.Config, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		InsecureSkipVerify: true, // a benchmark ceiling: no peer to authenticate
		NextProtos:         []string{"versus"},
	}, nil
}

// serveSink reads c to its end, answers one byte and closes c.
func serveSink(c interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error
}) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	c.Write([]byte{1})
	c.Close()
}

func bareTCP(conf *tls.Config) (*Bare, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if conf != nil {
					serveSink(tls.Server(c, conf))
					return
				}
				serveSink(c)
			}()
		}
	}()
	return &Bare{
		Open: func(ctx context.Context) (Stream, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", l.Addr().String())
			if err != nil {
				return nil, err
			}
			if conf == nil {
				return c.(*net.TCPConn), nil
			}
			tc := tls.Client(c, conf)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return nil, err
			}
			return tc, nil
		},
		Close: func() { l.Close(); wg.Wait() },
	}, nil
}

// quicStream closes its connection with the stream.
type quicStream struct {
	*quic.Stream
	conn *quic.Conn
}

func (s quicStream) CloseWrite() error { return s.Stream.Close() }
func (s quicStream) Close() error {
	s.Stream.Close()
	return s.conn.CloseWithError(0, "")
}

func bareQUIC() (*Bare, error) {
	conf, err := selfSigned()
	if err != nil {
		return nil, err
	}
	l, err := quic.ListenAddr("127.0.0.1:0", conf, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept(ctx)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := c.AcceptStream(ctx)
				if err != nil {
					c.CloseWithError(0, "")
					return
				}
				serveSink(s) // Close closes the send side only
				// Wait for the client to close, so the answer is delivered.
				select {
				case <-c.Context().Done():
				case <-ctx.Done():
					c.CloseWithError(0, "")
				}
			}()
		}
	}()
	return &Bare{
		Open: func(ctx context.Context) (Stream, error) {
			c, err := quic.DialAddr(ctx, l.Addr().String(), conf, nil)
			if err != nil {
				return nil, err
			}
			s, err := c.OpenStreamSync(ctx)
			if err != nil {
				c.CloseWithError(0, "")
				return nil, err
			}
			return quicStream{s, c}, nil
		},
		Close: func() { cancel(); l.Close(); wg.Wait() },
	}, nil
}
