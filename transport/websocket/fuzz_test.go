package websocket

import (
	"errors"
	"io"
	"net"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// FuzzServerConn feeds what a client sends (an upgrade request, then
// frames) to an inbound connection, which reads it to the end: it must
// neither panic nor hang, and must end with an error once the input ends.
func FuzzServerConn(f *testing.F) {
	req := "GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	f.Add([]byte(req))
	f.Add([]byte(req + string(maskedFrame(0x82, []byte("hello")))))                                         // binary
	f.Add([]byte(req + string(maskedFrame(0x02, []byte("hel"))) + string(maskedFrame(0x80, []byte("lo"))))) // fragmented
	f.Add([]byte(req + string(maskedFrame(0x81, []byte("text")))))                                          // text
	f.Add([]byte(req + string(maskedFrame(0x89, []byte("ping"))) + string(maskedFrame(0x82, nil))))         // ping, empty binary
	f.Add([]byte(req + string(maskedFrame(0x88, []byte{0x03, 0xe8}))))                                      // close 1000
	f.Add([]byte(req + "\x82\x05hello"))                                                                    // unmasked
	f.Add([]byte(req + "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff"))                                         // huge length
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("\x13/multistream/1.0.0\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		cr, sr := net.Pipe()
		server := newConn(&deadlineConn{Conn: sr}, nil, testLaddr, testRaddr)
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, cr) // responses, pongs, close frames
			close(drained)
		}()
		go func() {
			cr.Write(in)
			cr.Close()
		}()
		buf := make([]byte, 7)
		var err error
		for err == nil {
			_, err = server.Read(buf)
		}
		if errors.Is(err, errRequestTooLarge) {
			t.Errorf("a read returned the limit's internal error: %v", err)
		}
		server.Close()
		<-drained
	})
}

// maskedFrame is a frame as a client sends it: first byte b0 (FIN and
// opcode), masked with a fixed key.
func maskedFrame(b0 byte, payload []byte) []byte {
	key := [4]byte{1, 2, 3, 4}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	default:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

// FuzzParseAddr: parseAddr takes any multiaddr without panicking, and
// what it accepts is dialable in the form it says.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"/ip4/127.0.0.1/tcp/1/ws", "/ip6/::1/tcp/443/wss", "/dns4/a.example/tcp/443/tls/ws",
		"/dns/a.example/tcp/443/tls/sni/b.example/ws", "/ip4/1.2.3.4/tcp/1", "/ip4/1.2.3.4/udp/1/quic-v1",
	} {
		f.Add(ma.StringCast(s).Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		w, err := parseAddr(a)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedAddr) {
				t.Errorf("parseAddr(%s) = %v; want ErrUnsupportedAddr", a, err)
			}
			return
		}
		if w.host == "" || w.port < 0 || w.port > 65535 || (w.sni != "" && !w.tls) {
			t.Errorf("parseAddr(%s) = %+v", a, w)
		}
		if _, _, err := net.SplitHostPort(w.hostPort()); err != nil {
			t.Errorf("parseAddr(%s): host:port %q: %v", a, w.hostPort(), err)
		}
	})
}
