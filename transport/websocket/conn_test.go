package websocket

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	ma "github.com/multiformats/go-multiaddr"
)

var (
	testLaddr = ma.StringCast("/ip4/127.0.0.1/tcp/1/ws")
	testRaddr = ma.StringCast("/ip4/127.0.0.1/tcp/2/ws")
)

// pipePair returns the two ends of a WebSocket connection over net.Pipe:
// the client's, dialed, and the server's, whose handshake ran on its
// side as on a listener's connection. Both are closed when the test ends.
func pipePair(t *testing.T) (client, server *Conn) {
	t.Helper()
	cr, sr := net.Pipe()
	server = newConn(&deadlineConn{Conn: sr}, nil, testLaddr, testRaddr)
	hs := make(chan error, 1)
	go func() { hs <- server.handshake() }()
	cdc := &deadlineConn{Conn: cr}
	ws, err := clientHandshake(context.Background(), cdc, "127.0.0.1:1", false)
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-hs; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	client = newConn(cdc, ws, testRaddr, testLaddr)
	t.Cleanup(func() {
		client.dc.Close()
		server.dc.Close()
	})
	return client, server
}

// readAll reads c to its end with reads of at most chunk bytes, counting
// the reads.
func readAll(c net.Conn, chunk int) ([]byte, int, error) {
	var out []byte
	buf := make([]byte, chunk)
	reads := 0
	for {
		n, err := c.Read(buf)
		if n > 0 {
			reads++
		}
		out = append(out, buf[:n]...)
		if err != nil {
			return out, reads, err
		}
	}
}

// TestByteStream: each Write is a binary message; reads see the bytes in
// order whatever the message boundaries, a read smaller than a message
// gets part of it, empty messages are skipped, and the remote's Close
// reads as io.EOF.
func TestByteStream(t *testing.T) {
	client, server := pipePair(t)
	big := make([]byte, 1<<20)
	rand.Read(big)
	msgs := [][]byte{[]byte("hello"), {}, []byte("world!"), big}
	go func() {
		for _, m := range msgs {
			if _, err := client.Write(m); err != nil {
				t.Error(err)
			}
		}
		client.Close()
	}()
	got, reads, err := readAll(server, 3)
	if err != io.EOF {
		t.Errorf("read after the remote's Close: %v; want io.EOF", err)
	}
	if want := bytes.Join(msgs, nil); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes; want %d, the messages' bytes in order", len(got), len(want))
	}
	if min := (1<<20)/3 + 4; reads < min {
		t.Errorf("%d reads of at most 3 bytes returned %d bytes", reads, len(got))
	}
	// Now the other way, with reads larger than the messages.
	client2, server2 := pipePair(t)
	go func() {
		server2.Write([]byte("a"))
		server2.Write([]byte("bc"))
		server2.Close()
	}()
	got, _, err = readAll(client2, 100)
	if err != io.EOF || string(got) != "abc" {
		t.Errorf("client read %q, %v; want abc, EOF", got, err)
	}
}

// TestTextMessage: a text message fails the reader with ErrTextMessage,
// and the remote is told 1003 (unsupported data).
func TestTextMessage(t *testing.T) {
	cr, sr := net.Pipe()
	defer cr.Close()
	server := newConn(&deadlineConn{Conn: sr}, nil, testLaddr, testRaddr)
	defer server.Close()
	got := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 10))
		got <- err
	}()
	ws, err := clientHandshake(context.Background(), &deadlineConn{Conn: cr}, "127.0.0.1:1", false)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetCloseHandler(func(int, string) error { return nil }) // the server reads no more
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.NextReader()
	if !websocket.IsCloseError(err, websocket.CloseUnsupportedData) {
		t.Errorf("client read %v; want a close with 1003", err)
	}
	if err := <-got; !errors.Is(err, ErrTextMessage) {
		t.Errorf("server read %v; want ErrTextMessage", err)
	}
	if _, err := server.Read(make([]byte, 1)); !errors.Is(err, ErrTextMessage) {
		t.Errorf("second read %v; the error must stick", err)
	}
}

// TestRemoteClose: how the ways a remote ends read.
func TestRemoteClose(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(c *Conn)
		want  error
	}{
		{"normal", func(c *Conn) { c.Close() }, io.EOF},
		{"going away", func(c *Conn) { closeWith(c, websocket.CloseGoingAway) }, io.EOF},
		{"internal error", func(c *Conn) { closeWith(c, websocket.CloseInternalServerErr) }, ErrClosedByRemote},
		{"socket only", func(c *Conn) { c.dc.Close() }, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := pipePair(t)
			go tc.close(client)
			_, _, err := readAll(server, 10)
			if !errors.Is(err, tc.want) {
				t.Errorf("read %v; want %v", err, tc.want)
			}
			var ce *websocket.CloseError
			if tc.want == ErrClosedByRemote && (!errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr) {
				t.Errorf("%v does not carry the close code", err)
			}
			// Writing after the remote's close frame: the library answered
			// it, so writes fail.
			if tc.want == io.EOF {
				if _, err := server.Write([]byte("x")); err == nil {
					t.Error("write after a close handshake succeeded")
				}
			}
		})
	}
}

func closeWith(c *Conn, code int) {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	c.dc.Close()
}

// TestDeadlines: deadlines interrupt reads and writes that wait, at the
// time set, also when set from another goroutine; the library clearing
// its own deadlines in its handshake leaves ours; a pong the library
// writes with a deadline of its own leaves nothing behind.
func TestDeadlines(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, server := pipePair(t)
			start := time.Now()
			server.SetReadDeadline(start.Add(time.Second))
			_, err := server.Read(make([]byte, 1))
			if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
				t.Errorf("read = %v after %v; want a deadline error after 1s", err, time.Since(start))
			}
			if _, err := server.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("read after the timeout: %v", err)
			}
		})
	})
	t.Run("write set while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			client, _ := pipePair(t) // nobody reads the server's end
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				_, err := client.Write(make([]byte, 100))
				done <- err
			}()
			synctest.Wait() // the write waits for a reader
			client.SetWriteDeadline(start.Add(2 * time.Second))
			err := <-done
			if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 2*time.Second {
				t.Errorf("write = %v after %v; want a deadline error after 2s", err, time.Since(start))
			}
		})
	})
	t.Run("survives the handshake", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cr, sr := net.Pipe()
			server := newConn(&deadlineConn{Conn: sr}, nil, testLaddr, testRaddr)
			defer server.dc.Close()
			defer cr.Close()
			start := time.Now()
			server.SetReadDeadline(start.Add(5 * time.Second)) // as the upgrader does before its handshake
			got := make(chan error, 1)
			go func() {
				_, err := server.Read(make([]byte, 1)) // handshake, then waits for data
				got <- err
			}()
			if _, err := clientHandshake(context.Background(), &deadlineConn{Conn: cr}, "127.0.0.1:1", false); err != nil {
				t.Fatal(err)
			}
			err := <-got
			if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 5*time.Second {
				t.Errorf("read = %v after %v; want a deadline error after 5s", err, time.Since(start))
			}
		})
	})
	t.Run("pong", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			client, server := pipePair(t)
			start := time.Now()
			server.SetWriteDeadline(start.Add(time.Minute))
			go readAll(client, 100) // reads the pong and what follows
			read := make(chan error, 1)
			go func() {
				_, err := server.Read(make([]byte, 1)) // answers the ping, then waits
				read <- err
			}()
			if err := client.ws.WriteControl(websocket.PingMessage, []byte("p"), start.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			time.Sleep(10 * time.Second) // the pong's own deadline (1 s) is long past
			if _, err := server.Write([]byte("x")); err != nil {
				t.Errorf("write after a pong: %v", err)
			}
			server.dc.Close()
			<-read
		})
	})
}

// TestCloseCancelsHandshake: closing an inbound connection whose
// handshake waits for the request ends the handshake.
func TestCloseCancelsHandshake(t *testing.T) {
	cr, sr := net.Pipe()
	defer cr.Close()
	server := newConn(&deadlineConn{Conn: sr}, nil, testLaddr, testRaddr)
	got := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 1))
		got <- err
	}()
	cr.Write([]byte("GET / HTTP/1.1\r\n")) // and no more
	server.Close()
	if err := <-got; !errors.Is(err, ErrHandshake) {
		t.Errorf("read = %v; want ErrHandshake", err)
	}
}

// TestHandshakeRefusals: what is not a WebSocket upgrade request is
// answered with an HTTP error and fails the connection.
func TestHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, request string
		status        int // 0: no answer
	}{
		{"plain GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
		{"POST upgrade", "POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n", http.StatusMethodNotAllowed},
		{"old version", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", http.StatusBadRequest},
		{"bad key", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n", http.StatusBadRequest},
		{"huge header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2*maxRequestBytes) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"not HTTP", "\x13/multistream/1.0.0\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr, sr := net.Pipe()
			server := newConn(&deadlineConn{Conn: sr}, nil, testLaddr, testRaddr)
			got := make(chan error, 1)
			go func() {
				_, err := server.Read(make([]byte, 1))
				server.Close()
				got <- err
			}()
			go func() {
				cr.Write([]byte(tc.request)) // may stop early: the server stops reading
			}()
			resp, rerr := http.ReadResponse(bufio.NewReader(cr), nil)
			if err := <-got; !errors.Is(err, ErrHandshake) {
				t.Errorf("server read = %v; want ErrHandshake", err)
			}
			cr.Close()
			switch {
			case tc.status == 0 && rerr == nil:
				t.Errorf("answered %s; want no answer", resp.Status)
			case tc.status != 0 && rerr != nil:
				t.Errorf("no answer (%v); want %d", rerr, tc.status)
			case tc.status != 0 && resp.StatusCode != tc.status:
				t.Errorf("answered %s; want %d", resp.Status, tc.status)
			}
		})
	}
}

// TestClientHandshakeCancel: cancelling the dial's context ends a client
// handshake that waits for the answer.
func TestClientHandshakeCancel(t *testing.T) {
	cr, sr := net.Pipe()
	defer sr.Close()
	go io.Copy(io.Discard, sr) // reads the request, never answers
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := clientHandshake(ctx, &deadlineConn{Conn: cr}, "127.0.0.1:1", false)
		got <- err
	}()
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrHandshake) {
		t.Errorf("handshake = %v; want ErrHandshake wrapping context.Canceled", err)
	}
	cr.Close()
}
