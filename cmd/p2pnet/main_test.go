package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestIDFreshKey(t *testing.T) {
	code, out, errs := runCmd(t, "id")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "key type: Ed25519") {
		t.Errorf("output %q does not name the key type", out)
	}
	line := strings.SplitN(out, "\n", 2)[0]
	idText := strings.TrimSpace(strings.TrimPrefix(line, "peer ID:"))
	id, err := peer.Decode(idText)
	if err != nil {
		t.Fatalf("printed peer ID %q does not decode: %v", idText, err)
	}
	if !strings.HasPrefix(id.String(), "12D3KooW") {
		t.Errorf("an Ed25519 peer ID should start with 12D3KooW; got %s", id)
	}
}

func TestIDKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	code, out1, errs := runCmd(t, "id", "--key", path, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v; want 0600", fi.Mode().Perm())
	}
	var first, second struct {
		ID      string
		KeyType string
		Created bool
	}
	if err := json.Unmarshal([]byte(out1), &first); err != nil {
		t.Fatalf("output %q: %v", out1, err)
	}
	if !first.Created {
		t.Error("first run did not report creating the key")
	}
	code, out2, errs := runCmd(t, "id", "--key", path, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if err := json.Unmarshal([]byte(out2), &second); err != nil {
		t.Fatal(err)
	}
	if second.Created || second.ID != first.ID {
		t.Errorf("second run: %+v; want the same ID %s, not created", second, first.ID)
	}
	// The file holds the libp2p private key protobuf of that ID.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ic.UnmarshalPrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	if id.String() != first.ID {
		t.Errorf("key file holds %s; printed %s", id, first.ID)
	}
}

func TestIDKeyTypes(t *testing.T) {
	for _, typ := range []string{"secp256k1", "ecdsa", "rsa"} {
		code, out, errs := runCmd(t, "id", "--type", typ, "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", typ, code, errs)
		}
		var res struct{ KeyType string }
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if !strings.EqualFold(res.KeyType, typ) {
			t.Errorf("--type %s printed key type %q", typ, res.KeyType)
		}
	}
}

func TestIDErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"id", "--key", garbage}, 1, "p2pnet id: reading key " + garbage},
		{[]string{"id", "--type", "dsa"}, 1, `unknown key type "dsa"`},
		{[]string{"id", "--type", "rsa", "--bits", "1024"}, 1, "generating a RSA key"},
		{[]string{"id", "--key", filepath.Join(dir, "missing", "x.key")}, 1, "creating key file"},
		{[]string{"id", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"id", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{nil, 2, "usage: p2pnet"},
	}
	for _, tt := range tests {
		code, _, errs := runCmd(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("p2pnet %q: exit %d, stderr %q; want exit %d and %q", tt.args, code, errs, tt.code, tt.want)
		}
		if tt.code == 1 && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("p2pnet %q: failure printed more than one line: %q", tt.args, errs)
		}
	}
}
