package noise

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
)

// countingConn counts the reads and writes made on a net.Conn and the
// sizes of the reads.
type countingConn struct {
	net.Conn
	mu         sync.Mutex // guards the following
	writes     []int
	smallReads int // reads that returned at most smallReadSize bytes
	reads      int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reads++
	if n <= smallReadSize {
		c.smallReads++
	}
	c.mu.Unlock()
	return n, err
}

// countingPair is a net.Pipe whose ends count their reads and writes.
func countingPair() (*countingConn, *countingConn) {
	a, b := net.Pipe()
	return &countingConn{Conn: a}, &countingConn{Conn: b}
}

// TestWriteBatches: a Write of up to sixteen full messages of plaintext
// (about 1 MiB) is one write to the connection, with no short write after
// it; more is cut into such batches.
func TestWriteBatches(t *testing.T) {
	ca, cb := countingPair()
	out, in := securePair(t, connPair{"counting", func(testing.TB) (net.Conn, net.Conn) { return ca, cb }},
		newTransport(t, ic.Ed25519), newTransport(t, ic.Ed25519))
	for _, tc := range []struct {
		size   int
		writes []int
	}{
		{1, []int{wireSize(1)}},
		{1 << 20, []int{wireSize(1 << 20)}},
		// A multiplexer's 256 KiB batch with its frame headers.
		{256<<10 + 4*12, []int{256<<10 + 4*12 + 5*(lengthPrefixSize+tagSize)}},
		{maxBatchFrames * maxPlaintextSize, []int{bigBufSize}},
		{maxBatchFrames*maxPlaintextSize + 1, []int{bigBufSize, 1 + lengthPrefixSize + tagSize}},
		{2<<20 + 7, []int{bigBufSize, wireSize(2<<20 + 7 - maxBatchFrames*maxPlaintextSize)}},
		{3 << 20, []int{bigBufSize, bigBufSize, wireSize(3<<20 - 2*maxBatchFrames*maxPlaintextSize)}},
	} {
		ca.mu.Lock()
		ca.writes = nil
		ca.mu.Unlock()
		data := patternedData(tc.size, uint64(tc.size))
		errc := make(chan error, 1)
		go func() {
			_, err := out.Write(data)
			errc <- err
		}()
		got := make([]byte, tc.size)
		if _, err := io.ReadFull(in, got); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: data differs", tc.size)
		}
		ca.mu.Lock()
		writes := ca.writes
		ca.mu.Unlock()
		if !equalInts(writes, tc.writes) {
			t.Errorf("Write of %d bytes made writes of %v, want %v", tc.size, writes, tc.writes)
		}
	}
}

// wireSize is how many bytes n bytes of plaintext take on the wire.
func wireSize(n int) int {
	return n + (n+maxPlaintextSize-1)/maxPlaintextSize*(lengthPrefixSize+tagSize)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBulkReads: a bulk transfer reads a batch per system call, going
// back to the inline buffer (a short read) about once per batch, and
// holds no pooled buffer once it is read.
func TestBulkReads(t *testing.T) {
	ca, cb := countingPair()
	out, in := securePair(t, connPair{"counting", func(testing.TB) (net.Conn, net.Conn) { return ca, cb }},
		newTransport(t, ic.Ed25519), newTransport(t, ic.Ed25519))
	cb.mu.Lock()
	cb.reads, cb.smallReads = 0, 0
	cb.mu.Unlock()
	const writes, size = 8, maxBatchFrames * maxPlaintextSize // about 1 MiB each
	go func() {
		data := make([]byte, size)
		for range writes {
			if _, err := out.Write(data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 64<<10) // what a multiplexer reads into
	for n := 0; n < writes*size; {
		k, err := in.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	cb.mu.Lock()
	reads, small := cb.reads, cb.smallReads
	cb.mu.Unlock()
	// Per write of a batch: a short read into the inline buffer, and one
	// read for the rest (the pipe returns what one write holds).
	if small > writes || reads > 2*writes {
		t.Errorf("%d reads, %d of them of at most %d bytes, for %d writes of 1 MiB", reads, small, smallReadSize, writes)
	}
	if in.big != nil {
		t.Error("pooled read buffer held after the transfer")
	}
}
