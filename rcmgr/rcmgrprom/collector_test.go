package rcmgrprom

import (
	"errors"
	"math"
	"testing"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/rcmgr"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gather returns the value of every metric, keyed by name and labels.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestCollector(t *testing.T) {
	l := rcmgr.UnlimitedLimits()
	l.PeerDefault.StreamsInbound = 1
	l.System.Memory = 1 << 20
	m, err := rcmgr.New(l)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg, m); err != nil {
		t.Fatal(err)
	}

	s, err := m.OpenStream("peer", network.DirInbound)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Done()
	if err := s.ReserveMemory(4096, network.ReservationPriorityAlways); err != nil {
		t.Fatal(err)
	}
	if _, err := m.OpenStream("peer", network.DirInbound); !errors.Is(err, network.ErrResourceLimitExceeded) {
		t.Fatalf("second stream: %v", err)
	}

	got := gather(t, reg)
	for key, want := range map[string]float64{
		"p2pnet_rcmgr_use,resource=Memory,scope=system":                 4096,
		"p2pnet_rcmgr_use,resource=StreamsInbound,scope=transient":      1,
		"p2pnet_rcmgr_limit,resource=Memory,scope=system":               1 << 20,
		"p2pnet_rcmgr_limit,resource=Conns,scope=system":                math.Inf(1),
		"p2pnet_rcmgr_scopes,kind=peer":                                 1,
		"p2pnet_rcmgr_scopes,kind=stream":                               1,
		"p2pnet_rcmgr_refusals_total,kind=peer,resource=StreamsInbound": 1,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present: %v), want %v", key, v, ok, want)
		}
	}
}

// TestCollectorKinds checks the figures of the kinds of scope below the
// top: what their live scopes hold together and at most, and the
// tightest limit among them.
func TestCollectorKinds(t *testing.T) {
	l := rcmgr.UnlimitedLimits()
	l.PeerDefault.StreamsInbound = 3
	l.Stream.Memory = 1 << 16
	m, err := rcmgr.New(l)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg, m); err != nil {
		t.Fatal(err)
	}
	for i, size := range []int{1000, 3000} {
		s, err := m.OpenStream(peer.ID([]byte{0, 2, 1, byte(i)}), network.DirInbound)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Done()
		if err := s.ReserveMemory(size, network.ReservationPriorityAlways); err != nil {
			t.Fatal(err)
		}
	}
	got := gather(t, reg)
	for key, want := range map[string]float64{
		"p2pnet_rcmgr_kind_use,kind=stream,resource=Memory":           4000,
		"p2pnet_rcmgr_kind_max_use,kind=stream,resource=Memory":       3000,
		"p2pnet_rcmgr_kind_limit,kind=stream,resource=Memory":         1 << 16,
		"p2pnet_rcmgr_kind_use,kind=peer,resource=StreamsInbound":     2,
		"p2pnet_rcmgr_kind_max_use,kind=peer,resource=StreamsInbound": 1,
		"p2pnet_rcmgr_kind_limit,kind=peer,resource=StreamsInbound":   3,
		"p2pnet_rcmgr_kind_limit,kind=peer,resource=Conns":            math.Inf(1),
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present: %v), want %v", key, v, ok, want)
		}
	}
	if _, ok := got["p2pnet_rcmgr_kind_use,kind=system,resource=Memory"]; ok {
		t.Error("top scopes are repeated as a kind")
	}
}
