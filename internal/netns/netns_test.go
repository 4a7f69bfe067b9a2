package netns_test

import (
	"net"
	"testing"

	"github.com/p2pnet/p2pnet/internal/netns"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun: inside, the only interface is an up loopback, a wildcard
// listener is reachable over it, and nothing of the machine's own
// interfaces is visible.
func TestRun(t *testing.T) {
	outside, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	netns.Run(t, func() {
		ran = true
		ifs, err := net.Interfaces()
		if err != nil {
			t.Error(err)
			return
		}
		if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 || ifs[0].Flags&net.FlagUp == 0 {
			t.Errorf("interfaces inside: %+v; want one loopback that is up", ifs)
		}
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Error(err)
			return
		}
		defer l.Close()
		c, err := net.Dial("tcp4", l.Addr().String())
		if err != nil {
			t.Errorf("dialing the wildcard listener over loopback: %v", err)
			return
		}
		c.Close()
	})
	if !ran {
		t.Fatal("f did not run")
	}
	if len(outside) < 1 {
		t.Fatal("no interfaces outside")
	}
}
