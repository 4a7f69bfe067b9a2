package autonat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// Client defaults.
const (
	// DefaultProbeInterval is the pause between checks while an address
	// is undecided.
	DefaultProbeInterval = 2 * time.Second
	// DefaultRecheckInterval is how long a decided address goes without
	// a check.
	DefaultRecheckInterval = 15 * time.Minute
	// MaxCandidates bounds the addresses checked.
	MaxCandidates = 8
)

// Result is the outcome of one check.
type Result struct {
	Server peer.ID
	Addr   ma.Multiaddr
	// Reachable is true when the server dialed Addr and the nonce came
	// back; false when it could not dial it (E_DIAL_ERROR).
	Reachable bool
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// Candidates sets where the client finds the addresses to check (our
// listen addresses and the observed ones, say); only the public ones
// are checked. Default: none.
func Candidates(f func() []ma.Multiaddr) ClientOption {
	return func(c *Client) { c.candidates = f }
}

// ClientPublic adds ranges whose addresses count as public.
func ClientPublic(p Public) ClientOption {
	return func(c *Client) { c.public = append(c.public, p...) }
}

// OnReachability sets a function called with the host's reachability
// each time it changes, on the client's goroutine: it must not block.
func OnReachability(f func(network.Reachability)) ClientOption {
	return func(c *Client) { c.onChange = f }
}

// OnResult sets a function called with every check the client's loop
// runs: its result, or why it decided nothing. It runs on the client's
// goroutine, after the result has counted (AddrReachability includes
// it), and must not block.
func OnResult(f func(addr ma.Multiaddr, r Result, err error)) ClientOption {
	return func(c *Client) { c.onResult = f }
}

// Intervals sets the pause between checks of undecided addresses and
// between re-checks of decided ones. Default: DefaultProbeInterval,
// DefaultRecheckInterval.
func Intervals(probe, recheck time.Duration) ClientOption {
	return func(c *Client) { c.probe, c.recheck = probe, recheck }
}

// Confidence sets how many agreeing results decide an address (see
// Tracker). Default: DefaultConfidence.
func Confidence(n int) ClientOption {
	return func(c *Client) { c.tracker.confidence = max(n, 1) }
}

// pending is a check waiting for its dial back.
type pending struct {
	local ma.Multiaddr // our end of the dial-back connection, once it came
}

// Client checks our addresses with connected AutoNAT v2 servers (v1
// servers when no connected peer serves v2) and tracks our reachability.
type Client struct {
	h          Host
	candidates func() []ma.Multiaddr
	public     Public
	onChange   func(network.Reachability)
	onResult   func(ma.Multiaddr, Result, error)
	probe      time.Duration
	recheck    time.Duration
	tracker    *Tracker

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // cap 1: check now
	notif  *network.NotifyBundle

	mu      sync.Mutex // guards the following
	pending map[uint64]*pending
	last    map[string]time.Time // when each address was last checked
	next    int                  // round-robin over servers
}

// NewClient serves DialBackID on h and starts checking.
func NewClient(h Host, opts ...ClientOption) *Client {
	c := &Client{
		h: h, probe: DefaultProbeInterval, recheck: DefaultRecheckInterval,
		tracker: NewTracker(DefaultConfidence),
		kick:    make(chan struct{}, 1),
		pending: map[uint64]*pending{},
		last:    map[string]time.Time{},
	}
	for _, o := range opts {
		o(c)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	h.SetStreamHandler(DialBackID, c.handleDialBack)
	c.notif = &network.NotifyBundle{ConnectedF: func(network.Network, network.Conn) { c.Kick() }}
	h.Network().Notify(c.notif)
	c.wg.Add(1)
	go c.run()
	return c
}

// Close stops checking and waits for the check under way.
func (c *Client) Close() error {
	c.h.Network().StopNotify(c.notif)
	c.h.RemoveStreamHandler(DialBackID)
	c.cancel()
	c.wg.Wait()
	return nil
}

// Kick asks for a round of checks now (a new peer, new addresses).
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Reachability returns what the client knows of our reachability.
func (c *Client) Reachability() network.Reachability { return c.tracker.Reachability() }

// run checks one due address per round.
func (c *Client) run() {
	defer c.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
			t.Stop()
		}
		wait := c.round()
		t.Reset(wait)
	}
}

// round checks the most urgent due address and returns how long to wait
// for the next round.
func (c *Client) round() time.Duration {
	now := time.Now()
	var addrs []ma.Multiaddr
	if c.candidates != nil {
		for _, a := range c.candidates() {
			if c.public.Contains(a) && !slices.ContainsFunc(addrs, a.Equal) && len(addrs) < MaxCandidates {
				addrs = append(addrs, a)
			}
		}
	}
	if changed, r := c.tracker.Retain(addrs); changed {
		c.report(r)
	}
	if len(addrs) == 0 {
		return c.probe // candidates may appear (identify, Kick)
	}
	var due ma.Multiaddr
	wait := c.recheck
	c.mu.Lock()
	for _, a := range addrs {
		last, ok := c.last[string(a.Bytes())]
		every := c.recheck
		if !c.tracker.Decided(a) {
			every = c.probe
		}
		if !ok || now.Sub(last) >= every {
			due = a
			break
		}
		wait = min(wait, every-now.Sub(last))
	}
	c.mu.Unlock()
	if due == nil {
		return wait
	}
	server, v1, err := c.pickServer()
	if err != nil {
		if c.onResult != nil {
			c.onResult(due, Result{}, err)
		}
		return c.probe // a server may connect; Connected kicks too
	}
	c.mu.Lock()
	c.last[string(due.Bytes())] = now
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, DefaultStreamTimeout)
	check := c.Check
	if v1 {
		check = c.CheckV1
	}
	res, err := check(ctx, server, due)
	cancel()
	var changed bool
	var r network.Reachability
	if err == nil {
		changed, r = c.tracker.Add(res.Addr, res.Reachable)
	}
	// onResult sees the verdict that includes this result (the host
	// announces addresses by it); onChange follows.
	if c.onResult != nil {
		c.onResult(due, res, err)
	}
	if changed {
		c.report(r)
	}
	return 0
}

// report tells onChange.
func (c *Client) report(r network.Reachability) {
	if c.onChange != nil {
		c.onChange(r)
	}
}

// pickServer returns the next connected peer that serves
// DialRequestID, round robin, or when none does the next that serves
// V1ID, with v1 true.
func (c *Client) pickServer() (server peer.ID, v1 bool, err error) {
	var servers, v1Servers []peer.ID
	for _, p := range c.h.Network().Peers() {
		ok, _ := c.h.Peerstore().SupportsProtocols(p, DialRequestID, V1ID)
		switch {
		case slices.Contains(ok, DialRequestID):
			servers = append(servers, p)
		case slices.Contains(ok, V1ID):
			v1Servers = append(v1Servers, p)
		}
	}
	if len(servers) == 0 {
		servers, v1 = v1Servers, true
	}
	if len(servers) == 0 {
		return "", false, ErrNoServer
	}
	slices.Sort(servers)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	return servers[c.next%len(servers)], v1, nil
}

// Check asks server to dial addr and reports the outcome. It pays dial
// data when asked for at most MaxDialData bytes.
func (c *Client) Check(ctx context.Context, server peer.ID, addr ma.Multiaddr) (Result, error) {
	var nb [8]byte
	rand.Read(nb[:])
	nonce := binary.LittleEndian.Uint64(nb[:])
	pd := &pending{}
	c.mu.Lock()
	c.pending[nonce] = pd
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, nonce)
		c.mu.Unlock()
	}()
	str, err := c.h.NewStream(ctx, server, DialRequestID)
	if err != nil {
		return Result{}, fmt.Errorf("autonat: asking %s: %w", server, err)
	}
	defer str.Close()
	if err := attach(str); err != nil {
		return Result{}, err
	}
	defer str.Scope().ReleaseMemory(MaxMessageSize)
	if dl, ok := ctx.Deadline(); ok {
		str.SetDeadline(dl)
	}
	if err := WriteMessage(str, &Message{DialRequest: &DialRequest{Addrs: [][]byte{addr.Bytes()}, Nonce: nonce}}); err != nil {
		str.Reset()
		return Result{}, fmt.Errorf("autonat: asking %s: %w", server, err)
	}
	for {
		var m Message
		if err := ReadMessage(str, &m); err != nil {
			str.Reset()
			return Result{}, fmt.Errorf("autonat: asking %s: %w", server, err)
		}
		switch {
		case m.DialDataRequest != nil:
			if m.DialDataRequest.AddrIdx != 0 || m.DialDataRequest.NumBytes > MaxDialData {
				str.Reset()
				return Result{}, fmt.Errorf("%w: dial data request of %d bytes for address %d", ErrRejected, m.DialDataRequest.NumBytes, m.DialDataRequest.AddrIdx)
			}
			if err := sendDialData(str, m.DialDataRequest.NumBytes); err != nil {
				str.Reset()
				return Result{}, fmt.Errorf("autonat: sending dial data: %w", err)
			}
		case m.DialResponse != nil:
			return c.result(server, addr, m.DialResponse, pd)
		default:
			str.Reset()
			return Result{}, fmt.Errorf("%w: unexpected message", ErrBadResponse)
		}
	}
}

// result interprets a DialResponse.
func (c *Client) result(server peer.ID, addr ma.Multiaddr, r *DialResponse, pd *pending) (Result, error) {
	switch r.Status {
	case ResponseOK:
	case ResponseRequestRejected, ResponseDialRefused, ResponseInternalError:
		return Result{}, fmt.Errorf("%w: %v", ErrRejected, r.Status)
	default:
		return Result{}, fmt.Errorf("%w: status %v", ErrBadResponse, r.Status)
	}
	if r.AddrIdx != 0 {
		return Result{}, fmt.Errorf("%w: address index %d", ErrBadResponse, r.AddrIdx)
	}
	switch r.DialStatus {
	case DialError:
		return Result{Server: server, Addr: addr, Reachable: false}, nil
	case DialOK, DialBackError:
		c.mu.Lock()
		local := pd.local
		c.mu.Unlock()
		if local != nil && transportKey(local) == transportKey(addr) {
			// The nonce came: the address is reachable, whatever became
			// of the stream afterwards (E_DIAL_BACK_ERROR), as
			// go-libp2p's client also takes it.
			return Result{Server: server, Addr: addr, Reachable: true}, nil
		}
		if r.DialStatus == DialOK {
			return Result{}, fmt.Errorf("%w: OK without the nonce over %s", ErrBadResponse, transportKey(addr))
		}
	}
	return Result{}, fmt.Errorf("%w: dial status %v", ErrRejected, r.DialStatus)
}

// sendDialData sends n bytes in DialDataResponse messages of at most
// MaxDataChunk bytes.
func sendDialData(str network.Stream, n uint64) error {
	chunk := &Message{DialDataResponse: &DialDataResponse{Data: make([]byte, MaxDataChunk)}}
	for sent := uint64(0); sent < n; sent += MaxDataChunk {
		if err := WriteMessage(str, chunk); err != nil {
			return err
		}
	}
	return nil
}

// handleDialBack takes a server's dial back: it notes the connection's
// local address for the check whose nonce came, and acknowledges.
func (c *Client) handleDialBack(str network.Stream) {
	if err := attach(str); err != nil {
		return
	}
	defer str.Scope().ReleaseMemory(MaxMessageSize)
	str.SetDeadline(time.Now().Add(DefaultDialBackTimeout))
	var m DialBack
	if err := ReadMessage(str, &m); err != nil {
		str.Reset()
		return
	}
	c.mu.Lock()
	pd := c.pending[m.Nonce]
	if pd != nil {
		pd.local = str.Conn().LocalMultiaddr()
	}
	c.mu.Unlock()
	if pd == nil {
		str.Reset()
		return
	}
	WriteMessage(str, &DialBackResponse{})
	str.Close()
}

// CheckV1 asks server, over AutoNAT v1, to dial addr, and reports the
// outcome. A v1 server dials whichever of the addresses it is sent and
// answers for the host, so the client sends one address: OK with it (its
// /p2p suffix aside) is a success, E_DIAL_ERROR a failure. v1 has no
// nonce: the server's word is taken.
func (c *Client) CheckV1(ctx context.Context, server peer.ID, addr ma.Multiaddr) (Result, error) {
	str, err := c.h.NewStream(ctx, server, V1ID)
	if err != nil {
		return Result{}, fmt.Errorf("autonat: asking %s: %w", server, err)
	}
	defer str.Close()
	if err := attach(str); err != nil {
		return Result{}, err
	}
	defer str.Scope().ReleaseMemory(MaxMessageSize)
	if dl, ok := ctx.Deadline(); ok {
		str.SetDeadline(dl)
	}
	req := &V1Message{Type: V1TypeDial, Dial: &V1Dial{Peer: &V1PeerInfo{ID: []byte(c.h.ID()), Addrs: [][]byte{addr.Bytes()}}}}
	if err := WriteMessage(str, req); err != nil {
		str.Reset()
		return Result{}, fmt.Errorf("autonat: asking %s: %w", server, err)
	}
	var m V1Message
	if err := ReadMessage(str, &m); err != nil {
		str.Reset()
		return Result{}, fmt.Errorf("autonat: asking %s: %w", server, err)
	}
	if m.Type != V1TypeDialResponse || m.DialResponse == nil {
		str.Reset()
		return Result{}, fmt.Errorf("%w: %v without a dial response", ErrBadResponse, m.Type)
	}
	r := m.DialResponse
	switch r.Status {
	case V1OK:
		got, err := ma.NewMultiaddrBytes(r.Addr)
		if err != nil || !withoutP2P(got).Equal(withoutP2P(addr)) {
			return Result{}, fmt.Errorf("%w: OK for %v, asked about %v", ErrBadResponse, got, addr)
		}
		return Result{Server: server, Addr: addr, Reachable: true}, nil
	case V1DialError:
		return Result{Server: server, Addr: addr, Reachable: false}, nil
	case V1DialRefused, V1BadRequest, V1InternalError:
		return Result{}, fmt.Errorf("%w: %v (%q)", ErrRejected, r.Status, r.StatusText)
	}
	return Result{}, fmt.Errorf("%w: status %v", ErrBadResponse, r.Status)
}
