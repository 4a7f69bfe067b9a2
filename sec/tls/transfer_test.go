package tls

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"testing"
)

// TestTransfer100MiB sends 100 MiB over loopback TCP and checks every
// byte: each 64 KiB chunk is a random block stamped with its index, so
// loss, duplication, reordering and corruption all show.
func TestTransfer100MiB(t *testing.T) {
	const (
		chunk = 64 << 10
		total = 100 << 20
	)
	ct := newTransport(t, ed25519Key(t, 0), yamux)
	st := newTransport(t, ed25519Key(t, 1), yamux)
	craw, sraw := tcpPair(t)
	c, s := mustHandshake(t, ct, st, craw, sraw, peerID(t, ed25519Key(t, 1)), "")
	defer c.Close()
	defer s.Close()

	block := make([]byte, chunk)
	rand.Read(block)
	stamp := func(b []byte, i int) { binary.BigEndian.PutUint64(b, uint64(i)) }

	errc := make(chan error, 1)
	go func() {
		buf := bytes.Clone(block)
		for i := range total / chunk {
			stamp(buf, i)
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.(*Conn).CloseWrite()
	}()

	want := bytes.Clone(block)
	got := make([]byte, chunk)
	for i := range total / chunk {
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		stamp(want, i)
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d differs", i)
		}
	}
	if n, err := s.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("after the data: %d, %v; want EOF", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
