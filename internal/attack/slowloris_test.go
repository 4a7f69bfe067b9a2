package attack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// received is what a slowloris target read from one connection.
type received struct {
	from netip.Addr
	data []byte
}

// slowlorisTarget is a TCP listener on loopback that reads each
// connection to its end, or closes it at once when told to.
type slowlorisTarget struct {
	ln   net.Listener
	out  chan received
	wg   sync.WaitGroup
	mu   sync.Mutex // guards conns
	conn []net.Conn
}

func newSlowlorisTarget(t *testing.T, closeAtOnce bool) *slowlorisTarget {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowlorisTarget{ln: ln, out: make(chan received, 1024)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if closeAtOnce {
				c.Close()
				continue
			}
			s.mu.Lock()
			s.conn = append(s.conn, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				data, _ := io.ReadAll(c)
				s.out <- received{from: c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(), data: data}
			})
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *slowlorisTarget) addr() netip.AddrPort { return s.ln.Addr().(*net.TCPAddr).AddrPort() }

func (s *slowlorisTarget) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// TestSlowlorisSends: each kind of connection sends what it should, from
// the sources it should, the trickle one byte per interval; Close closes
// every connection.
func TestSlowlorisSends(t *testing.T) {
	opening := noiseOpening()
	header := "\x13/multistream/1.0.0\n"
	if len(opening) != 62 || string(opening[:len(header)]) != header ||
		string(opening[len(header):len(header)+10]) != "\x07/noise\n\x00\x20" {
		t.Fatalf("the Noise opening is %q", opening)
	}
	for _, tc := range []struct {
		kind SlowlorisKind
		want int // bytes each connection sends
	}{{Silent, 0}, {Trickle, 62}, {HeaderOnly, len(header)}} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			const interval = time.Millisecond
			target := newSlowlorisTarget(t, false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			a, err := StartSlowloris(ctx, SlowlorisConfig{
				Target:   target.addr(),
				Sources:  LoopbackSources(netip.MustParseAddr("127.0.0.2"), 2, 2),
				Kind:     tc.kind,
				Interval: interval,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.WaitFor(ctx, func(s SlowlorisStats) bool { return s.Open == 4 && s.Sent == int64(4*tc.want) }); err != nil {
				t.Fatal(err)
			}
			if tc.kind == Trickle {
				if d := time.Since(start); d < 61*interval {
					t.Errorf("trickled 62 bytes in %v; want at least 61 intervals of %v", d, interval)
				}
			}
			a.Close()
			if st := a.Stats(); st.Open != 0 || st.Lost != 0 || st.Conns != 4 || st.Attempts != 4 {
				t.Errorf("after Close: %+v", st)
			}
			from := map[netip.Addr]int{}
			for range 4 {
				r := <-target.out
				from[r.from]++
				switch {
				case len(r.data) != tc.want:
					t.Errorf("a connection sent %d bytes; want %d", len(r.data), tc.want)
				case tc.kind == Trickle && !bytes.Equal(r.data[:len(opening)-32], opening[:len(opening)-32]):
					t.Errorf("a connection sent %q; want %q and a key", r.data, opening[:len(opening)-32])
				case tc.kind == HeaderOnly && string(r.data) != header:
					t.Errorf("a connection sent %q; want %q", r.data, header)
				}
			}
			if from[netip.MustParseAddr("127.0.0.2")] != 2 || from[netip.MustParseAddr("127.0.0.3")] != 2 {
				t.Errorf("connections came from %v; want two from each of 127.0.0.2 and 127.0.0.3", from)
			}
		})
	}
}

// TestSlowlorisRedial: a connection the target closes is counted lost,
// and opened again when the attack redials; otherwise it stays closed
// and the attack ends by itself once every connection is lost.
func TestSlowlorisRedial(t *testing.T) {
	target := newSlowlorisTarget(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}

	a, err := StartSlowloris(ctx, SlowlorisConfig{Target: target.addr(), Sources: src, Kind: Silent})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatalf("the attack did not end once the target had closed its connections: %+v", a.Stats())
	}
	if st := a.Stats(); st.Conns != 2 || st.Lost != 2 || st.Open != 0 {
		t.Errorf("without redial: %+v; want 2 connections, both lost", st)
	}
	a.Close()

	a, err = StartSlowloris(ctx, SlowlorisConfig{Target: target.addr(), Sources: src, Kind: HeaderOnly, Redial: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.WaitFor(ctx, func(s SlowlorisStats) bool { return s.Lost >= 6 }); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if st := a.Stats(); st.Conns < 6 || st.Attempts != st.Conns+st.DialErrors || st.Open != 0 {
		t.Errorf("with redial: %+v", st)
	}
}

// TestSlowlorisConfig: an attack on or from anything but loopback, or
// without sources, does not start.
func TestSlowlorisConfig(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.2")
	target := netip.MustParseAddrPort("127.0.0.1:4001")
	for name, cfg := range map[string]SlowlorisConfig{
		"target not loopback": {Target: netip.MustParseAddrPort("192.0.2.1:4001"), Sources: []netip.Addr{lo}},
		"no port":             {Target: netip.MustParseAddrPort("127.0.0.1:0"), Sources: []netip.Addr{lo}},
		"source not loopback": {Target: target, Sources: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
		"no sources":          {Target: target},
		"unknown kind":        {Target: target, Sources: []netip.Addr{lo}, Kind: HeaderOnly + 1},
	} {
		if a, err := StartSlowloris(context.Background(), cfg); !errors.Is(err, ErrInvalidFlood) {
			t.Errorf("%s: error %v; want ErrInvalidFlood", name, err)
			if a != nil {
				a.Close()
			}
		}
	}
	if got := LoopbackSources(lo, 2, 3); len(got) != 6 || got[2] != lo || got[3] != lo.Next() {
		t.Errorf("LoopbackSources = %v", got)
	}
}
