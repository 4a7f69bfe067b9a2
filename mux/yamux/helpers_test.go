package yamux

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dialer makes a pair of connected net.Conns.
type dialer func(t testing.TB) (client, server net.Conn)

func pipeDialer(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	return a, b
}

func tcpDialer(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		client.Close()
		t.Fatal(r.err)
	}
	return client, r.c
}

// forEachConnType runs f over net.Pipe and over loopback TCP.
func forEachConnType(t *testing.T, f func(t *testing.T, dial dialer)) {
	t.Run("pipe", func(t *testing.T) { f(t, pipeDialer) })
	t.Run("tcp", func(t *testing.T) { f(t, tcpDialer) })
}

// newPair makes a client and a server Conn over a fresh pair of net.Conns,
// closed when the test ends.
func newPair(t testing.TB, dial dialer, tr *Transport, clientScope, serverScope network.PeerScope) (client, server *Conn) {
	t.Helper()
	if tr == nil {
		tr = DefaultTransport
	}
	a, b := dial(t)
	client, err := tr.Wrap(a, false, clientScope)
	if err != nil {
		t.Fatal(err)
	}
	server, err = tr.Wrap(b, true, serverScope)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// echoServer accepts streams on c and echoes each until EOF, then closes.
func echoServer(c *Conn) {
	for {
		s, err := c.Accept()
		if err != nil {
			return
		}
		go func() {
			defer s.Close()
			io.Copy(s, s)
		}()
	}
}

// fakeScope is a network.PeerScope that counts reservations and refuses
// those refuse says no to.
type fakeScope struct {
	mu       sync.Mutex // guards the following
	reserved int
	spans    int // spans begun and not done
	refuse   func(size int, prio uint8) bool
	prios    map[uint8]int // successful reservations by priority
}

var _ network.PeerScope = (*fakeScope)(nil)

var errRefused = errors.New("fake scope: refused")

func (f *fakeScope) ReserveMemory(size int, prio uint8) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil && f.refuse(size, prio) {
		return errRefused
	}
	if f.prios == nil {
		f.prios = map[uint8]int{}
	}
	f.prios[prio]++
	f.reserved += size
	return nil
}

func (f *fakeScope) ReleaseMemory(size int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserved -= size
	if f.reserved < 0 {
		panic("fake scope: released more than reserved")
	}
}

func (f *fakeScope) Stat() network.ScopeStat {
	f.mu.Lock()
	defer f.mu.Unlock()
	return network.ScopeStat{Memory: int64(f.reserved)}
}

func (f *fakeScope) BeginSpan() (network.ResourceScopeSpan, error) {
	f.mu.Lock()
	f.spans++
	f.mu.Unlock()
	return &fakeSpan{parent: f}, nil
}

func (f *fakeScope) Peer() peer.ID { return "fake" }

func (f *fakeScope) setRefuse(refuse func(size int, prio uint8) bool) {
	f.mu.Lock()
	f.refuse = refuse
	f.mu.Unlock()
}

func (f *fakeScope) state() (reserved, spans int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reserved, f.spans
}

func (f *fakeScope) count(prio uint8) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prios[prio]
}

// fakeSpan reserves in its parent and releases what it still holds on Done.
type fakeSpan struct {
	parent *fakeScope

	mu       sync.Mutex // guards the following
	reserved int
	done     bool
}

func (s *fakeSpan) ReserveMemory(size int, prio uint8) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return network.ErrResourceScopeClosed
	}
	if err := s.parent.ReserveMemory(size, prio); err != nil {
		return err
	}
	s.reserved += size
	return nil
}

func (s *fakeSpan) ReleaseMemory(size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		panic("fake span: release after Done")
	}
	if size > s.reserved {
		panic("fake span: released more than reserved")
	}
	s.reserved -= size
	s.parent.ReleaseMemory(size)
}

func (s *fakeSpan) Stat() network.ScopeStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return network.ScopeStat{Memory: int64(s.reserved)}
}

func (s *fakeSpan) BeginSpan() (network.ResourceScopeSpan, error) {
	return nil, errors.New("fake span: no nested spans")
}

func (s *fakeSpan) Done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	s.parent.ReleaseMemory(s.reserved)
	s.reserved = 0
	s.parent.mu.Lock()
	s.parent.spans--
	s.parent.mu.Unlock()
}

// frame is a decoded frame seen by a rawPeer.
type frame struct {
	header
	payload []byte
}

// rawPeer plays the remote side of a Conn by hand: it writes frames and
// collects the frames the Conn sends.
type rawPeer struct {
	t      testing.TB
	nc     net.Conn
	frames chan frame // every frame received, pings included
	done   chan error // the reader's end
}

// newRawPeer returns a Conn on one end of a net.Pipe (server if isServer)
// and a rawPeer on the other. With read false, the peer reads nothing.
func newRawPeer(t testing.TB, tr *Transport, isServer bool, scope network.PeerScope, read bool) (*Conn, *rawPeer) {
	t.Helper()
	if tr == nil {
		tr = DefaultTransport
	}
	a, b := net.Pipe()
	c, err := tr.Wrap(a, isServer, scope)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, nc: b, frames: make(chan frame, 4096), done: make(chan error, 1)}
	if read {
		go p.readLoop()
	} else {
		p.done <- nil
	}
	t.Cleanup(func() {
		c.Close()
		p.nc.Close()
		if read {
			for range p.frames {
			}
		}
		<-p.done
	})
	return c, p
}

func (p *rawPeer) readLoop() {
	var hdr [headerSize]byte
	for {
		if _, err := io.ReadFull(p.nc, hdr[:]); err != nil {
			p.done <- err
			close(p.frames)
			return
		}
		f := frame{header: header{
			typ:      frameType(hdr[1]),
			flags:    binary.BigEndian.Uint16(hdr[2:4]),
			streamID: binary.BigEndian.Uint32(hdr[4:8]),
			length:   binary.BigEndian.Uint32(hdr[8:12]),
		}}
		if f.typ == typeData {
			f.payload = make([]byte, f.length)
			if _, err := io.ReadFull(p.nc, f.payload); err != nil {
				p.done <- err
				close(p.frames)
				return
			}
		}
		p.frames <- f
	}
}

// write sends a frame.
func (p *rawPeer) write(typ frameType, flags uint16, id, length uint32, payload []byte) error {
	b := appendHeader(nil, typ, flags, id, length)
	_, err := p.nc.Write(append(b, payload...))
	return err
}

// mustWrite sends a frame and fails the test if it cannot.
func (p *rawPeer) mustWrite(typ frameType, flags uint16, id, length uint32, payload []byte) {
	p.t.Helper()
	if err := p.write(typ, flags, id, length, payload); err != nil {
		p.t.Fatalf("raw peer: write: %v", err)
	}
}

// next returns the next frame that is not a ping, answering pings; ok is
// false once the Conn closed its end.
func (p *rawPeer) next() (f frame, ok bool) {
	p.t.Helper()
	for f := range p.frames {
		if f.typ == typePing {
			if f.flags&flagSYN != 0 {
				p.write(typePing, flagACK, 0, f.length, nil)
			}
			continue
		}
		return f, true
	}
	return frame{}, false
}

// expect returns the next frame that is not a ping and fails the test if
// there is none or it is not of type typ with flags.
func (p *rawPeer) expect(typ frameType, flags uint16, id uint32) frame {
	p.t.Helper()
	f, ok := p.next()
	if !ok {
		p.t.Fatalf("raw peer: connection closed, want frame type %d flags %#x stream %d", typ, flags, id)
	}
	if f.typ != typ || f.flags != flags || f.streamID != id {
		p.t.Fatalf("raw peer: got frame type %d flags %#x stream %d length %d, want type %d flags %#x stream %d",
			f.typ, f.flags, f.streamID, f.length, typ, flags, id)
	}
	return f
}

// delayConn delays each Write by delay: under synctest, a link with a
// one-way latency of delay.
type delayConn struct {
	net.Conn
	delay time.Duration
}

func (d *delayConn) Write(b []byte) (int, error) {
	time.Sleep(d.delay)
	return d.Conn.Write(b)
}

// recordConn records when each frame it writes starts, and in which
// Write call.
type recordConn struct {
	net.Conn
	mu     sync.Mutex // guards the following
	writes []recordedFrame
	buf    []byte
	calls  int
}

type recordedFrame struct {
	at   time.Time
	h    header
	call int // the Write call that completed the frame, from 1
}

func (r *recordConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	now := time.Now()
	r.calls++
	r.buf = append(r.buf, b...)
	for len(r.buf) >= headerSize {
		h, err := parseHeader((*[headerSize]byte)(r.buf))
		if err != nil {
			panic(err)
		}
		n := headerSize
		if h.typ == typeData {
			n += int(h.length)
		}
		if len(r.buf) < n {
			break
		}
		r.writes = append(r.writes, recordedFrame{now, h, r.calls})
		r.buf = r.buf[n:]
	}
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *recordConn) frames() []recordedFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedFrame(nil), r.writes...)
}
