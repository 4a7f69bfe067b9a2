package tls

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// writeLog is a net.Conn that records each write and can be told to fail.
type writeLog struct {
	net.Conn
	mu     sync.Mutex // guards the following
	writes [][]byte
	fail   error
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *writeLog) log() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

func record(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// TestRecordConnGroups: records written inside a Write are held back and
// written together at its end, or when groupLimit is reached; a short
// record (an alert) goes out at once, after those held back; outside a
// Write nothing is held back. Order is kept throughout.
func TestRecordConnGroups(t *testing.T) {
	w := &writeLog{}
	c := newRecordConn(w)
	full := 16<<10 + 22

	// Outside a Write (the handshake): written as they come.
	c.Write(record(full, 'h'))
	c.Write(record(30, 'a'))
	if got := len(w.log()); got != 2 {
		t.Fatalf("%d writes outside a Write, want 2", got)
	}

	c.begin()
	for i := range 3 {
		c.Write(record(full, byte('0'+i)))
	}
	if got := len(w.log()); got != 2 {
		t.Fatalf("records written before the Write ended: %d writes", got)
	}
	c.Write(record(24, 'k')) // a short record: everything goes, in order
	log := w.log()
	if len(log) != 3 || !bytes.Equal(log[2], bytes.Join([][]byte{record(full, '0'), record(full, '1'), record(full, '2'), record(24, 'k')}, nil)) {
		t.Fatalf("a short record did not flush the held records in order: %d writes", len(log))
	}
	c.Write(record(full, '3'))
	if err := c.end(); err != nil {
		t.Fatal(err)
	}
	log = w.log()
	if len(log) != 4 || !bytes.Equal(log[3], record(full, '3')) {
		t.Fatalf("the end of the Write did not write the rest: %d writes", len(log))
	}

	// A long Write goes out in pieces of about groupLimit.
	c.begin()
	var want []byte
	for i := range 40 {
		r := record(full, byte(i))
		want = append(want, r...)
		c.Write(r)
	}
	c.end()
	log = w.log()[4:]
	var got []byte
	for _, b := range log {
		if len(b) > groupLimit+full {
			t.Errorf("a write of %d bytes, more than the limit", len(b))
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) || len(log) != (len(want)+groupLimit-1)/groupLimit {
		t.Fatalf("40 records: %d writes of %d bytes, want %d bytes in %d", len(log), len(got), len(want), (len(want)+groupLimit-1)/groupLimit)
	}
}

// TestRecordConnWriteError: a failed write fails the Write that held the
// records and every later one.
func TestRecordConnWriteError(t *testing.T) {
	boom := errors.New("boom")
	w := &writeLog{fail: boom}
	c := newRecordConn(w)
	c.begin()
	if _, err := c.Write(record(20<<10, 'x')); err != nil {
		t.Fatalf("held record failed early: %v", err)
	}
	if err := c.end(); !errors.Is(err, boom) {
		t.Fatalf("end = %v, want %v", err, boom)
	}
	w.mu.Lock()
	w.fail = nil
	w.mu.Unlock()
	if _, err := c.Write(record(10, 'y')); !errors.Is(err, boom) {
		t.Fatalf("Write after a failure = %v, want the first error", err)
	}
}

// chunkReader returns its data in reads of at most max bytes, then err.
type chunkReader struct {
	net.Conn
	data  []byte
	max   int
	err   error
	reads int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p[:min(len(p), r.max)], r.data)
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, r.err // the error with the last bytes, as a socket may
	}
	return n, nil
}

// TestRecordConnReads: after a read that fills the caller's buffer, the
// next reads go through the 256 KiB buffer; every byte comes out once, in
// order, then the error that came with the last bytes; no pooled buffer
// is held at the end.
func TestRecordConnReads(t *testing.T) {
	data := make([]byte, 3<<20+5)
	rand.Read(data)
	r := &chunkReader{data: bytes.Clone(data), max: 1 << 20, err: io.EOF}
	c := newRecordConn(r)
	var got []byte
	buf := make([]byte, 17<<10) // about what crypto/tls reads into
	var err error
	for err == nil {
		var n int
		n, err = c.Read(buf)
		got = append(got, buf[:n]...)
	}
	if err != io.EOF {
		t.Fatalf("read error %v, want EOF", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(data))
	}
	// 17 KiB, then 256 KiB a read: far fewer than one per 17 KiB.
	if want := 3<<20/readBufSize + 4; r.reads > want {
		t.Errorf("%d reads from the socket, want at most %d", r.reads, want)
	}
	if c.rbig != nil {
		t.Error("pooled read buffer held after the data was read")
	}
}

// TestGroupedTransfer: concurrent Writes of stamped messages over TLS on
// loopback TCP, with a half-close at the end: every message arrives whole
// (a Write's records are not interleaved with another's), none is lost,
// and close_notify comes after the data.
func TestGroupedTransfer(t *testing.T) {
	ct := newTransport(t, ed25519Key(t, 0), yamux)
	st := newTransport(t, ed25519Key(t, 1), yamux)
	craw, sraw := tcpPair(t)
	c, s := mustHandshake(t, ct, st, craw, sraw, peerID(t, ed25519Key(t, 1)), "")
	defer c.Close()
	defer s.Close()

	const writers, msgs = 4, 40
	sizes := []int{6, 100, 16 << 10, 16<<10 + 1, 300 << 10, 1 << 20}
	// A message: its writer, its index, its length, then its writer's
	// byte to the end.
	message := func(w, i int) []byte {
		m := record(sizes[(w+i)%len(sizes)], byte(w))
		m[1] = byte(i)
		binary.BigEndian.PutUint32(m[2:], uint32(len(m)))
		return m
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range msgs {
				if _, err := c.Write(message(w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		wg.Wait()
		done <- c.(*Conn).CloseWrite()
	}()

	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for len(got) > 0 {
		if len(got) < 6 || int(got[0]) >= writers {
			t.Fatalf("%d bytes that start no message (next %v)", len(got), next)
		}
		w := int(got[0])
		want := message(w, next[w])
		if len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
			t.Fatalf("writer %d's message %d is not whole or not next", w, next[w])
		}
		next[w]++
		got = got[len(want):]
	}
	for w, n := range next {
		if n != msgs {
			t.Errorf("writer %d: %d of %d messages arrived", w, n, msgs)
		}
	}
}
