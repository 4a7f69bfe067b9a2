// Package webtransport is the WebTransport transport (libp2p/specs
// webtransport/README.md), which browsers can dial: it dials and listens
// on /ip4|ip6/…/udp/N/quic-v1/webtransport/certhash/… addresses.
//
// A listener serves HTTP/3 (ALPN "h3") with a self-signed certificate
// valid for 14 days, the most browsers accept for a certificate known by
// its hash, and announces the SHA-256 hashes of the current certificate
// and the next one in its address, so that an address stays dialable
// across a rotation (see certManager). The certificates derive from the
// host key and the time, so a node restarted with the same key serves
// the certificates its announced addresses name. A client opens a WebTransport
// session at /.well-known/libp2p-webtransport?type=noise, and runs the
// Noise handshake as the initiator in the session's first stream; the
// server's handshake payload lists the certificate hashes in the
// webtransport_certhashes extension, and the client checks that every
// hash it accepted is among them, which binds the session's TLS
// certificate to the server's libp2p identity. After the handshake the
// connection's streams are the session's WebTransport streams (no yamux).
//
// Sockets. The QUIC connections are those of transport/quic, through
// its ServiceListener and DialService: listening on the port a QUIC
// listener has shares its UDP socket (connections are told apart by ALPN,
// "libp2p" or "h3"), and dials leave from a listening socket as QUIC's
// do. Each session has its own QUIC connection.
//
// Resource accounting. A dial opens an outbound connection scope before
// any packet is sent and sets its peer before the handshake. An inbound
// connection counts against QUIC's handshake budget during its TLS
// handshake (see transport/quic), then opens its scope in the resource
// manager before the WebTransport session and Noise handshake, which sets
// its peer. Inbound sessions not established within the handshake
// timeout are closed.
//
// It may import network, transport, transport/quic, sec/noise, the
// vocabulary packages, quic-go, webtransport-go, go-multiaddr, go-multibase
// and go-multihash.
package webtransport

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	stdtls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/quic"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	wt "github.com/quic-go/webtransport-go"
)

// Name is the transport's name in network.ConnectionState, as go-libp2p
// reports it.
const Name = "webtransport"

// Path is the HTTP path of the libp2p WebTransport endpoint; the query
// ?type=noise selects the handshake this package speaks.
const Path = "/.well-known/libp2p-webtransport"

// DefaultHandshakeTimeout bounds an inbound connection's time from its
// QUIC handshake to the end of its Noise handshake, and an outbound
// session's Noise handshake when the dial's context has no deadline
// (go-libp2p's value).
const DefaultHandshakeTimeout = 10 * time.Second

// DefaultMaxHandshakes is how many inbound sessions may be between their
// QUIC handshake and the end of their Noise handshake at once; more are
// closed at once.
const DefaultMaxHandshakes = 64

// Session and stream error codes sent on close and reset.
const (
	codeNoError  wt.SessionErrorCode         = 0
	codeRefused  wt.SessionErrorCode         = 1
	streamReset  wt.StreamErrorCode          = 0
	quicNoError  quicgo.ApplicationErrorCode = 0
	quicRejected quicgo.ApplicationErrorCode = 1
)

// ErrInvalidOption is wrapped by the errors of New for an option whose
// value is out of range.
var ErrInvalidOption = errors.New("webtransport: invalid option")

// ErrNoCertHash is returned by Dial for an address without a certificate
// hash: a self-signed certificate could not be verified.
var ErrNoCertHash = errors.New("webtransport: the address has no certificate hash")

// ErrCertMismatch is wrapped by the error of a Dial whose server
// presented a certificate that none of the address's hashes names, or
// that is not valid now or for longer than 14 days.
var ErrCertMismatch = errors.New("webtransport: the server's certificate does not match the address")

// Option configures a Transport in New.
type Option func(*options) error

type options struct {
	now              func() time.Time
	handshakeTimeout time.Duration
	maxHandshakes    int
	gater            connmgr.ConnectionGater
}

// WithConnectionGater has g vet every connection: InterceptAccept for an
// inbound one once its QUIC handshake completed, and InterceptSecured
// once the Noise handshake proved the peer, in both directions. A
// refusal closes the connection before it is used, and a refused dial
// fails with a *connmgr.GatedError. Default: no gater.
func WithConnectionGater(g connmgr.ConnectionGater) Option {
	return func(o *options) error {
		o.gater = g
		return nil
	}
}

// connAddrs is a network.ConnMultiaddrs of two addresses, for the gater.
type connAddrs struct{ laddr, raddr ma.Multiaddr }

func (c connAddrs) LocalMultiaddr() ma.Multiaddr  { return c.laddr }
func (c connAddrs) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// WithClock sets the clock that certificates are made, rotated and
// verified by (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

// WithHandshakeTimeout sets how long an inbound connection may take from
// its QUIC handshake to the end of its Noise handshake (default
// DefaultHandshakeTimeout). It must be positive.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: handshake timeout %v", ErrInvalidOption, d)
		}
		o.handshakeTimeout = d
		return nil
	}
}

// WithMaxHandshakes sets how many inbound sessions may be in their
// handshakes at once (default DefaultMaxHandshakes). It must be
// positive.
func WithMaxHandshakes(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: max handshakes %d", ErrInvalidOption, n)
		}
		o.maxHandshakes = n
		return nil
	}
}

// Transport is the WebTransport transport. It implements
// transport.Transport: Dial returns *Conn values and Listen *Listener
// values.
type Transport struct {
	localPeer peer.ID
	rcmgr     network.ResourceManager
	qt        *quic.Transport
	ownQT     bool // qt was made by New and is closed by Close
	noise     *noise.Transport
	opts      options

	certSeed  []byte // what the certificates derive from (see newCert)
	certsOnce sync.Once
	certs     *certManager // made by the first Listen, shared by all listeners
	certsErr  error
}

var _ transport.Transport = (*Transport)(nil)

// New returns a WebTransport transport that proves it holds priv in every
// Noise handshake and accounts for its connections in rcmgr (nil means
// network.NullResourceManager). Its QUIC connections are qt's, sharing
// qt's sockets; with a nil qt it makes a QUIC transport of its own (which
// listens only for WebTransport).
func New(priv ic.PrivKey, rcmgr network.ResourceManager, qt *quic.Transport, opts ...Option) (*Transport, error) {
	o := options{now: time.Now, handshakeTimeout: DefaultHandshakeTimeout, maxHandshakes: DefaultMaxHandshakes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("webtransport: %w", err)
	}
	if rcmgr == nil {
		rcmgr = &network.NullResourceManager{}
	}
	n, err := noise.New(priv, nil)
	if err != nil {
		return nil, fmt.Errorf("webtransport: %w", err)
	}
	raw, err := priv.Raw()
	if err != nil {
		return nil, fmt.Errorf("webtransport: %w", err)
	}
	seed, err := hkdf.Key(sha256.New, raw, nil, "p2pnet webtransport certificate seed", 32)
	if err != nil {
		return nil, fmt.Errorf("webtransport: %w", err)
	}
	t := &Transport{localPeer: id, rcmgr: rcmgr, qt: qt, noise: n, opts: o, certSeed: seed}
	if qt == nil {
		if t.qt, err = quic.New(priv, rcmgr); err != nil {
			return nil, fmt.Errorf("webtransport: %w", err)
		}
		t.ownQT = true
	}
	return t, nil
}

// Protocols returns ma.P_WEBTRANSPORT.
func (t *Transport) Protocols() []int { return []int{ma.P_WEBTRANSPORT} }

// CanDial reports whether addr is
// /ip4|ip6/IP/udp/PORT/quic-v1/webtransport with at least one SHA-256
// /certhash.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	_, _, hashes, err := splitAddr(addr)
	return err == nil && len(hashes) > 0
}

// Close closes the QUIC transport New made, if any. Listeners are closed
// by their owners.
func (t *Transport) Close() error {
	if t.ownQT {
		return t.qt.Close()
	}
	return nil
}

// Dial opens a WebTransport session to p at raddr and returns a *Conn.
// The server's certificate must be one the address names by hash, valid
// now for at most 14 days; the Noise handshake must prove the server is
// p and list every hash of the address, or the dial fails (with an error
// wrapping ErrCertMismatch, noise.ErrCertHashMismatch or a
// *sec.MismatchError) and the connection is closed. The connection is
// reserved in the resource manager (outbound, no file descriptor) before
// any packet is sent.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	quicAddr, ua, hashes, err := splitAddr(raddr)
	if err != nil {
		return nil, err
	}
	if len(hashes) == 0 {
		return nil, fmt.Errorf("webtransport dial %s: %w", raddr, ErrNoCertHash)
	}
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, false, raddr)
	if err != nil {
		return nil, fmt.Errorf("webtransport dial %s: %w", raddr, err)
	}
	if err := scope.SetPeer(p); err != nil {
		scope.Done()
		return nil, fmt.Errorf("webtransport dial %s: %w", raddr, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.handshakeTimeout)
		defer cancel()
	}
	tlsConf := &stdtls.Config{
		MinVersion: stdtls.VersionTLS13,
		NextProtos: []string{http3.NextProtoH3},
		// The certificate is verified against the address's hashes
		// below, as browsers do with serverCertificateHashes; it has no
		// chain to verify.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyCert(raw, hashes, t.opts.now())
		},
	}
	qc, err := t.qt.DialService(ctx, quicAddr, tlsConf, scope) // ends scope on failure
	if err != nil {
		return nil, fmt.Errorf("webtransport dial %s: %w", raddr, err)
	}
	c, err := t.dialSession(ctx, qc, ua.String(), raddr, p, hashes, scope)
	if err != nil {
		qc.CloseWithError(quicRejected, "")
		return nil, fmt.Errorf("webtransport dial %s: %w", raddr, err)
	}
	return c, nil
}

// dialSession opens the session on qc and runs the Noise handshake.
func (t *Transport) dialSession(ctx context.Context, qc *quicgo.Conn, host string, raddr ma.Multiaddr, p peer.ID, hashes []certHash, scope network.ConnManagementScope) (*Conn, error) {
	cc, err := (&wt.Transport{}).NewClientConn(qc)
	if err != nil {
		return nil, err
	}
	rsp, sess, err := cc.Dial(ctx, "https://"+host+Path+"?type=noise", nil)
	if err != nil {
		return nil, err
	}
	if rsp.StatusCode != http.StatusOK {
		sess.CloseWithError(codeRefused, "")
		return nil, fmt.Errorf("webtransport: the server answered %d", rsp.StatusCode)
	}
	want := make([][]byte, len(hashes))
	for i, h := range hashes {
		want[i] = h.multihash
	}
	n, err := t.noise.WithWantedCertHashes(want)
	if err != nil {
		return nil, err
	}
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	sc, err := n.SecureOutbound(ctx, &handshakeStream{str, sess}, p)
	if err != nil {
		sess.CloseWithError(codeRefused, "")
		return nil, err
	}
	sc.Close() // closes our side of the stream; the remote closes its own
	laddr, err := wtMultiaddr(qc.LocalAddr())
	if err != nil {
		return nil, err
	}
	if g := t.opts.gater; g != nil && !g.InterceptSecured(network.DirOutbound, p, connAddrs{laddr, raddr}) {
		sess.CloseWithError(codeRefused, "gated")
		return nil, &connmgr.GatedError{Hook: connmgr.HookSecured, Peer: p, Addr: raddr}
	}
	return newConn(t, qc, sess, sc.RemotePeer(), sc.RemotePublicKey(), laddr, raddr, scope), nil
}

// verifyCert checks the server's certificate as a browser does for
// serverCertificateHashes: the leaf's SHA-256 is one of hashes, and it is
// valid at now, for at most 14 days.
func verifyCert(raw [][]byte, hashes []certHash, now time.Time) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: no certificate", ErrCertMismatch)
	}
	sum := sha256.Sum256(raw[0])
	found := false
	for _, h := range hashes {
		if bytes.Equal(h.digest[:], sum[:]) {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("%w: hash %x not in the address", ErrCertMismatch, sum)
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCertMismatch, err)
	}
	if leaf.NotAfter.Sub(leaf.NotBefore) > CertValidity {
		return fmt.Errorf("%w: valid for %v, more than 14 days", ErrCertMismatch, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("%w: not valid at %v (%v to %v)", ErrCertMismatch, now, leaf.NotBefore, leaf.NotAfter)
	}
	return nil
}

// Listen listens on laddr, /ip4|ip6/IP/udp/PORT/quic-v1/webtransport
// without certificate hashes, sharing the UDP socket of the QUIC
// transport's listener on the same IP and port if there is one. The
// listener's Multiaddr carries the actual port and the hashes to dial.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	quicAddr, _, hashes, err := splitAddr(laddr)
	if err != nil {
		return nil, err
	}
	if len(hashes) > 0 {
		return nil, fmt.Errorf("%w: cannot listen with a certificate hash: %s", ErrUnsupportedAddr, laddr)
	}
	t.certsOnce.Do(func() { t.certs, t.certsErr = newCertManager(t.certSeed, t.opts.now) })
	if t.certsErr != nil {
		return nil, t.certsErr
	}
	sl, err := t.qt.ListenService(quicAddr, http3.NextProtoH3, t.certs.tlsConfig)
	if err != nil {
		return nil, fmt.Errorf("webtransport listen %s: %w", laddr, err)
	}
	l, err := newListener(t, sl)
	if err != nil {
		sl.Close()
		return nil, fmt.Errorf("webtransport listen %s: %w", laddr, err)
	}
	return l, nil
}
