package autonat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"

	ma "github.com/multiformats/go-multiaddr"
)

// handleV1 serves one AutoNAT v1 request: it dials the requester back
// at those of its addresses that are based on the IP we see it at (the
// spec's defence against RFC 3489's attack I), and answers OK with the
// address that connected, or E_DIAL_ERROR.
func (s *Server) handleV1(str network.Stream) {
	p := str.Conn().RemotePeer()
	if err := attach(str); err != nil {
		slog.Debug("autonat: v1 stream refused by the resource manager", "peer", p, "err", err)
		return
	}
	defer str.Scope().ReleaseMemory(MaxMessageSize)
	str.SetDeadline(time.Now().Add(DefaultStreamTimeout))
	var req V1Message
	if err := ReadMessage(str, &req); err != nil {
		slog.Debug("autonat: v1 request", "peer", p, "err", err)
		str.Reset()
		return
	}
	if req.Type != V1TypeDial {
		slog.Debug("autonat: v1 request", "peer", p, "err", fmt.Errorf("%w: %v where DIAL was expected", ErrMalformed, req.Type))
		str.Reset()
		return
	}
	var resp *V1DialResponse
	if !s.admit(p) {
		resp = &V1DialResponse{Status: V1DialRefused, StatusText: "too many dials"}
	} else {
		defer s.wg.Done()
		served := Served{Peer: p, V1: true}
		resp = s.serveV1(str.Conn(), req.Dial, &served)
		s.release(p)
		if s.onServed != nil {
			defer s.onServed(served)
		}
	}
	if err := WriteMessage(str, &V1Message{Type: V1TypeDialResponse, DialResponse: resp}); err != nil {
		str.Reset()
		return
	}
	str.Close()
}

// serveV1 checks a v1 request that came on c and dials back, noting
// what it did in served.
func (s *Server) serveV1(c network.Conn, d *V1Dial, served *Served) *V1DialResponse {
	if d == nil || d.Peer == nil {
		return &V1DialResponse{Status: V1BadRequest, StatusText: "missing peer info"}
	}
	p := c.RemotePeer()
	if d.Peer.ID != nil {
		id, err := peer.IDFromBytes(d.Peer.ID)
		if err != nil {
			return &V1DialResponse{Status: V1BadRequest, StatusText: "bad peer id"}
		}
		if id != p {
			return &V1DialResponse{Status: V1BadRequest, StatusText: "peer id mismatch"}
		}
	}
	// The IP we see the requester at: a relayed connection shows none we
	// could trust, and the spec forbids serving over one.
	seen, ok := ipOf(c.RemoteMultiaddr())
	if !ok || c.Stat().Limited || !s.public.Contains(c.RemoteMultiaddr()) {
		return &V1DialResponse{Status: V1DialRefused, StatusText: "requester's address is not public"}
	}
	addrs := v1Addrs(d.Peer.Addrs, seen, func(a ma.Multiaddr) bool { return s.public.Contains(a) && s.canDial(a) })
	if len(addrs) == 0 {
		return &V1DialResponse{Status: V1DialRefused, StatusText: "no dialable addresses"}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.dialTimeout)
	defer cancel()
	got, err := s.dialV1(ctx, p, addrs)
	served.Addr = addrs[0]
	if err != nil {
		slog.Debug("autonat: v1 dial back", "peer", p, "err", err)
		if errors.Is(s.ctx.Err(), context.Canceled) {
			return &V1DialResponse{Status: V1InternalError, StatusText: "server closing"}
		}
		return &V1DialResponse{Status: V1DialError, StatusText: "dial failed"}
	}
	served.Addr, served.Reachable = got, true
	return &V1DialResponse{Status: V1OK, Addr: got.Bytes()}
}

// v1Addrs returns the addresses of raw that parse, whose IP is seen and
// that ok accepts, without duplicates or /p2p suffixes, at most
// MaxV1Addrs of them.
func v1Addrs(raw [][]byte, seen netip.Addr, ok func(ma.Multiaddr) bool) []ma.Multiaddr {
	var addrs []ma.Multiaddr
	for _, b := range raw {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			continue
		}
		a = withoutP2P(a)
		if ip, isIP := ipOf(a); !isIP || ip != seen || !ok(a) || slices.ContainsFunc(addrs, a.Equal) {
			continue
		}
		if addrs = append(addrs, a); len(addrs) == MaxV1Addrs {
			break
		}
	}
	return addrs
}

// dialV1 connects from d to p at addrs within ctx and returns the
// address it connected to, closing the connection.
func dialV1(ctx context.Context, d Dialer, p peer.ID, addrs []ma.Multiaddr) (ma.Multiaddr, error) {
	d.Peerstore().ClearAddrs(p)
	d.Peerstore().AddAddrs(p, addrs, peerstore.TempAddrTTL)
	defer d.Peerstore().ClearAddrs(p)
	c, err := d.Network().DialPeer(network.WithForceDirectDial(ctx, "autonat v1 dial back"), p)
	if err != nil {
		return nil, err
	}
	got := c.RemoteMultiaddr()
	d.Network().ClosePeer(p)
	return got, nil
}

// withoutP2P returns a without a trailing /p2p component.
func withoutP2P(a ma.Multiaddr) ma.Multiaddr {
	if n := len(a); n > 0 && a[n-1].Code() == ma.P_P2P {
		return a[:n-1]
	}
	return a
}
