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
		Type    string
		Peer    string
		KeyType string `json:"key_type"`
		KeyFile string `json:"key_file"`
		Created bool
	}
	if err := json.Unmarshal([]byte(out1), &first); err != nil {
		t.Fatalf("output %q: %v", out1, err)
	}
	if !first.Created || first.Type != "result" || first.KeyType != "Ed25519" || first.KeyFile != path {
		t.Errorf("first run printed %+v; want a result with key_type Ed25519, key_file %s, created", first, path)
	}
	code, out2, errs := runCmd(t, "id", "--key", path, "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if err := json.Unmarshal([]byte(out2), &second); err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Peer != first.Peer {
		t.Errorf("second run: %+v; want the same ID %s, not created", second, first.Peer)
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
	if id.String() != first.Peer {
		t.Errorf("key file holds %s; printed %s", id, first.Peer)
	}
}

func TestIDKeyTypes(t *testing.T) {
	for _, typ := range []string{"secp256k1", "ecdsa", "rsa"} {
		code, out, errs := runCmd(t, "id", "--type", typ, "--json")
		if code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", typ, code, errs)
		}
		var res struct {
			KeyType string `json:"key_type"`
		}
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
	edKey := filepath.Join(dir, "ed.key")
	rsaKey := filepath.Join(dir, "rsa.key")
	for _, args := range [][]string{{"id", "--key", edKey}, {"id", "--key", rsaKey, "--type", "rsa"}} {
		if code, _, errs := runCmd(t, args...); code != 0 {
			t.Fatalf("p2pnet %q: exit %d, %s", args, code, errs)
		}
	}
	tests := []struct {
		args []string
		code int
		want string // the first line of stderr starts with it
	}{
		{[]string{"id", "--key", garbage}, 1, "p2pnet id: key file " + garbage + ": "},
		{[]string{"id", "--key", filepath.Join(dir, "missing", "x.key")}, 1, "p2pnet id: creating the key file: "},
		{[]string{"id", "--type", "dsa"}, 2, `p2pnet id: invalid value "dsa" for flag -type: want ed25519, secp256k1, ecdsa or rsa`},
		{[]string{"id", "--type", "rsa", "--bits", "1024"}, 2, "p2pnet id: --bits 1024: an RSA key has 2048 to 8192 bits"},
		{[]string{"id", "--type", "ecdsa", "--bits", "2048"}, 2, "p2pnet id: --bits 2048: an ECDSA key has 256, 384 or 521 bits"},
		{[]string{"id", "--bits", "4096"}, 2, "p2pnet id: --bits applies to --type rsa or ecdsa only"},
		{[]string{"id", "--type", "ed25519", "--bits", "4096"}, 2, "p2pnet id: --bits applies to --type rsa or ecdsa only"},
		// An existing key file decides the type and size.
		{[]string{"id", "--key", edKey, "--type", "rsa"}, 2, "p2pnet id: --type rsa: " + edKey + " holds a Ed25519 key, and an existing key file decides the type"},
		{[]string{"id", "--key", rsaKey, "--type", "rsa", "--bits", "4096"}, 2, "p2pnet id: --bits 4096: " + rsaKey + " holds a 2048-bit RSA key"},
		{[]string{"id", "extra"}, 2, `p2pnet id: unexpected argument "extra"`},
		{[]string{"id", "--nope"}, 2, "p2pnet id: flag provided but not defined: -nope"},
		{[]string{"id", "--type"}, 2, "p2pnet id: flag needs an argument: -type"},
		{[]string{"frobnicate"}, 2, `p2pnet: unknown command "frobnicate"`},
		{nil, 2, "usage: p2pnet COMMAND"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(t, tt.args...)
		first, rest, _ := strings.Cut(errs, "\n")
		if code != tt.code || !strings.HasPrefix(first, tt.want) {
			t.Errorf("p2pnet %q: exit %d, stderr %q; want exit %d and a first line starting %q", tt.args, code, errs, tt.code, tt.want)
		}
		if out != "" {
			t.Errorf("p2pnet %q: printed %q on stdout", tt.args, out)
		}
		switch {
		case tt.code == 1 && rest != "":
			t.Errorf("p2pnet %q: failure printed more than one line: %q", tt.args, errs)
		case tt.code == 2 && len(tt.args) > 1 && !strings.HasPrefix(rest, "usage: p2pnet id [flags]  (p2pnet id -h for help)\n"):
			t.Errorf("p2pnet %q: usage error without the usage line: %q", tt.args, errs)
		}
	}
}

// TestIDExistingKeyFlags: flags that agree with an existing key file are
// fine, so that a script may run the same command line every time.
func TestIDExistingKeyFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rsa.key")
	args := []string{"id", "--key", path, "--type", "rsa", "--bits", "2048", "--json"}
	var ids []string
	for range 2 {
		code, out, errs := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var res struct {
			Peer    string
			KeyBits int `json:"key_bits"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.KeyBits != 2048 {
			t.Fatalf("output %q: %+v, %v", out, res, err)
		}
		ids = append(ids, res.Peer)
	}
	if ids[0] != ids[1] {
		t.Errorf("the second run printed %s, the first %s", ids[1], ids[0])
	}
}
