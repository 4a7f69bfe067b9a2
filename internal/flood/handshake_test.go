package flood

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/proto/perf"
	"github.com/p2pnet/p2pnet/proto/ping"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/swarm"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// stackHost is a host assembled from the layers as p2pnet.New assembles
// its own (TCP, Noise, yamux, swarm), but with an upgrader configured by
// the test: p2pnet.New does not expose the inbound handshake timeout. It
// serves ping and perf and dials nobody.
type stackHost struct {
	id     peer.ID
	ps     *peerstore.Memory
	sw     *swarm.Swarm
	router multistream.Router[network.StreamHandler]
	ping   *ping.Service
	perf   *perf.Service
}

var errNoDial = errors.New("flood: this host dials nobody")

// newStackHost returns a host listening on loopback whose upgrader has
// cfg's timeouts and limits, accounting in rm. The test closes it at its
// end.
func newStackHost(t testing.TB, rm network.ResourceManager, cfg upgrader.Config) *stackHost {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ps := peerstore.New()
	if err := ps.AddPrivKey(id, priv); err != nil {
		t.Fatal(err)
	}
	st, err := noise.New(priv, []protocol.ID{yamux.ID})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Security = []sec.Transport{st}
	cfg.Muxers = []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}}
	cfg.ResourceManager = rm
	u, err := upgrader.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := swarm.New(id, ps, swarm.WithResourceManager(rm))
	if err != nil {
		t.Fatal(err)
	}
	h := &stackHost{id: id, ps: ps, sw: sw}
	t.Cleanup(h.close)
	if err := sw.AddTransport(tcp.New(u, rm)); err != nil {
		t.Fatal(err)
	}
	sw.SetStreamHandler(h.handleStream)
	h.ping = ping.NewService(h)
	h.perf = perf.NewService(h)
	if err := sw.Listen(ma.StringCast(loopback)); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *stackHost) info() peer.AddrInfo {
	return peer.AddrInfo{ID: h.id, Addrs: h.sw.ListenAddresses()}
}

// Peerstore returns the host's peerstore.
func (h *stackHost) Peerstore() peerstore.Peerstore { return h.ps }

// SetStreamHandler serves pid with handler.
func (h *stackHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.router.AddHandler(pid, handler)
}

// RemoveStreamHandler stops serving pid.
func (h *stackHost) RemoveStreamHandler(pid protocol.ID) { h.router.RemoveHandler(pid) }

// NewStream fails: the host only serves.
func (h *stackHost) NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error) {
	return nil, errNoDial
}

func (h *stackHost) handleStream(s network.Stream) {
	s.SetDeadline(time.Now().Add(testTimeout))
	pid, handler, err := h.router.Negotiate(s)
	if err != nil {
		s.Reset()
		return
	}
	s.SetDeadline(time.Time{})
	if err := s.SetProtocol(pid); err != nil {
		s.Reset()
		return
	}
	handler(s)
}

func (h *stackHost) close() {
	h.ping.Close()
	h.perf.Close()
	h.sw.Close()
	h.ps.Close()
}

// The ways a connection of TestHandshakeFlood fails to finish its
// handshake.
const (
	silent   = iota // sends nothing
	stalling        // starts a multistream-select message and never ends it
	garbage         // sends what is no multistream-select message
	numKinds
)

// What each kind sends. 'G' announces a message of 71 bytes, of which the
// request line sends 15; 0xff 0xff announces one longer than any allowed.
var floodBytes = [numKinds][]byte{
	silent:   nil,
	stalling: []byte("GET / HTTP/1.1\r\n"),
	garbage:  {0xff, 0xff, 0xff, 0xff},
}

// halfOpen is what happened to one connection of the flood.
type halfOpen struct {
	kind int
	// lasted is how long the victim kept it, from before our connect to
	// the victim's close.
	lasted time.Duration
	err    error // why it failed otherwise
}

// openHalf connects to addr, sends what kind sends, and waits for the
// victim to close the connection.
func openHalf(addr string, kind int, connected chan<- struct{}) halfOpen {
	r := halfOpen{kind: kind}
	// The victim's clock starts once it accepts, after this.
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	connected <- struct{}{}
	if errors.Is(err, syscall.ECONNRESET) {
		// Refused at once: on loopback the reset can beat connect's return.
		r.lasted = time.Since(start)
		return r
	}
	if err != nil {
		r.err = err
		return r
	}
	defer c.Close()
	if b := floodBytes[kind]; b != nil {
		if _, err := c.Write(b); errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			r.lasted = time.Since(start) // refused at once, before our bytes went out
			return r
		} else if err != nil {
			r.err = err
			return r
		}
	}
	c.SetReadDeadline(start.Add(testTimeout))
	var buf [64]byte
	for {
		_, err := c.Read(buf[:])
		if err == nil {
			continue // the victim may answer before giving up
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			r.err = errors.New("the victim never closed the connection")
			return r
		}
		r.lasted = time.Since(start)
		return r
	}
}

// TestHandshakeFlood opens 200 TCP connections at once from one address
// (127.0.0.1) to a victim whose inbound handshakes time out after
// handshakeTimeout: a third send nothing, a third start a message and
// stall, a third send garbage. One address may hold only its share of
// the handshake slots (upgrader.DefaultGroupShare of them), so the victim
// refuses the rest at once instead of letting them queue; it closes the
// garbage at once and the stalled ones it admitted when their time is
// up. A well-behaved peer from another address, which connects while the
// flood is at its peak, is served; the transient scope never holds more
// than the address's share.
func TestHandshakeFlood(t *testing.T) {
	const (
		flood            = 200
		handshakeTimeout = 500 * time.Millisecond
		inflight         = upgrader.DefaultMaxInflightInbound
	)
	rm := newManager(t, func(l *rcmgr.Limits) {
		// Room for every handshake in flight: stalled handshakes must
		// take turns, not lock out the connections behind them.
		l.Transient.ConnsInbound = inflight + 16
		l.Transient.Conns = inflight + 16
		l.Transient.FD = inflight + 16
	})
	victim := newStackHost(t, rm, upgrader.Config{InboundUpgradeTimeout: handshakeTimeout})
	vi := victim.info()
	addr, err := manet.ToNetAddr(vi.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	good := newSlowlorisVisitor(t)
	perAddr := max(1, inflight/upgrader.DefaultGroupShare)
	base := liveHeap()
	goroutines := runtime.NumGoroutine()

	start := time.Now()
	connected := make(chan struct{}, flood)
	results := make(chan halfOpen, flood)
	var alive atomic.Int64 // the flood's goroutines
	alive.Add(flood)
	for i := range flood {
		go func() {
			r := openHalf(addr.String(), i%numKinds, connected)
			alive.Add(-1)
			results <- r
		}()
	}
	for range flood {
		<-connected
	}
	// Every connection of the flood is in a handshake or refused: the
	// well-behaved peer, from another address, is served now.
	during := goVisit(good, vi)
	// The victim runs a goroutine per handshake in flight, no more; ours
	// are one per connection of the flood.
	grown := runtime.NumGoroutine() - goroutines - int(alive.Load())
	t.Logf("goroutines during the flood, beyond the flood's own: %+d (allowed %d)", grown, inflight+32)
	if grown > inflight+32 {
		t.Errorf("%d goroutines more during the flood than the flood's own; want at most %d", grown, inflight+32)
	}
	checkHeap(t, "at the peak of the flood", base, heapSlack)

	var (
		closed       [numKinds]int
		longest      [numKinds]time.Duration
		held         int // connections kept until their handshake timed out
		maxTransient int
	)
	for range flood {
		r := <-results
		if r.err != nil {
			t.Errorf("a connection that sends %q: %v", floodBytes[r.kind], r.err)
			continue
		}
		closed[r.kind]++
		longest[r.kind] = max(longest[r.kind], r.lasted)
		if r.kind != garbage && r.lasted >= handshakeTimeout {
			held++
		}
		st := transientStat(rm)
		maxTransient = max(maxTransient, st.NumConnsInbound)
		// The flood's share, and the visitor's connection.
		if st.NumConnsInbound > perAddr+1 {
			t.Errorf("%d inbound connections in the transient scope; one address may hold %d handshakes", st.NumConnsInbound, perAddr)
		}
	}
	t.Logf("the victim closed %d silent connections (the last after %v), %d stalling (%v) and %d sending garbage (%v) in %v; "+
		"at most %d were in the transient scope at once",
		closed[silent], longest[silent].Round(time.Millisecond), closed[stalling], longest[stalling].Round(time.Millisecond),
		closed[garbage], longest[garbage].Round(time.Millisecond), time.Since(start).Round(time.Millisecond), maxTransient)
	if held == 0 || held > 2*perAddr {
		// The first share of silent and stalling connections is held to
		// the timeout; later ones may take a slot freed by garbage.
		t.Errorf("%d silent or stalling connections were held until their handshake timed out; want 1 to %d", held, 2*perAddr)
	}
	checkVisit(t, "during the flood", <-during)
	checkSlowlorisVisitor(t, good, vi.ID)
	checkLimits(t, rm)

	mustVisit(t, "after the flood", newSlowlorisVisitor(t), vi)
	checkHeap(t, "after the flood", base, heapSlack)
	victim.close()
	checkReleased(t, rm)
}
