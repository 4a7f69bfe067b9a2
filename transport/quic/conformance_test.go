package quic_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/internal/conformance"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport/quic"
)

// vanishTimeout is the dialer's idle timeout in the conformance pairs: a
// vanished peer sends nothing, not even a CONNECTION_CLOSE, so QUIC
// notices only when the idle timeout expires (30 s by default).
const vanishTimeout = time.Second

// conformancePair connects two fresh transports over ip; Kill closes the
// listener side's socket.
func conformancePair(ip string) conformance.NewPair {
	return func(t *testing.T) conformance.Pair {
		a := newNode(t, quic.WithIdleTimeout(vanishTimeout))
		b := newNode(t)
		l := listen(t, b, ip+"/udp/0/quic-v1")
		d, s := connect(t, a, l, b.id)
		return conformance.Pair{Dialer: d, Listener: s, Kill: func() { quic.KillListener(l) }}
	}
}

// TestConformance runs the behaviour suite. QUIC's bound on a writer
// ahead of a reader that does not read is the stream's initial receive
// window, 512 KiB: the window grows only as the reader reads, and a Write
// returns only once its data fits in the window.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		ip  string
		big int // 0: the suite's 100 MiB
	}{
		{"/ip4/127.0.0.1", 0},
		{"/ip6/::1", 16 << 20}, // the family changes nothing in a long transfer
	} {
		t.Run(tc.ip, func(t *testing.T) {
			conformance.Run(t, conformancePair(tc.ip), conformance.Options{
				BigTransfer: tc.big,
				MaxBuffered: 512 << 10,
			})
		})
	}
}

// TestCloseWriteInterruptsWrite: a Write waiting for flow-control credit
// returns when the stream is closed for writing, and the remote reads
// what was accepted, then EOF.
func TestCloseWriteInterruptsWrite(t *testing.T) {
	for _, closer := range []string{"CloseWrite", "Close"} {
		t.Run(closer, func(t *testing.T) {
			p := conformancePair("/ip4/127.0.0.1")(t)
			defer p.Dialer.Close()
			defer p.Listener.Close()
			s, err := p.Dialer.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				n   int
				err error
			}
			wrote := make(chan result, 1)
			go func() {
				n, err := s.Write(make([]byte, 8<<20)) // beyond any window
				wrote <- result{n, err}
			}()
			r, err := p.Listener.AcceptStream() // the first bytes arrived
			if err != nil {
				t.Fatal(err)
			}
			if closer == "Close" {
				s.Close()
			} else {
				s.CloseWrite()
			}
			res := <-wrote
			if !errors.Is(res.err, quic.ErrStreamClosedWrite) {
				t.Errorf("interrupted write = %d, %v; want ErrStreamClosedWrite", res.n, res.err)
			}
			if _, err := s.Write([]byte("x")); !errors.Is(err, quic.ErrStreamClosedWrite) {
				t.Errorf("write after %s = %v", closer, err)
			}
			if closer == "Close" {
				if _, err := s.Read(make([]byte, 1)); !errors.Is(err, quic.ErrStreamClosedRead) {
					t.Errorf("read after Close = %v", err)
				}
			}
			got, err := io.Copy(io.Discard, r)
			if err != nil || got != int64(res.n) {
				t.Errorf("remote read %d bytes, %v; the writer had %d accepted", got, err, res.n)
			}
			r.Close()
		})
	}
}

// TestStreamErrors: errors after CloseRead, Reset, and the remote's
// CloseRead; deadlines after CloseWrite.
func TestStreamErrors(t *testing.T) {
	p := conformancePair("/ip4/127.0.0.1")(t)
	defer p.Dialer.Close()
	defer p.Listener.Close()
	open := func() (network.MuxedStream, network.MuxedStream) {
		s, err := p.Dialer.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		r, err := p.Listener.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return s, r
	}

	// The remote stops reading: our writes fail as reset (STOP_SENDING).
	s, r := open()
	r.CloseRead()
	var err error
	for err == nil { // until the STOP_SENDING arrives
		_, err = s.Write(make([]byte, 64<<10))
	}
	if !errors.Is(err, network.ErrReset) {
		t.Errorf("write after the remote's CloseRead = %v; want ErrReset", err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, quic.ErrStreamClosedRead) {
		t.Errorf("read after CloseRead = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close of a stream the remote stopped reading: %v", err)
	}
	r.Close()

	// Reset, then Close and Reset again: no errors.
	s, r = open()
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || s.Reset() != nil || s.CloseRead() != nil || s.CloseWrite() != nil {
		t.Errorf("closing a reset stream: %v", err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, quic.ErrStreamReset) {
		t.Errorf("read after Reset = %v", err)
	}
	r.Close()

	// After CloseWrite the write deadline is ours; the read deadline
	// still works.
	s, r = open()
	s.CloseWrite()
	if err := s.SetDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline = %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, quic.ErrStreamClosedWrite) {
		t.Errorf("write after CloseWrite = %v", err)
	}
	s.Close()
	r.Close()
}
