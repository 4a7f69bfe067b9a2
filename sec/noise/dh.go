package noise

import (
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"io"
	"sync"

	"github.com/flynn/noise"
)

// maxKeptEphemerals bounds the ephemeral keys a dh25519 keeps: those of
// the handshakes in progress. Past it, a handshake's keys are made from
// their bytes when used, which costs a scalar multiplication more.
const maxKeptEphemerals = 1024

// dh25519 is Noise's X25519 function (DHName "25519", as noise.DH25519)
// for one Transport. flynn/noise hands DH the private key as bytes, and
// crypto/ecdh computes the public key whenever a private key is made from
// bytes, so noise.DH25519 (through x/crypto's X25519) costs two scalar
// multiplications per DH and per key generation, twelve per handshake
// for both sides where six are needed. dh25519 keeps the keys it uses
// ready instead: the Transport's static key for its lifetime, and each
// handshake's ephemeral key until the handshake ends (see forget), so a
// DH is one scalar multiplication.
type dh25519 struct {
	static      *ecdh.PrivateKey
	staticBytes []byte

	mu  sync.Mutex                    // guards eph
	eph map[[32]byte]*ecdh.PrivateKey // keyed by the private key's bytes; nil when empty
}

var _ noise.DHFunc = (*dh25519)(nil)

// newDH25519 returns a dh25519 with a new static key read from rng.
func newDH25519(rng io.Reader) (*dh25519, error) {
	k, err := newX25519Key(rng)
	if err != nil {
		return nil, err
	}
	return &dh25519{static: k, staticBytes: k.Bytes()}, nil
}

// newX25519Key reads a private key from rng. (ecdh's GenerateKey would
// ignore rng, which the handshake's tests set.)
func newX25519Key(rng io.Reader) (*ecdh.PrivateKey, error) {
	var b [32]byte
	if _, err := io.ReadFull(rng, b[:]); err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(b[:])
}

// staticKey returns the static key pair in flynn/noise's form.
func (d *dh25519) staticKey() noise.DHKey {
	return noise.DHKey{Private: d.staticBytes, Public: d.static.PublicKey().Bytes()}
}

// GenerateKeypair makes an ephemeral key pair from rng and keeps it
// until forget.
func (d *dh25519) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	k, err := newX25519Key(rng)
	if err != nil {
		return noise.DHKey{}, err
	}
	priv := k.Bytes()
	d.mu.Lock()
	if d.eph == nil {
		d.eph = make(map[[32]byte]*ecdh.PrivateKey)
	}
	if len(d.eph) < maxKeptEphemerals {
		d.eph[[32]byte(priv)] = k
	}
	d.mu.Unlock()
	return noise.DHKey{Private: priv, Public: k.PublicKey().Bytes()}, nil
}

// errLowOrder is the DH error of a remote public key of low order: the
// shared secret would be all zeros.
var errLowOrder = errors.New("noise: X25519 with a low-order public key")

// DH computes the shared secret of priv and the remote's public key pub.
func (d *dh25519) DH(priv, pub []byte) ([]byte, error) {
	k, err := d.key(priv)
	if err != nil {
		return nil, err
	}
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	s, err := k.ECDH(p)
	if err != nil {
		return nil, errLowOrder
	}
	return s, nil
}

// key returns the kept key whose bytes are priv, or makes it.
func (d *dh25519) key(priv []byte) (*ecdh.PrivateKey, error) {
	if len(priv) == 32 {
		if subtle.ConstantTimeCompare(priv, d.staticBytes) == 1 {
			return d.static, nil
		}
		d.mu.Lock()
		k := d.eph[[32]byte(priv)]
		d.mu.Unlock()
		if k != nil {
			return k, nil
		}
	}
	return ecdh.X25519().NewPrivateKey(priv)
}

// forget drops an ephemeral key once its handshake has ended.
func (d *dh25519) forget(priv []byte) {
	if len(priv) != 32 {
		return
	}
	d.mu.Lock()
	delete(d.eph, [32]byte(priv))
	if len(d.eph) == 0 {
		d.eph = nil // a map keeps its table when emptied; a host between handshakes holds none
	}
	d.mu.Unlock()
}

// DHLen returns 32.
func (d *dh25519) DHLen() int { return 32 }

// DHName returns "25519".
func (d *dh25519) DHName() string { return "25519" }
