package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
)

func runID(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("id", stderr)
	keyFile := fl.String("key", "", "read the identity key from `FILE`, creating it (mode 0600) if absent; without it a fresh key is generated and not saved")
	keyType := fl.String("type", "ed25519", "key `TYPE` to generate: ed25519, secp256k1, ecdsa or rsa")
	bits := fl.Int("bits", 0, "key size: for rsa 2048 (default) to 8192, for ecdsa 256 (default), 384 or 521")
	asJSON := fl.Bool("json", false, "print a JSON object")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		fmt.Fprintf(stderr, "p2pnet id: unexpected argument %q\n", fl.Arg(0))
		return errUsage
	}
	typ, err := parseKeyType(*keyType)
	if err != nil {
		return err
	}
	priv, created, err := loadOrCreateKey(*keyFile, typ, *bits)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("deriving the peer ID: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			ID      string `json:"id"`
			KeyType string `json:"keyType"`
			KeyFile string `json:"keyFile,omitempty"`
			Created bool   `json:"created"`
		}{id.String(), priv.Type().String(), *keyFile, created})
	}
	fmt.Fprintf(stdout, "peer ID:  %s\n", id)
	fmt.Fprintf(stdout, "key type: %s\n", priv.Type())
	if *keyFile != "" {
		verb := "read from"
		if created {
			verb = "created in"
		}
		fmt.Fprintf(stdout, "key:      %s %s\n", verb, *keyFile)
	}
	return nil
}

func parseKeyType(s string) (ic.KeyType, error) {
	switch strings.ToLower(s) {
	case "ed25519":
		return ic.Ed25519, nil
	case "secp256k1":
		return ic.Secp256k1, nil
	case "ecdsa":
		return ic.ECDSA, nil
	case "rsa":
		return ic.RSA, nil
	}
	return 0, fmt.Errorf("unknown key type %q (want ed25519, secp256k1, ecdsa or rsa)", s)
}

// loadOrCreateKey reads the private key in path, or creates one of the
// given type there when the file does not exist. An empty path means a
// fresh key that is not saved.
func loadOrCreateKey(path string, typ ic.KeyType, bits int) (priv ic.PrivKey, created bool, err error) {
	if path != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			priv, err := ic.UnmarshalPrivateKey(data)
			if err != nil {
				return nil, false, fmt.Errorf("reading key %s: %w", path, err)
			}
			return priv, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("reading key: %w", err)
		}
	}
	if bits == 0 && typ == ic.RSA {
		bits = 2048
	}
	priv, _, err = ic.GenerateKeyPair(typ, bits)
	if err != nil {
		return nil, false, fmt.Errorf("generating a %s key: %w", typ, err)
	}
	if path == "" {
		return priv, true, nil
	}
	data, err := ic.MarshalPrivateKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("encoding key: %w", err)
	}
	// O_EXCL: never overwrite a key that appeared since we looked.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("creating key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("writing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("writing key file: %w", err)
	}
	return priv, true, nil
}
