package yamux

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet/internal/memconn"
	"github.com/p2pnet/p2pnet/network"
)

// Error codes on the wire, as go-yamux v5 puts them there: a stream reset's
// code in the Length field of a WindowUpdate frame with the RST flag, a
// connection's in the Length field of the GoAway frame.

// TestRefusedStreamCarriesResourceCode: a stream refused because the
// backlog is full, or because the resource scope refuses its window, is
// reset with code 0x1002 (StreamResourceLimitExceeded), which go-libp2p
// turns into a *network.StreamError with that code.
func TestRefusedStreamCarriesResourceCode(t *testing.T) {
	t.Run("backlog", func(t *testing.T) {
		_, p := newRawPeer(t, &Transport{AcceptBacklog: 1}, true, nil, true)
		p.mustWrite(typeWindowUpdate, flagSYN, 1, 0, nil) // queued for Accept
		p.mustWrite(typeWindowUpdate, flagSYN, 3, 0, nil) // beyond the backlog
		if f := p.expect(typeWindowUpdate, flagRST, 3); f.length != 0x1002 {
			t.Fatalf("RST of a stream refused for the backlog carries code %#x; want 0x1002", f.length)
		}
	})
	t.Run("scope", func(t *testing.T) {
		scope := &fakeScope{}
		_, p := newRawPeer(t, nil, true, scope, true)
		scope.setRefuse(func(int, uint8) bool { return true })
		p.mustWrite(typeWindowUpdate, flagSYN, 1, 0, nil)
		if f := p.expect(typeWindowUpdate, flagRST, 1); f.length != 0x1002 {
			t.Fatalf("RST of a stream refused by the scope carries code %#x; want 0x1002", f.length)
		}
	})
}

// TestRemoteResetCode: the code of a RST received reaches the stream's
// reads and writes as a *StreamError that matches network.ErrReset and,
// for 0x1002, network.ErrResourceLimitExceeded; a RST on a Data frame
// carries no code.
func TestRemoteResetCode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typ      frameType
		code     uint32
		resource bool // the error should match ErrResourceLimitExceeded
		typed    bool // the error should be a *StreamError
	}{
		{"resource limit", typeWindowUpdate, uint32(network.StreamResourceLimitExceeded), true, true},
		{"other code", typeWindowUpdate, uint32(network.StreamGarbageCollected), false, true},
		{"no code", typeWindowUpdate, 0, false, true},
		{"data frame", typeData, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := newRawPeer(t, nil, false, nil, true)
			s, err := c.Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p.expect(typeWindowUpdate, flagSYN, s.ID())
			p.mustWrite(tc.typ, flagACK|flagRST, s.ID(), tc.code, nil)
			_, rerr := s.Read(make([]byte, 1))
			_, werr := s.Write([]byte("x"))
			for op, err := range map[string]error{"Read": rerr, "Write": werr} {
				if !errors.Is(err, network.ErrReset) {
					t.Errorf("%s after a reset = %v; want network.ErrReset", op, err)
				}
				if got := errors.Is(err, network.ErrResourceLimitExceeded); got != tc.resource {
					t.Errorf("%s after a reset with code %#x = %v; matches ErrResourceLimitExceeded: %v, want %v", op, tc.code, err, got, tc.resource)
				}
				se, ok := errors.AsType[*StreamError](err)
				if ok != tc.typed || ok && (se.Code != tc.code || !se.Remote) {
					t.Errorf("%s after a reset with code %#x = %#v; want a remote StreamError with that code: %v", op, tc.code, err, tc.typed)
				}
			}
		})
	}
}

// TestResetWithErrorSendsCode: ResetWithError puts its code in the RST,
// and this side's operations fail with a local *StreamError.
func TestResetWithErrorSendsCode(t *testing.T) {
	c, p := newRawPeer(t, nil, false, nil, true)
	s, err := c.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagSYN, s.ID())
	s.ResetWithError(network.StreamResourceLimitExceeded)
	if f := p.expect(typeWindowUpdate, flagRST, s.ID()); f.length != 0x1002 {
		t.Fatalf("RST carries code %#x; want 0x1002", f.length)
	}
	_, err = s.Read(make([]byte, 1))
	se, ok := errors.AsType[*StreamError](err)
	if !ok || se.Code != 0x1002 || se.Remote || !errors.Is(err, network.ErrReset) || !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("Read after ResetWithError = %v; want a local StreamError with code 0x1002", err)
	}
	// Reset sends no code, as before.
	s2, err := c.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagSYN, s2.ID())
	s2.Reset()
	if f := p.expect(typeWindowUpdate, flagRST, s2.ID()); f.length != 0 {
		t.Fatalf("RST of Reset carries code %#x; want 0", f.length)
	}
	if _, err := s2.Read(make([]byte, 1)); err != ErrStreamReset {
		t.Fatalf("Read after Reset = %v; want ErrStreamReset", err)
	}
}

// TestRemoteGoAwayResourceCode: a GoAway with code 0x1001
// (ConnResourceLimitExceeded) makes the connection's errors, and its
// streams', match network.ErrResourceLimitExceeded; other codes do not.
func TestRemoteGoAwayResourceCode(t *testing.T) {
	for _, tc := range []struct {
		code     uint32
		resource bool
	}{
		{uint32(network.ConnResourceLimitExceeded), true},
		{uint32(network.ConnGarbageCollected), false},
		{goAwayNormal, false},
	} {
		c, p := newRawPeer(t, nil, false, nil, true)
		s, err := c.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.expect(typeWindowUpdate, flagSYN, s.ID())
		p.mustWrite(typeGoAway, 0, 0, tc.code, nil)
		_, aerr := c.Accept()
		_, rerr := s.Read(make([]byte, 1))
		for op, err := range map[string]error{"Accept": aerr, "stream Read": rerr} {
			ga, ok := errors.AsType[*GoAwayError](err)
			if !ok || ga.Code != tc.code || !errors.Is(err, ErrConnClosed) {
				t.Errorf("%s after a GoAway with code %#x = %v; want a GoAwayError with that code", op, tc.code, err)
			}
			if got := errors.Is(err, network.ErrResourceLimitExceeded); got != tc.resource {
				t.Errorf("%s after a GoAway with code %#x = %v; matches ErrResourceLimitExceeded: %v, want %v", op, tc.code, err, got, tc.resource)
			}
		}
		if !errors.Is(rerr, network.ErrReset) {
			t.Errorf("stream Read after a GoAway = %v; want network.ErrReset", rerr)
		}
	}
}

// TestRefuse: Transport.Refuse writes the GoAway go-yamux's
// CloseWithError writes, and a Conn on the other end fails with its code.
func TestRefuse(t *testing.T) {
	c, p := newRawPeer(t, nil, false, nil, false)
	if err := DefaultTransport.Refuse(p.nc, network.ConnResourceLimitExceeded); err != nil {
		t.Fatal(err)
	}
	_, err := c.Accept()
	if ga, ok := errors.AsType[*GoAwayError](err); !ok || ga.Code != 0x1001 || !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("Accept on a refused connection = %v; want a GoAwayError with code 0x1001", err)
	}
}

// TestGoAwayBeforeWriteFailure: when the remote sends a GoAway and closes,
// a write of this side may fail before the read loop has read the GoAway
// (a ping, say, at the start of a connection the remote refused). The
// connection still fails with the GoAway's code, not with the write's
// "broken pipe".
func TestGoAwayBeforeWriteFailure(t *testing.T) {
	a, b := memconn.Pair(0)
	b.Write(appendHeader(nil, typeGoAway, 0, 0, uint32(network.ConnResourceLimitExceeded)))
	b.Close()
	nc := &readAfterWriteFailure{Conn: a, failed: make(chan struct{})}
	c, err := DefaultTransport.Wrap(nc, false, nil) // its first ping fails
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Accept()
	if ga, ok := errors.AsType[*GoAwayError](err); !ok || ga.Code != 0x1001 || !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("Accept = %v; want the GoAway's code 0x1001", err)
	}
}

// readAfterWriteFailure holds reads until a write has failed.
type readAfterWriteFailure struct {
	net.Conn
	once   sync.Once
	failed chan struct{}
}

func (c *readAfterWriteFailure) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.once.Do(func() { close(c.failed) })
	}
	return n, err
}

func (c *readAfterWriteFailure) Read(b []byte) (int, error) {
	<-c.failed
	return c.Conn.Read(b)
}
