package noise

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/flynn/noise"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
)

// aLongTimeAgo is a deadline in the past: setting it unblocks pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// handshake runs the XX handshake over raw within ctx and returns the
// secured connection. On error raw is closed.
func (t *Transport) handshake(ctx context.Context, raw net.Conn, expected peer.ID, initiator bool) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("noise: handshake: %w", err)
	}

	// The deadline of ctx bounds the handshake's I/O; cancellation sets a
	// deadline in the past, which unblocks it (or closes raw if raw has
	// no deadlines).
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		_ = raw.SetDeadline(deadline)
	}
	stop := func() bool { return true }
	var interrupted chan struct{}
	if ctx.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			defer close(interrupted)
			if raw.SetDeadline(aLongTimeAgo) != nil {
				raw.Close()
			}
		})
	}

	c, err := t.runHandshake(raw, expected, initiator)

	fired := !stop()
	if fired {
		<-interrupted
	}
	if err != nil {
		raw.Close()
		if fired || errors.Is(err, os.ErrDeadlineExceeded) {
			// The context ended the handshake: say so rather than
			// report the I/O error it caused.
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fmt.Errorf("noise: handshake: %w", ctxErr)
			}
			if hasDeadline && !time.Now().Before(deadline) {
				// The connection's deadline fired before the context's.
				return nil, fmt.Errorf("noise: handshake: %w", context.DeadlineExceeded)
			}
		}
		return nil, err
	}
	if hasDeadline || fired {
		_ = raw.SetDeadline(time.Time{})
	}
	return c, nil
}

// runHandshake exchanges the three messages of XX:
//
//	-> e
//	<- e, ee, s, es, payload of the responder
//	-> s, se, payload of the initiator
//
// Both payloads carry the identity key, its signature of the Noise static
// key and the multiplexers offered.
func (t *Transport) runHandshake(raw net.Conn, expected peer.ID, initiator bool) (*Conn, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   t.suite,
		Pattern:       noise.HandshakeXX,
		Initiator:     initiator,
		StaticKeypair: t.static,
	})
	if err != nil {
		return nil, fmt.Errorf("noise: handshake state: %w", err)
	}
	defer func() { t.dh.forget(hs.LocalEphemeral().Private) }()
	c := newConn(raw, t.localID)

	var (
		remote     remoteIdentity
		cs1, cs2   *noise.CipherState
		muxer      protocol.ID
		payloadMsg []byte
	)
	if initiator {
		if _, _, err := c.writeHandshakeMessage(hs, nil); err != nil {
			return nil, fmt.Errorf("noise: handshake: sending message 1: %w", err)
		}
		if payloadMsg, _, _, err = c.readHandshakeMessage(hs); err != nil {
			return nil, fmt.Errorf("noise: handshake: reading message 2: %w", err)
		}
		if remote, err = checkPayload(payloadMsg, hs.PeerStatic(), expected, true); err != nil {
			return nil, err
		}
		if err := t.checkCertHashes(remote.certHashes); err != nil { // webtransport.go
			return nil, err
		}
		if cs1, cs2, err = c.writeHandshakeMessage(hs, t.payload); err != nil {
			return nil, fmt.Errorf("noise: handshake: sending message 3: %w", err)
		}
		muxer = selectMuxer(t.muxers, remote.muxers)
	} else {
		// The first message has no payload worth reading: anything
		// there would be neither encrypted nor authenticated.
		if _, _, _, err = c.readHandshakeMessage(hs); err != nil {
			return nil, fmt.Errorf("noise: handshake: reading message 1: %w", err)
		}
		if _, _, err = c.writeHandshakeMessage(hs, t.payload); err != nil {
			return nil, fmt.Errorf("noise: handshake: sending message 2: %w", err)
		}
		if payloadMsg, cs1, cs2, err = c.readHandshakeMessage(hs); err != nil {
			return nil, fmt.Errorf("noise: handshake: reading message 3: %w", err)
		}
		if remote, err = checkPayload(payloadMsg, hs.PeerStatic(), expected, expected != ""); err != nil {
			return nil, err
		}
		muxer = selectMuxer(remote.muxers, t.muxers)
	}
	if cs1 == nil || cs2 == nil {
		return nil, errors.New("noise: handshake: no transport keys after the last message")
	}
	// cs1 encrypts from initiator to responder, cs2 the other way.
	enc, dec := cs1, cs2
	if !initiator {
		enc, dec = cs2, cs1
	}
	c.wn, c.rn = enc.Nonce(), dec.Nonce()
	if err := c.setKeys(enc.UnsafeKey(), dec.UnsafeKey()); err != nil {
		return nil, fmt.Errorf("noise: handshake: %w", err)
	}
	c.remoteID, c.remoteKey = remote.id, remote.key
	c.state = network.ConnectionState{
		StreamMultiplexer:         muxer,
		Security:                  ID,
		UsedEarlyMuxerNegotiation: muxer != "",
	}
	c.rmu.Lock()
	c.releaseBufLocked()
	c.rmu.Unlock()
	return c, nil
}

// writeHandshakeMessage sends the next handshake message with payload.
// After the last message it returns the two transport cipher states.
func (c *Conn) writeHandshakeMessage(hs *noise.HandshakeState, payload []byte) (cs1, cs2 *noise.CipherState, err error) {
	// The largest message, the second, adds e, s and two tags.
	buf := make([]byte, lengthPrefixSize, lengthPrefixSize+2*32+2*tagSize+len(payload))
	msg, cs1, cs2, err := hs.WriteMessage(buf, payload)
	if err != nil {
		return nil, nil, err
	}
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-lengthPrefixSize))
	if _, err := c.raw.Write(msg); err != nil {
		return nil, nil, err
	}
	return cs1, cs2, nil
}

// readHandshakeMessage reads and processes the next handshake message and
// returns its decrypted payload. After the last message it also returns
// the two transport cipher states.
func (c *Conn) readHandshakeMessage(hs *noise.HandshakeState) (payload []byte, cs1, cs2 *noise.CipherState, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if err := c.fillLocked(lengthPrefixSize); err != nil {
		return nil, nil, nil, err
	}
	size := int(binary.BigEndian.Uint16(c.rbuf[c.rpos:]))
	if err := c.fillLocked(lengthPrefixSize + size); err != nil {
		return nil, nil, nil, err
	}
	msg := c.rbuf[c.rpos+lengthPrefixSize : c.rpos+lengthPrefixSize+size]
	c.rpos += lengthPrefixSize + size
	return hs.ReadMessage(nil, msg)
}

// remoteIdentity is what the remote's handshake payload proved.
type remoteIdentity struct {
	id         peer.ID
	key        ic.PubKey
	muxers     []protocol.ID
	certHashes [][]byte // WebTransport certificate hashes, aliasing the payload
}

// checkPayload decodes the remote's handshake payload, verifies its
// signature of the remote's Noise static key remoteStatic and, when check
// is set, that the remote is expected.
func checkPayload(msg, remoteStatic []byte, expected peer.ID, check bool) (remoteIdentity, error) {
	p, err := decodePayload(msg)
	if err != nil {
		return remoteIdentity{}, fmt.Errorf("noise: handshake: %w", err)
	}
	key, err := ic.UnmarshalPublicKey(p.identityKey)
	if err != nil {
		return remoteIdentity{}, fmt.Errorf("noise: handshake: %w: identity key: %w", ErrBadPayload, err)
	}
	ok, err := key.Verify(staticKeySigMessage(remoteStatic), p.identitySig)
	if err != nil {
		return remoteIdentity{}, fmt.Errorf("noise: handshake: %w: %w", ErrBadSignature, err)
	}
	if !ok {
		return remoteIdentity{}, fmt.Errorf("noise: handshake: %w", ErrBadSignature)
	}
	id, err := peer.IDFromPublicKey(key)
	if err != nil {
		return remoteIdentity{}, fmt.Errorf("noise: handshake: %w: identity key: %w", ErrBadPayload, err)
	}
	if check && id != expected {
		return remoteIdentity{}, &sec.MismatchError{Expected: expected, Actual: id}
	}
	r := remoteIdentity{id: id, key: key, certHashes: p.certHashes}
	if len(p.muxers) <= maxRemoteMuxers {
		r.muxers = protocol.ConvertFromStrings(p.muxers)
	}
	return r, nil
}
