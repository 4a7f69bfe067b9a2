// Package quic is the QUIC v1 transport (RFC 9000, libp2p/specs
// quic/README.md): it dials and listens on /ip4|ip6/…/udp/N/quic-v1
// addresses. QUIC secures and multiplexes by itself, so no upgrader is
// involved: the handshake is TLS 1.3 with the libp2p certificate of
// sec/tls (ALPN "libp2p"), and QUIC's own bidirectional streams are the
// connection's streams.
//
// Sockets. Each Listen binds one UDP socket, served by one quic-go
// Transport that carries both the listener and the connections dialed
// from that address: a dial to an address of the same family leaves from
// the socket we listen on, so the remote observes our listen address
// (which hole punching and address discovery need). Without a listener of
// the family, dials share one dial-only socket per family, bound on first
// use and closed by Transport.Close. A listening socket outlives its
// Listener while connections still use it.
//
// Other protocols over QUIC. A ServiceListener (see ListenService) serves
// another application protocol, told apart by TLS ALPN, on the socket of
// the Listener of the same address: WebTransport ("h3", in
// transport/webtransport) shares a port with libp2p's QUIC ("libp2p")
// that way, one quic-go listener handing each connection to the
// listener of the protocol it negotiated. DialService dials such a
// protocol from the socket a Dial would use.
//
// Resource accounting. A dial opens an outbound connection scope before
// any packet is sent and sets its peer before the handshake (the peer is
// known; a refusal costs no handshake).
//
// Inbound handshakes hold nothing in the resource manager while they are
// in progress: an Initial packet costs an attacker nothing and its source
// address may be spoofed, so half-open handshakes must not take the
// transient connection slots that TCP's handshakes and every other
// peer's need. The transport bounds them itself instead (see Handshakes
// below). When a client's first Initial arrives, the resource manager is
// asked whether it would take the connection (a scope opened and at once
// ended), so that a client it would refuse learns it at once, from a
// CONNECTION_REFUSED, without a handshake. When the handshake completes,
// the connection's scope is opened for good and its peer set; a refusal
// then closes the connection with application error 0x1001, go-libp2p's
// RESOURCE_LIMIT_EXCEEDED, whose reason phrase is the resource manager's
// error. So every established connection is in the resource manager,
// from its handshake's end to its own end. A connection's receive window
// grows beyond its initial size only with memory reserved in the
// connection's scope.
//
// Handshakes. At most WithMaxHandshakes inbound handshakes (default
// DefaultMaxHandshakes, as many as TCP's upgrader runs) are in progress at
// once; beyond that new clients are refused with CONNECTION_REFUSED.
// While WithRetryThreshold of them (default DefaultRetryThreshold) come
// from addresses nobody validated, each new client must first prove its
// address with a Retry (one more round trip, and no state kept for it
// until it does), so that Initials from spoofed or silent addresses can
// hold at most that many handshakes. HandshakeStats counts them.
//
// A dialer refused by the remote, before or after the handshake, gets an
// error matching ErrRefused.
//
// Hole punching (DCUtR) uses Transport.Dial with
// network.WithSimultaneousConnect; see Dial.
//
// It may import network, transport, sec/tls, the vocabulary packages,
// quic-go and go-multiaddr.
package quic

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2pnet/p2pnet/connmgr"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	p2ptls "github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
	quicgo "github.com/quic-go/quic-go"
)

// Name is the transport's name in network.ConnectionState.
const Name = "quic-v1"

// Application error codes sent in CONNECTION_CLOSE frames, the values
// go-libp2p v0.51.0 uses.
const (
	codeNoError               quicgo.ApplicationErrorCode = 0
	codeResourceLimitExceeded quicgo.ApplicationErrorCode = 0x1001
)

// streamResetCode is the error code of RESET_STREAM and STOP_SENDING
// frames: 0, "no reason given", as go-libp2p sends.
const streamResetCode quicgo.StreamErrorCode = 0

// alpn is what the handshake offers and accepts: libp2p only.
var alpn = []string{p2ptls.ALPN}

// Transport is the QUIC transport. It implements transport.Transport: Dial
// returns *Conn values and Listen *Listener values.
type Transport struct {
	localPeer peer.ID
	identity  *p2ptls.Identity
	rcmgr     network.ResourceManager
	config    *quicgo.Config // for both directions
	// serviceConfig is config with what HTTP/3 and WebTransport need,
	// for the connections of ServiceListener and DialService, and for
	// every inbound connection on a socket a ServiceListener shares.
	serviceConfig *quicgo.Config
	serverTLS     *stdtls.Config // hands each handshake its own config
	resetKey      quicgo.StatelessResetKey
	tokenKey      quicgo.TokenGeneratorKey
	done          chan struct{} // closed by Close

	// Inbound handshakes: the limits, and the counts of HandshakeStats.
	gater          connmgr.ConnectionGater   // nil: none
	tracer         transport.HandshakeTracer // nil: none
	retryThreshold int64                     // unverified handshakes in progress that make new clients prove their address
	maxHandshakes  int64                     // inbound handshakes in progress at most
	handshakes     atomic.Int64              // in progress
	unverified     atomic.Int64              // of handshakes, those from addresses not validated when they began
	retries        atomic.Uint64
	refusedBudget  atomic.Uint64
	refusedLimits  atomic.Uint64

	// punchRegistered, when set (by tests), is called once a
	// hole-punching Dial is ready to receive the peer's connection.
	punchRegistered func()

	mu        sync.Mutex // guards the following
	closed    bool
	endpoints []*endpoint // bound by Listen; kept while a listener or a connection uses them
	dialers   [2]*endpoint
	punches   map[punchKey]chan *Conn
}

var _ transport.Transport = (*Transport)(nil)

// New returns a QUIC transport that proves it holds priv in every
// handshake and accounts for its connections in rcmgr (nil means
// network.NullResourceManager).
func New(priv ic.PrivKey, rcmgr network.ResourceManager, opts ...Option) (*Transport, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	identity, err := p2ptls.NewIdentity(priv)
	if err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	if rcmgr == nil {
		rcmgr = &network.NullResourceManager{}
	}
	t := &Transport{
		localPeer:      id,
		identity:       identity,
		rcmgr:          rcmgr,
		done:           make(chan struct{}),
		punches:        map[punchKey]chan *Conn{},
		gater:          o.gater,
		tracer:         o.tracer,
		retryThreshold: int64(o.retryThreshold),
		maxHandshakes:  int64(o.maxHandshakes),
	}
	if err := deriveKeys(priv, &t.resetKey, &t.tokenKey); err != nil {
		return nil, err
	}
	t.config = &quicgo.Config{
		Versions:                       []quicgo.Version{quicgo.Version1},
		HandshakeIdleTimeout:           o.handshakeTimeout,
		MaxIdleTimeout:                 o.idleTimeout,
		KeepAlivePeriod:                o.keepAlive,
		InitialStreamReceiveWindow:     initialStreamWindow,
		MaxStreamReceiveWindow:         maxStreamWindow,
		InitialConnectionReceiveWindow: initialConnWindow,
		MaxConnectionReceiveWindow:     maxConnWindow,
		AllowConnectionWindowIncrease:  allowWindowIncrease,
		MaxIncomingStreams:             o.maxStreams,
		MaxIncomingUniStreams:          -1, // libp2p uses none
	}
	t.serviceConfig = t.config.Clone()
	t.serviceConfig.EnableDatagrams = true
	t.serviceConfig.EnableStreamResetPartialDelivery = true
	// HTTP/3's control and QPACK streams, and a few more.
	t.serviceConfig.MaxIncomingUniStreams = maxServiceUniStreams
	t.serverTLS = &stdtls.Config{
		GetConfigForClient: tlsConfigForClient,
		// No resumption: every handshake proves the peer's identity
		// anew. The per-handshake configurations say so too; this one
		// keeps crypto/tls from setting up ticket keys at all.
		SessionTicketsDisabled: true,
	}
	return t, nil
}

// deriveKeys derives the stateless reset key and the token key from the
// host key, so that they survive a restart: a peer that sends to a
// connection we lost in a crash then gets a stateless reset at once
// instead of waiting for its idle timeout.
func deriveKeys(priv ic.PrivKey, reset *quicgo.StatelessResetKey, token *quicgo.TokenGeneratorKey) error {
	raw, err := priv.Raw()
	if err != nil {
		return fmt.Errorf("quic: %w", err)
	}
	for _, k := range []struct {
		dst  []byte
		info string
	}{
		{reset[:], "p2pnet quic stateless reset key"},
		{token[:], "p2pnet quic token generator key"},
	} {
		b, err := hkdf.Key(sha256.New, raw, nil, k.info, len(k.dst))
		if err != nil {
			return fmt.Errorf("quic: deriving keys: %w", err)
		}
		copy(k.dst, b)
	}
	return nil
}

// Protocols returns ma.P_QUIC_V1.
func (t *Transport) Protocols() []int { return []int{ma.P_QUIC_V1} }

// CanDial reports whether addr is exactly /ip4|ip6/IP/udp/PORT/quic-v1.
func (t *Transport) CanDial(addr ma.Multiaddr) bool {
	_, _, err := udpAddr(addr)
	return err == nil
}

// Dial connects to p at raddr and returns a *Conn. The remote must prove
// it is p; otherwise the dial fails with an error wrapping a
// *sec.MismatchError (which matches sec.ErrPeerIDMismatch) and the
// connection is closed. The connection is reserved in the resource
// manager (outbound, no file descriptor) before any packet is sent.
//
// When ctx carries network.WithSimultaneousConnect with isClient false,
// Dial does not dial: it punches a hole towards raddr, sending packets of
// random bytes at random intervals of 10 to 200 ms from the socket we
// listen on (DCUtR spec), and returns the connection p then opens to us
// from raddr, which the listener hands to Dial instead of Accept. It
// fails after HolePunchTimeout, or when ctx ends, if none arrives. With
// isClient true, Dial dials as usual.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p peer.ID) (transport.CapableConn, error) {
	ua, family, err := udpAddr(raddr)
	if err != nil {
		return nil, err
	}
	if sim, isClient, _ := network.GetSimultaneousConnect(ctx); sim && !isClient {
		c, err := t.holePunch(ctx, ua, family, p)
		if err != nil {
			return nil, fmt.Errorf("quic hole punch %s: %w", raddr, err)
		}
		return c, nil
	}
	scope, err := t.rcmgr.OpenConnection(network.DirOutbound, false, raddr)
	if err != nil {
		return nil, fmt.Errorf("quic dial %s: %w", raddr, err)
	}
	st := &connState{t: t, scope: scope}
	start := time.Now()
	c, err := t.dial(ctx, ua, family, raddr, p, st)
	if t.tracer != nil {
		t.tracer.Handshake(network.DirOutbound, Name, time.Since(start), err)
	}
	if err != nil {
		st.release()
		return nil, fmt.Errorf("quic dial %s: %w", raddr, remoteRefusal(err))
	}
	return c, nil
}

// dial runs the handshake with p at ua from the socket dialEndpoint picks.
// The caller releases st on failure.
func (t *Transport) dial(ctx context.Context, ua *net.UDPAddr, family int, raddr ma.Multiaddr, p peer.ID, st *connState) (*Conn, error) {
	if p != "" {
		if err := st.scope.SetPeer(p); err != nil {
			return nil, err
		}
	}
	ep, err := t.dialEndpoint(family, ua.IP)
	if err != nil {
		return nil, err
	}
	tlsConf, keys := t.identity.ConfigForPeer(p, alpn)
	qc, err := ep.qt.Dial(context.WithValue(ctx, connStateKey{}, st), ua, tlsConf, t.config)
	if err != nil {
		t.releaseEndpoint(ep)
		return nil, err
	}
	var key ic.PubKey
	select {
	case key = <-keys:
	default:
	}
	remote := p
	if key != nil && remote == "" {
		if remote, err = peer.IDFromPublicKey(key); err != nil {
			key = nil
		}
	}
	if key == nil {
		qc.CloseWithError(codeNoError, "")
		t.releaseEndpoint(ep)
		return nil, ErrNoRemoteKey
	}
	if g := t.gater; g != nil && !g.InterceptSecured(network.DirOutbound, remote, connAddrs{localMultiaddr(qc), raddr}) {
		qc.CloseWithError(codeNoError, "")
		t.releaseEndpoint(ep)
		return nil, &connmgr.GatedError{Hook: connmgr.HookSecured, Peer: remote, Addr: raddr}
	}
	if remote != p { // the scope's peer was not set before the handshake
		if err := st.scope.SetPeer(remote); err != nil {
			refuse(qc, err)
			t.releaseEndpoint(ep)
			return nil, err
		}
	}
	c, err := newConn(t, qc, st, ep, remote, key, raddr)
	if err != nil {
		qc.CloseWithError(codeNoError, "")
		t.releaseEndpoint(ep)
		return nil, err
	}
	return c, nil
}

// Listen binds a UDP socket to laddr and listens on it. The listener's
// Multiaddr carries the actual port. Listening twice on one address fails
// (a UDP port is not shared: SO_REUSEPORT would split the packets of one
// connection between the sockets), except that an address whose listener
// was closed while its connections live on is listened on again through
// the same socket. A ServiceListener (WebTransport) of the same IP and
// port shares the socket; with port 0, Listen takes the socket of a
// ServiceListener of the same IP that has no libp2p Listener yet.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	ua, family, err := udpAddr(laddr)
	if err != nil {
		return nil, err
	}
	ep, err := t.listenEndpoint(ua, family, p2ptls.ALPN)
	if err != nil {
		return nil, fmt.Errorf("quic listen %s: %w", laddr, err)
	}
	l, err := newListener(t, ep)
	if err != nil {
		t.stopListening(ep)
		return nil, fmt.Errorf("quic listen %s: %w", laddr, err)
	}
	return l, nil
}

// Close closes the dial-only sockets, and with them the connections
// dialed from them, and makes later Dial and Listen calls fail with
// ErrTransportClosed. Listeners, and the connections they accepted or
// dialed through their sockets, are closed by their owners. Waiting
// hole punches fail.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	dialers := t.dialers
	t.dialers = [2]*endpoint{}
	t.mu.Unlock()
	for _, ep := range dialers {
		if ep != nil {
			ep.close()
		}
	}
	return nil
}

// connStateKey is the context key of a connection's *connState, in the
// context of the dial and in the connection's own context.
type connStateKey struct{}

// connState is what a connection needs before its Conn exists: the
// resource scope, and for an inbound connection the TLS configuration of
// its handshake and its place in the handshake counts.
type connState struct {
	t    *Transport
	ep   *endpoint // inbound only: the socket it arrived on
	once sync.Once // ends scope

	mu sync.Mutex // guards the following
	// scope is set from the start for a dialed connection, and when its
	// handshake completes for an inbound one (nil before).
	scope network.ConnManagementScope
	ended bool // release was called

	// Inbound only; set before the handshake starts, read-only after.
	start       time.Time // the first packet
	tlsConf     *stdtls.Config
	keys        <-chan ic.PubKey
	verified    bool        // the client's address was validated before the handshake began
	handshaking atomic.Bool // counted in the transport's handshakes
}

// release ends the handshake and the scope, once.
func (s *connState) release() {
	s.endHandshake()
	s.mu.Lock()
	s.ended = true
	scope := s.scope
	s.mu.Unlock()
	if scope != nil {
		s.once.Do(scope.Done)
	}
}

// setScope gives an inbound connection whose handshake completed its
// scope. If the connection has ended meanwhile, it ends scope and fails.
func (s *connState) setScope(scope network.ConnManagementScope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		scope.Done()
		return net.ErrClosed
	}
	s.scope = scope
	return nil
}

// currentScope returns the scope, or nil while an inbound handshake is in
// progress.
func (s *connState) currentScope() network.ConnManagementScope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scope
}

// endHandshake stops counting an inbound handshake as in progress.
func (s *connState) endHandshake() {
	if s.handshaking.CompareAndSwap(true, false) {
		s.t.endHandshake(s.verified)
	}
}

// tlsConfigForClient returns the configuration of the handshake of
// hello's connection: the libp2p one connContext prepared when the client
// offers ALPN "libp2p" and the socket has a libp2p Listener, or else
// that of the ServiceListener of the first ALPN offered that has one.
func tlsConfigForClient(hello *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
	st, _ := hello.Context().Value(connStateKey{}).(*connState)
	if st == nil || st.tlsConf == nil || st.ep == nil { // connContext runs for every inbound connection
		return nil, errors.New("quic: no handshake state for the connection")
	}
	st.t.mu.Lock()
	libp2p := st.ep.listener != nil
	services := st.ep.services
	var svc *ServiceListener
	for _, p := range hello.SupportedProtos {
		if s := services[p]; s != nil && p != p2ptls.ALPN {
			svc = s
			break
		}
	}
	st.t.mu.Unlock()
	if libp2p && slices.Contains(hello.SupportedProtos, p2ptls.ALPN) {
		return st.tlsConf, nil
	}
	if svc != nil {
		return svc.tlsConfig(hello)
	}
	return nil, fmt.Errorf("%w: %q", ErrNoALPN, hello.SupportedProtos)
}

// allowWindowIncrease reserves the growth of a connection's receive
// window in its resource scope; quic-go keeps the window as it is when
// the reservation is refused.
func allowWindowIncrease(qc *quicgo.Conn, delta uint64) bool {
	st, _ := qc.Context().Value(connStateKey{}).(*connState)
	if st == nil {
		return false
	}
	scope := st.currentScope()
	return scope != nil && scope.ReserveMemory(int(delta), network.ReservationPriorityMedium) == nil
}

// punchKey identifies a waiting hole punch: the address the peer's
// connection will come from, and the peer.
type punchKey struct {
	addr netip.AddrPort
	peer peer.ID
}

// addrPort converts a UDP address to the canonical form of punchKey.
func addrPort(ua *net.UDPAddr) netip.AddrPort {
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// connAddrs is a network.ConnMultiaddrs of two addresses, for the gater.
type connAddrs struct{ laddr, raddr ma.Multiaddr }

func (c connAddrs) LocalMultiaddr() ma.Multiaddr  { return c.laddr }
func (c connAddrs) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

// localMultiaddr is qc's local address as a multiaddr, or nil.
func localMultiaddr(qc *quicgo.Conn) ma.Multiaddr {
	a, _ := quicMultiaddr(qc.LocalAddr())
	return a
}
