package holepunch

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errNoRoute = errors.New("test: no route")

// dialLog records the dials of one side.
type dialLog struct {
	mu    sync.Mutex
	at    []time.Time
	addrs [][]ma.Multiaddr
	roles []bool
}

// stub returns a dialFunc that records each dial and answers with
// answer(n), n counting from 1.
func (d *dialLog) stub(answer func(n int) (network.Conn, error)) dialFunc {
	return func(_ context.Context, _ peer.ID, addrs []ma.Multiaddr, isClient bool) (network.Conn, error) {
		d.mu.Lock()
		d.at = append(d.at, time.Now())
		d.addrs = append(d.addrs, addrs)
		d.roles = append(d.roles, isClient)
		n := len(d.at)
		d.mu.Unlock()
		return answer(n)
	}
}

// pair builds A and B with services whose dials are recorded; the
// relayed connection is not made yet.
func pair(t *testing.T, rtt time.Duration) (a, b *fakehost.Host, sa, sb *Service, results chan Result) {
	a, b = fakehost.New(t), fakehost.New(t)
	a.SetAddrs("/ip4/10.1.0.2/tcp/4001", "/ip4/198.51.100.11/tcp/4001")
	b.SetAddrs("/ip4/10.2.0.2/tcp/4002")
	a.SetWriteDelay(rtt / 2)
	b.SetWriteDelay(rtt / 2)
	results = make(chan Result, 8)
	lab := PublicPrefixes(netip.MustParsePrefix("198.51.100.0/24"))
	sa = New(a, lab)
	sb = New(b, lab, OnResult(func(r Result) { results <- r }),
		ObservedAddrs(func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.12/tcp/4002")} }))
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return
}

// TestSimultaneousDial checks the spec's timing: A dials when SYNC
// arrives, B half the measured RTT after sending it (with symmetric
// delays, the same instant); each side dials the other's public
// addresses in its role. fakehost delays only A's writes (those of the
// stream A accepted), so here the whole RTT is on the way back: A
// receives SYNC at once and B dials RTT/2 later.
func TestSimultaneousDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rtt = 80 * time.Millisecond
		a, b, sa, sb, results := pair(t, rtt)
		var da, db dialLog
		sa.dial = da.stub(func(int) (network.Conn, error) { return nil, errNoRoute })
		sb.dial = db.stub(func(int) (network.Conn, error) {
			_, ba := fakehost.Connect(a, b, ma.StringCast("/ip4/198.51.100.11/tcp/4001"), ma.StringCast("/ip4/198.51.100.12/tcp/4002"))
			return ba, nil
		})
		start := time.Now()
		fakehost.ConnectLimited(a, b, nil, nil) // A dials B through a relay: B initiates
		r := <-results
		if r.Err != nil || r.Attempts != 1 || r.Conn == nil || r.Conn.Stat().Limited || !r.Initiator {
			t.Fatalf("result %+v, want a direct connection after 1 attempt", r)
		}
		synctest.Wait()
		da.mu.Lock()
		defer da.mu.Unlock()
		if len(da.at) != 1 || len(db.at) != 1 {
			t.Fatalf("A dialed %d times, B %d times; want 1 each", len(da.at), len(db.at))
		}
		// A's writes take rtt/2: that is the RTT B measures.
		measured := rtt / 2
		if !da.at[0].Equal(start.Add(measured)) || !db.at[0].Equal(start.Add(measured+measured/2)) {
			t.Errorf("A dialed at +%v, B at +%v; want +%v and +%v", da.at[0].Sub(start), db.at[0].Sub(start), measured, measured+measured/2)
		}
		if !da.roles[0] || db.roles[0] {
			t.Errorf("roles: A isClient=%v, B isClient=%v; want true, false (go-libp2p's since v0.41)", da.roles[0], db.roles[0])
		}
		if got := da.addrs[0]; len(got) != 1 || got[0].String() != "/ip4/198.51.100.12/tcp/4002" {
			t.Errorf("A dialed %v, want B's observed public address only", got)
		}
		if got := db.addrs[0]; len(got) != 1 || got[0].String() != "/ip4/198.51.100.11/tcp/4001" {
			t.Errorf("B dialed %v, want A's public address only", got)
		}
		st := sb.Stats()["tcp"]
		if st.Attempts != 1 || st.Successes != 1 || st.Failures != 0 || st.Time != 3*rtt/4 {
			t.Errorf("B's tcp stats %+v", st)
		}
	})
}

// TestGivesUpAfterThreeAttempts checks that B retries on the same stream
// and gives up after MaxAttempts, leaving the relayed connection alone.
func TestGivesUpAfterThreeAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, sa, sb, results := pair(t, 20*time.Millisecond)
		var da, db dialLog
		fail := func(int) (network.Conn, error) {
			time.Sleep(DefaultDialTimeout) // a dial that times out, in fake time
			return nil, context.DeadlineExceeded
		}
		sa.dial = da.stub(fail)
		sb.dial = db.stub(fail)
		start := time.Now()
		_, ba := fakehost.ConnectLimited(a, b, nil, nil)
		r := <-results
		if r.Err == nil || r.Attempts != MaxAttempts || r.Conn != nil {
			t.Fatalf("result %+v, want failure after %d attempts", r, MaxAttempts)
		}
		// Each attempt: CONNECT round trip (A's 10 ms write delay), half
		// of it, the dial.
		if want := time.Duration(MaxAttempts) * (15*time.Millisecond + DefaultDialTimeout); time.Since(start) != want {
			t.Errorf("gave up after %v, want %v", time.Since(start), want)
		}
		synctest.Wait()
		if len(da.at) != MaxAttempts || len(db.at) != MaxAttempts {
			t.Errorf("A dialed %d times, B %d; want %d each", len(da.at), len(db.at), MaxAttempts)
		}
		if ba.IsClosed() {
			t.Error("the relayed connection was closed")
		}
		// B switches to client on its last attempt, as go-libp2p does.
		if want := []bool{false, false, true}; !slices.Equal(db.roles, want) || !slices.Equal(da.roles, []bool{true, true, true}) {
			t.Errorf("roles: B isClient %v, A %v; want %v and always true", db.roles, da.roles, want)
		}
		if got := b.InboundCount(ID) + a.InboundCount(ID); got != 1 {
			t.Errorf("%d dcutr streams, want 1 reused for every attempt", got)
		}
		if st := sb.Stats()["tcp"]; st.Attempts != MaxAttempts || st.Failures != MaxAttempts {
			t.Errorf("B's tcp stats %+v", st)
		}
	})
}

// TestDirectConnectionIgnored checks that a direct connection starts no
// exchange and that /libp2p/dcutr is refused over one.
func TestDirectConnectionIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, _, sb, _ := pair(t, 0)
		var db dialLog
		sb.dial = db.stub(func(int) (network.Conn, error) { return nil, errNoRoute })
		fakehost.Connect(a, b, nil, nil)
		synctest.Wait()
		if len(db.at) != 0 || b.Inbound() != nil && len(b.Inbound()) != 0 {
			t.Fatalf("a direct connection started a hole punch")
		}
		s, err := b.NewStream(context.Background(), a.ID(), ID)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := WriteMessage(s, &Message{Type: TypeConnect}); err != nil {
			t.Fatal(err)
		}
		var m Message
		if err := ReadMessage(s, &m); err == nil {
			t.Fatal("A answered CONNECT over a direct connection")
		}
	})
}

// TestUnexpectedMessage checks that a SYNC in place of CONNECT ends the
// exchange without a dial.
func TestUnexpectedMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, _, _ := fakehost.New(t), fakehost.New(t), 0, 0
		var got []string
		a.SetStreamHandler(ID, func(s network.Stream) {
			var m Message
			if ReadMessage(s, &m) == nil {
				got = append(got, m.Type.String())
			}
			WriteMessage(s, &Message{Type: TypeSync})
			s.Close()
		})
		sb := New(b)
		defer sb.Close()
		var db dialLog
		sb.dial = db.stub(func(int) (network.Conn, error) { return nil, errNoRoute })
		fakehost.ConnectLimited(b, a, nil, nil) // B dialed: nothing starts by itself
		r := sb.Initiate(context.Background(), a.ID())
		if !errors.Is(r.Err, ErrUnexpected) || r.Attempts != 1 || len(db.at) != 0 {
			t.Fatalf("result %+v after %d dials, want ErrUnexpected after 1 attempt and no dial", r, len(db.at))
		}
		synctest.Wait()
		if len(got) != 1 || got[0] != "CONNECT" {
			t.Errorf("A received %v", got)
		}
	})
}

func TestIsPublic(t *testing.T) {
	s := &Service{public: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}
	for addr, want := range map[string]bool{
		"/ip4/1.2.3.4/tcp/1":             true,
		"/ip4/10.0.0.1/tcp/1":            false,
		"/ip4/127.0.0.1/tcp/1":           false,
		"/ip4/198.51.100.1/tcp/1":        false,
		"/ip4/203.0.113.5/udp/1/quic-v1": true,
		"/ip6/2001:db8::1/tcp/1":         false,
		"/ip6/2600::1/tcp/1":             true,
		"/ip4/1.2.3.4/tcp/1/p2p/12D3KooWLq35sEm6k5ppapSmwby1HBUNGX2MpZcMtpQaybyeuN2H/p2p-circuit": false,
		"/dns4/example.com/tcp/1": false,
	} {
		if got := s.IsPublic(ma.StringCast(addr)); got != want {
			t.Errorf("IsPublic(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestConnectionReversal checks the spec's connection reversal: B, with
// a public address of A's in its peerstore once identify on the relayed
// connection is done, dials A directly and runs no DCUtR exchange; when
// that dial fails, it hole-punches as usual.
func TestConnectionReversal(t *testing.T) {
	for _, reachable := range []bool{true, false} {
		name := map[bool]string{true: "reachable", false: "unreachable"}[reachable]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, b := fakehost.New(t), fakehost.New(t)
				a.SetAddrs("/ip4/198.51.100.11/tcp/4001")
				results := make(chan Result, 4)
				identified := make(chan struct{})
				lab := PublicPrefixes(netip.MustParsePrefix("198.51.100.0/24"))
				sa := New(a, lab)
				sb := New(b, lab, OnResult(func(r Result) { results <- r }),
					IdentifyWait(func(network.Conn) <-chan struct{} { return identified }),
					ObservedAddrs(func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.12/tcp/4002")} }))
				defer func() { sa.Close(); sb.Close() }()
				var reversals, da, db dialLog
				sb.dialReverse = func(ctx context.Context, p peer.ID) (network.Conn, error) {
					return reversals.stub(func(int) (network.Conn, error) {
						if !reachable {
							return nil, errNoRoute
						}
						_, ba := fakehost.Connect(a, b, ma.StringCast("/ip4/198.51.100.11/tcp/4001"), ma.StringCast("/ip4/198.51.100.12/tcp/4002"))
						return ba, nil
					})(ctx, p, nil, false)
				}
				sa.dial = da.stub(func(int) (network.Conn, error) { return nil, errNoRoute })
				sb.dial = db.stub(func(int) (network.Conn, error) {
					_, ba := fakehost.Connect(a, b, ma.StringCast("/ip4/198.51.100.11/tcp/4001"), ma.StringCast("/ip4/198.51.100.12/tcp/4002"))
					return ba, nil
				})
				fakehost.ConnectLimited(a, b, nil, nil) // A dials B through a relay
				synctest.Wait()
				if len(reversals.at) != 0 {
					t.Fatal("B dialed before identify was done")
				}
				// Identify puts A's addresses in B's peerstore.
				b.Peerstore().AddAddrs(a.ID(), []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.11/tcp/4001")}, time.Hour)
				close(identified)
				r := <-results
				synctest.Wait()
				if r.Err != nil || r.Conn == nil || r.Conn.Stat().Limited {
					t.Fatalf("result %+v, want a direct connection", r)
				}
				if len(reversals.at) != 1 {
					t.Errorf("%d reversal dials, want 1", len(reversals.at))
				}
				if reachable {
					if !r.Reversed || r.Attempts != 0 || a.InboundCount(ID) != 0 || len(da.at)+len(db.at) != 0 {
						t.Errorf("result %+v, %d dcutr streams, %d punch dials; want a reversal and no exchange", r, a.InboundCount(ID), len(da.at)+len(db.at))
					}
				} else if r.Reversed || r.Attempts != 1 || len(db.at) != 1 {
					t.Errorf("result %+v after %d punch dials; want a hole punch after the failed reversal", r, len(db.at))
				}
			})
		})
	}
}
