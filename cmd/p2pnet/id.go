package main

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/peer"
)

// idLine is the JSON line of 'p2pnet id --json'.
type idLine struct {
	Type    string `json:"type"` // "result"
	Peer    string `json:"peer"`
	KeyType string `json:"key_type"`
	KeyBits int    `json:"key_bits,omitempty"`
	KeyFile string `json:"key_file,omitempty"`
	// Created is true for a new key, saved in KeyFile if there is one.
	Created bool `json:"created"`
}

func runID(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("id", stderr)
	keyFile := fl.String("key", "", "read the identity key from `FILE`, creating it (mode 0600) if absent; without it a fresh key is generated and not saved")
	keyType := choiceFlag{value: "ed25519", choices: []string{"ed25519", "secp256k1", "ecdsa", "rsa"}}
	fl.Var(&keyType, "type", "key `TYPE` to generate: ed25519, secp256k1, ecdsa or rsa")
	bits := fl.Int("bits", 0, "key size `N` for --type rsa (2048, the default, to 8192) or ecdsa (256, the default, 384 or 521)")
	asJSON := fl.Bool("json", false, "print a JSON object")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if err := noArgs(fl); err != nil {
		return err
	}
	set := flagsSet(fl)
	typ, _ := parseKeyType(keyType.value) // one of the choices: never fails
	if set["bits"] {
		if err := checkBits(typ, *bits); err != nil {
			return err
		}
	}
	priv, created, err := loadOrCreateKey(*keyFile, typ, *bits)
	if err != nil {
		return err
	}
	if !created {
		// The key file decides; flags that say otherwise are a mistake.
		if set["type"] && priv.Type() != typ {
			return usagef("--type %s: %s holds a %s key, and an existing key file decides the type", keyType.value, *keyFile, priv.Type())
		}
		if set["bits"] && keyBits(priv) != *bits {
			return usagef("--bits %d: %s holds a %d-bit %s key, and an existing key file decides the size", *bits, *keyFile, keyBits(priv), priv.Type())
		}
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("deriving the peer ID: %w", err)
	}
	out := printer{w: stdout, json: *asJSON}
	out.emit(idLine{Type: "result", Peer: id.String(), KeyType: priv.Type().String(), KeyBits: keyBits(priv),
		KeyFile: *keyFile, Created: created})
	out.textf("peer ID:  %s", id)
	if n := keyBits(priv); n > 0 {
		out.textf("key type: %s, %d bits", priv.Type(), n)
	} else {
		out.textf("key type: %s", priv.Type())
	}
	if *keyFile != "" {
		verb := "read from"
		if created {
			verb = "created in"
		}
		out.textf("key:      %s %s", verb, *keyFile)
	}
	return nil
}

// checkBits checks --bits against the key type.
func checkBits(typ ic.KeyType, bits int) error {
	switch typ {
	case ic.RSA:
		if bits < ic.MinRSAKeyBits || bits > ic.MaxRSAKeyBits {
			return usagef("--bits %d: an RSA key has %d to %d bits", bits, ic.MinRSAKeyBits, ic.MaxRSAKeyBits)
		}
	case ic.ECDSA:
		if bits != 256 && bits != 384 && bits != 521 {
			return usagef("--bits %d: an ECDSA key has 256, 384 or 521 bits", bits)
		}
	default:
		return usagef("--bits applies to --type rsa or ecdsa only")
	}
	return nil
}

// keyBits returns the size of an RSA or ECDSA key, 0 for other types.
func keyBits(priv ic.PrivKey) int {
	raw, err := priv.GetPublic().Raw()
	if err != nil {
		return 0
	}
	switch priv.Type() {
	case ic.RSA, ic.ECDSA:
	default:
		return 0
	}
	pub, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		return 0
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen()
	case *ecdsa.PublicKey:
		return k.Curve.Params().BitSize
	}
	return 0
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
				return nil, false, fmt.Errorf("key file %s: %w", path, err)
			}
			return priv, false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("reading the key: %w", err)
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
		return nil, false, fmt.Errorf("encoding the key: %w", err)
	}
	// O_EXCL: never overwrite a key that appeared since we looked.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("creating the key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("writing the key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("writing the key file: %w", err)
	}
	return priv, true, nil
}
