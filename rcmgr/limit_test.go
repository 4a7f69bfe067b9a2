package rcmgr

import (
	"math"
	"math/big"
	"testing"

	"github.com/p2pnet/p2pnet/network"
)

func TestMemoryThreshold(t *testing.T) {
	limits := []int64{0, 1, 255, 256, 257, 1000, 1_000_003, 1 << 30, math.MaxInt64 / 256, math.MaxInt64 - 256, math.MaxInt64 - 1}
	for _, limit := range limits {
		for prio := range 256 {
			want := new(big.Int).Mul(big.NewInt(limit), big.NewInt(int64(prio)+1))
			want.Div(want, big.NewInt(256))
			if got := memoryThreshold(limit, uint8(prio)); got != want.Int64() {
				t.Fatalf("memoryThreshold(%d, %d) = %d, want %s", limit, prio, got, want)
			}
		}
	}
	if got := memoryThreshold(math.MaxInt64, network.ReservationPriorityLow); got != math.MaxInt64 {
		t.Fatalf("unlimited memory has threshold %d", got)
	}
}

func TestScaledDefaultLimits(t *testing.T) {
	small := ScaledDefaultLimits(128<<20, 256)
	big := ScaledDefaultLimits(8<<30, 65536)
	if err := small.Validate(); err != nil {
		t.Fatal(err)
	}
	if small.System.Memory != 128<<20 || big.System.Memory != 8<<30 || small.System.FD != 256 || big.System.FD != 65536 {
		t.Fatalf("System does not get the budget: %+v %+v", small.System, big.System)
	}
	// Every limit grows (or stays) with the machine.
	sf, bf := small.fixed(), big.fixed()
	for i := range sf {
		for r := Resource(0); r < numResources; r++ {
			if sf[i].limit.field(r) > bf[i].limit.field(r) {
				t.Errorf("%s.%s shrinks from %d to %d on a bigger machine", sf[i].name, resourceField[r], sf[i].limit.field(r), bf[i].limit.field(r))
			}
		}
	}
	// Spot checks against the documented table, for 8 GiB.
	if big.PeerDefault.Memory != 64<<20+8*(128<<20) || big.PeerDefault.StreamsInbound != (128+8*128)/2 || big.PeerDefault.FD != 1024 || big.PeerDefault.Conns != 8 {
		t.Errorf("PeerDefault for 8 GiB: %+v", big.PeerDefault)
	}
	if big.System.ConnsInbound != 64+8*64 || big.Transient.FD != 65536/4 || big.ProtocolDefault.Memory != 64<<20+8*(164<<20) {
		t.Errorf("System %+v, Transient %+v", big.System, big.Transient)
	}
	if small.Transient.FD != 64 || small.PeerDefault.FD != 4 {
		t.Errorf("file descriptor floors: Transient %d, PeerDefault %d", small.Transient.FD, small.PeerDefault.FD)
	}
	if small.Conn != (Limit{Memory: 32 << 20, FD: 1, Conns: 1, ConnsInbound: 1, ConnsOutbound: 1}) {
		t.Errorf("Conn %+v", small.Conn)
	}
	// Negative budgets are treated as zero.
	if got := ScaledDefaultLimits(-1, -1); got.System.Memory != 0 || got.System.FD != 0 || got.Validate() != nil {
		t.Errorf("negative budget: %+v", got.System)
	}
}

func TestDefaultLimitsUseTheMachine(t *testing.T) {
	l := DefaultLimits()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if l.System.Memory < minMemoryBudget || l.System.FD < minFDBudget {
		t.Fatalf("System %+v below the floors", l.System)
	}
	if l.System.Memory != max(totalMemory()/8, minMemoryBudget) {
		t.Fatalf("System.Memory %d, want an eighth of %d", l.System.Memory, totalMemory())
	}
	if n := fdLimit(); n <= 0 || n > maxFDs {
		t.Fatalf("fdLimit() = %d", n)
	}
}

func TestParseMemTotal(t *testing.T) {
	for in, want := range map[string]int64{
		"MemTotal:       16303080 kB\nMemFree:  1 kB\n": 16303080 * 1024,
		"MemFree: 1 kB\nMemTotal: 2048 kB\n":            2048 * 1024,
		"MemTotal: lots kB\n":                           -1,
		"MemTotal: 99999999999999999999 kB\n":           -1,
		"MemTotal: 10 MB\n":                             -1,
		"":                                              -1,
	} {
		got, ok := parseMemTotal([]byte(in))
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("parseMemTotal(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestPeerCannotFillTransient: at every machine size, one peer's stream
// limits are at most half of the transient scope's, which all peers share.
func TestPeerCannotFillTransient(t *testing.T) {
	for _, gib := range []int64{0, 1, 2, 4, 16, 64, 256} {
		l := ScaledDefaultLimits(gib<<30, 4096)
		p, tr := l.PeerDefault, l.Transient
		if p.StreamsInbound > tr.StreamsInbound/2 || p.StreamsOutbound > tr.StreamsOutbound/2 || p.Streams > tr.Streams/2 {
			t.Errorf("%d GiB: peer streams %d/%d/%d, transient %d/%d/%d", gib,
				p.StreamsInbound, p.StreamsOutbound, p.Streams, tr.StreamsInbound, tr.StreamsOutbound, tr.Streams)
		}
		if p.StreamsInbound < 64 {
			t.Errorf("%d GiB: peer inbound streams %d is too few to be useful", gib, p.StreamsInbound)
		}
	}
}
