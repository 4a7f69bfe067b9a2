package main

import (
	"encoding/json"
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

// TestLimitsShares: `p2pnet limits` prints the Shares, a limit file sets
// them, and `p2pnet limits --explain` documents every one of their
// fields.
func TestLimitsShares(t *testing.T) {
	code, out, errs := runCmd(t, "limits")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, err := rcmgr.LoadLimits(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if want := rcmgr.DefaultLimits().Shares; got.Shares != want || !strings.Contains(out, `"Shares": {`) {
		t.Errorf("printed shares %+v; want the defaults %+v:\n%s", got.Shares, want, out)
	}

	file := filepath.Join(t.TempDir(), "limits.json")
	os.WriteFile(file, []byte(`{"Shares": {"UnnegotiatedStreamsPerPeer": 3, "IPv6Prefix": 64}}`), 0o600)
	code, out, errs = runCmd(t, "limits", "--limits", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if got, err = rcmgr.LoadLimits(strings.NewReader(out)); err != nil || got.Shares.UnnegotiatedStreamsPerPeer != 3 || got.Shares.IPv6Prefix != 64 {
		t.Errorf("shares from the file not applied: %+v, %v", got.Shares, err)
	}

	code, doc, errs := runCmd(t, "limits", "--explain")
	if code != 0 {
		t.Fatalf("limits --explain exit %d: %s", code, errs)
	}
	b, _ := json.Marshal(rcmgr.Shares{})
	var fields map[string]any
	json.Unmarshal(b, &fields)
	for f := range fields {
		if !strings.Contains(doc, f) {
			t.Errorf("limits --explain does not document Shares.%s:\n%s", f, doc)
		}
	}
	if !strings.Contains(doc, "--limit-loopback") {
		t.Errorf("limits --explain does not say how loopback addresses are treated:\n%s", doc)
	}
}
