package circuit

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCanDial(t *testing.T) {
	const r = "12D3KooWGzBmT9ngSkk3vD7AwiyhbQkLBTE6TWGV5S7EgAFk1GXg"
	const p = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	tr := &Transport{}
	for a, want := range map[string]bool{
		"/ip4/127.0.0.1/tcp/1/p2p/" + r + "/p2p-circuit/p2p/" + p: true,
		"/ip4/127.0.0.1/tcp/1/p2p/" + r + "/p2p-circuit":          true,
		"/p2p/" + r + "/p2p-circuit":                              true,
		"/ip4/127.0.0.1/tcp/1/p2p-circuit/p2p/" + p:               false,
		"/ip4/127.0.0.1/tcp/1/p2p/" + r:                           false,
		"/p2p/" + r + "/p2p-circuit/ip4/1.2.3.4":                  false,
	} {
		if got := tr.CanDial(ma.StringCast(a)); got != want {
			t.Errorf("CanDial(%s) = %v, want %v", a, got, want)
		}
	}
	relayAddr, relayID, target, err := splitCircuit(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/" + r + "/p2p-circuit/p2p/" + p))
	if err != nil || relayAddr.String() != "/ip4/127.0.0.1/tcp/1" || relayID.String() != r || target.String() != p {
		t.Fatalf("splitCircuit: %v %v %v %v", relayAddr, relayID, target, err)
	}
}
