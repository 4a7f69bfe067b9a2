package swarm

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
)

// streamEnd is what StreamClosed reported.
type streamEnd struct {
	dir     network.Direction
	proto   protocol.ID
	in, out int64
}

// recorder is a Tracer that remembers what it was told.
type recorder struct {
	mu            sync.Mutex
	opened        []network.Conn
	closed        []network.Conn
	dials         []error
	skipped       []error
	streamsOpened []network.Direction
	protocols     [][2]protocol.ID
	ends          chan streamEnd
}

func newRecorder() *recorder { return &recorder{ends: make(chan streamEnd, 16)} }

func (r *recorder) ConnOpened(c network.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened = append(r.opened, c)
}

func (r *recorder) ConnClosed(c network.Conn, open time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = append(r.closed, c)
}

func (r *recorder) DialDone(addr ma.Multiaddr, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dials = append(r.dials, err)
}

func (r *recorder) DialSkipped(addr ma.Multiaddr, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped = append(r.skipped, err)
}

func (r *recorder) StreamOpened(dir network.Direction) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.streamsOpened = append(r.streamsOpened, dir)
}

func (r *recorder) StreamProtocol(dir network.Direction, old, now protocol.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.protocols = append(r.protocols, [2]protocol.ID{old, now})
}

func (r *recorder) StreamClosed(dir network.Direction, proto protocol.ID, in, out int64) {
	r.ends <- streamEnd{dir, proto, in, out}
}

// newTracedNode is newTCPNode with a tracer.
func newTracedNode(t *testing.T, tr Tracer) *tcpNode {
	t.Helper()
	priv, id := newKey(t)
	nt, err := noise.New(priv, []protocol.ID{yamux.ID})
	if err != nil {
		t.Fatal(err)
	}
	u, err := upgrader.New(upgrader.Config{
		Security: []sec.Transport{nt},
		Muxers:   []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(id, peerstore.New(), WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tpt := tcp.New(u, nil)
	if err := s.AddTransport(tpt); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); err != nil {
		t.Fatal(err)
	}
	return &tcpNode{s: s, id: id, tpt: tpt}
}

// TestTracer checks what the swarm tells its tracer: dials and their
// errors (a wrong peer among them), addresses skipped for backoff,
// connections opened and closed, streams with their protocol and bytes.
func TestTracer(t *testing.T) {
	ra, rb := newRecorder(), newRecorder()
	a, b := newTracedNode(t, ra), newTracedNode(t, rb)
	b.s.SetStreamHandler(echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A peer whose address leads to b: the handshake meets the wrong
	// peer, and the address is then in backoff.
	_, other := newKey(t)
	a.s.Peerstore().AddAddrs(other, b.s.ListenAddresses(), peerstore.PermanentAddrTTL)
	if _, err := a.s.DialPeer(ctx, other); !errors.Is(err, sec.ErrPeerIDMismatch) {
		t.Fatalf("dial of the wrong peer: %v", err)
	}
	if _, err := a.s.DialPeer(ctx, other); !errors.Is(err, ErrDialBackoff) {
		t.Fatalf("second dial of the wrong peer: %v", err)
	}

	a.s.Peerstore().AddAddrs(b.id, b.s.ListenAddresses(), peerstore.PermanentAddrTTL)
	st, err := a.s.NewStream(ctx, b.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetProtocol("/test/1"); err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello")
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	st.Close()
	if e := <-ra.ends; e != (streamEnd{network.DirOutbound, "/test/1", 5, 5}) {
		t.Errorf("a's stream ended as %+v", e)
	}
	if e := <-rb.ends; e != (streamEnd{network.DirInbound, "", 5, 5}) {
		t.Errorf("b's stream ended as %+v", e)
	}
	if err := a.s.ClosePeer(b.id); err != nil {
		t.Fatal(err)
	}

	ra.mu.Lock()
	defer ra.mu.Unlock()
	if len(ra.dials) != 2 || !errors.Is(ra.dials[0], sec.ErrPeerIDMismatch) || ra.dials[1] != nil {
		t.Errorf("a's dials: %v; want the wrong peer, then a success", ra.dials)
	}
	if len(ra.skipped) != 1 || !errors.Is(ra.skipped[0], ErrDialBackoff) {
		t.Errorf("a's skipped addresses: %v; want one in backoff", ra.skipped)
	}
	if len(ra.opened) != 1 || ra.opened[0].RemotePeer() != b.id || len(ra.closed) != 1 || ra.closed[0] != ra.opened[0] {
		t.Errorf("a's connections: opened %v, closed %v", ra.opened, ra.closed)
	}
	if len(ra.streamsOpened) != 1 || ra.streamsOpened[0] != network.DirOutbound {
		t.Errorf("a's streams: %v", ra.streamsOpened)
	}
	if len(ra.protocols) != 1 || ra.protocols[0] != [2]protocol.ID{"", "/test/1"} {
		t.Errorf("a's protocols: %v", ra.protocols)
	}
}

// discardStream is a multiplexer's stream that takes every write and
// answers every read at once.
type discardStream struct{ network.MuxedStream }

func (discardStream) Write(b []byte) (int, error) { return len(b), nil }
func (discardStream) Read(b []byte) (int, error)  { return len(b), nil }

// BenchmarkStreamReadWrite measures what a Read and a Write of the
// swarm's stream add to the multiplexer's, without a tracer and with
// one (which counts the bytes): the per-frame cost of metrics.
func BenchmarkStreamReadWrite(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "off"
		if traced {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			st := &Stream{ms: discardStream{}, traced: traced}
			buf := make([]byte, 16<<10)
			b.ReportAllocs()
			for b.Loop() {
				st.Write(buf)
				st.Read(buf)
			}
		})
	}
}
