package multistream

import (
	"bytes"
	"io"
	"net"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/p2pnet/p2pnet/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connType makes a connected pair of conns: the dialer's end and the
// listener's end. Both are closed when the test ends.
type connType struct {
	name string
	pair func(tb testing.TB) (dialer, listener net.Conn)
	// halfClose tells whether the conns have CloseWrite.
	halfClose bool
}

var connTypes = []connType{
	{name: "pipe", pair: pipePair},
	{name: "tcp", pair: tcpPair, halfClose: true},
}

// forEachConn runs f as a subtest over every connType.
func forEachConn(t *testing.T, f func(t *testing.T, ct connType)) {
	t.Helper()
	for _, ct := range connTypes {
		t.Run(ct.name, func(t *testing.T) { f(t, ct) })
	}
}

func pipePair(tb testing.TB) (net.Conn, net.Conn) {
	d, l := net.Pipe()
	tb.Cleanup(func() {
		d.Close()
		l.Close()
	})
	return d, l
}

func tcpPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-ch
		tb.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		d.Close()
		tb.Fatal(a.err)
	}
	tb.Cleanup(func() {
		d.Close()
		a.c.Close()
	})
	return d, a.c
}

// recorder is a conn that records every Write call made on it.
type recorder interface {
	net.Conn
	Writes() [][]byte
}

// record wraps c in a recorder that has CloseWrite exactly when c has.
func record(c net.Conn) recorder {
	rc := &recordingConn{Conn: c}
	if _, ok := c.(closeWriter); ok {
		return &recordingHalfConn{rc}
	}
	return rc
}

// recordingConn records every Write call made on the conn it wraps.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex // guards the following
	writes [][]byte
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// Writes returns the recorded writes.
func (c *recordingConn) Writes() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes)
}

// recordingHalfConn is a recordingConn that can half-close.
type recordingHalfConn struct {
	*recordingConn
}

func (c *recordingHalfConn) CloseWrite() error {
	return c.Conn.(closeWriter).CloseWrite()
}

// negotiation is the outcome of Router.Negotiate.
type negotiation struct {
	id  protocol.ID
	h   string
	err error
}

// negotiateAsync runs r.Negotiate(c) in a goroutine. The result must be
// received before the test ends.
func negotiateAsync(r *Router[string], c io.ReadWriter) <-chan negotiation {
	ch := make(chan negotiation, 1)
	go func() {
		id, h, err := r.Negotiate(c)
		ch <- negotiation{id, h, err}
	}()
	return ch
}

// writeAsync writes b to c in a goroutine; when the test ends it closes c
// (to unblock the write) and waits for the goroutine.
func writeAsync(tb testing.TB, c net.Conn, b []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Write(b)
	}()
	tb.Cleanup(func() {
		c.Close()
		<-done
	})
}

// closeWrite half-closes c if it can, and closes it otherwise.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// wire builds the wire encoding of msgs.
func wire(msgs ...string) []byte {
	var b []byte
	for _, m := range msgs {
		b = appendMessage(b, m)
	}
	return b
}

// readMsg reads one message in a test.
func readMsg(t *testing.T, r io.Reader) string {
	t.Helper()
	msg, err := readMessage(r, make([]byte, MaxMessageSize))
	if err != nil {
		t.Fatalf("reading message: %v", err)
	}
	return string(msg)
}

// testRouter has two exact handlers and two match handlers; the handler
// values name the registration that answered.
func testRouter() *Router[string] {
	var r Router[string]
	r.AddHandler("/ipfs/ping/1.0.0", "ping")
	r.AddHandler("/echo/1.0.0", "echo-exact")
	r.AddHandlerMatch("/echo/1", func(id protocol.ID) bool {
		return len(id) >= 7 && id[:7] == "/echo/1"
	}, "echo-match")
	r.AddHandlerMatch("/echo/any", func(id protocol.ID) bool {
		return len(id) >= 6 && id[:6] == "/echo/"
	}, "echo-any")
	return &r
}
