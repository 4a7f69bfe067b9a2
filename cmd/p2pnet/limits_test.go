package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2pnet/p2pnet/rcmgr"
)

func TestLimitsCommand(t *testing.T) {
	code, out, errs := runCmd(t, "limits")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, err := rcmgr.LoadLimits(strings.NewReader(out))
	if err != nil {
		t.Fatalf("the printed limits do not load: %v\n%s", err, out)
	}
	if got.System != rcmgr.DefaultLimits().System {
		t.Errorf("printed System limit %+v; want the defaults %+v", got.System, rcmgr.DefaultLimits().System)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "limits.json")
	os.WriteFile(file, []byte(`{"PeerDefault": {"StreamsInbound": 7}}`), 0o600)
	code, out, errs = runCmd(t, "limits", "--limits", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, err = rcmgr.LoadLimits(strings.NewReader(out))
	if err != nil || got.PeerDefault.StreamsInbound != 7 {
		t.Errorf("override not applied: %+v, %v", got.PeerDefault, err)
	}

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"PeerDefault": {"Streamz": 7}}`), 0o600)
	for _, args := range [][]string{{"limits", "--limits", bad}, {"listen", "--listen", "/ip4/127.0.0.1/tcp/0", "--limits", bad}} {
		code, _, errs = runCmd(t, args...)
		if code != 1 || !strings.Contains(errs, "Streamz") {
			t.Errorf("p2pnet %q: exit %d, %q; want a one-line error naming the unknown field", args, code, errs)
		}
	}
}
