package compat_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	levent "github.com/libp2p/go-libp2p/core/event"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	lpeerstore "github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2pnet/p2pnet/compat"
	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/transport/quic"

	quicgo "github.com/quic-go/quic-go"
)

// TestKeysAndIDs: keys of every type cross both ways through their
// protobuf form, and both stacks derive the same peer ID from them.
func TestKeysAndIDs(t *testing.T) {
	for _, typ := range []ic.KeyType{ic.Ed25519, ic.Secp256k1, ic.ECDSA, ic.RSA} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			bits := 2048
			if typ == ic.ECDSA {
				bits = 256
			}
			sk, pk, err := ic.GenerateKeyPairWithReader(typ, bits, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			lsk, err := compat.Libp2pPrivKey(sk)
			if err != nil {
				t.Fatal(err)
			}
			lpk, err := compat.Libp2pPubKey(pk)
			if err != nil {
				t.Fatal(err)
			}
			if !lsk.GetPublic().Equals(lpk) {
				t.Error("converted private key's public half differs from the converted public key")
			}
			id, err := peer.IDFromPublicKey(pk)
			if err != nil {
				t.Fatal(err)
			}
			lid, err := lpeer.IDFromPublicKey(lpk)
			if err != nil {
				t.Fatal(err)
			}
			if compat.Libp2pPeerID(id) != lid || compat.P2PNetPeerID(lid) != id || lid.String() != id.String() {
				t.Errorf("peer IDs differ: %v, %v", id, lid)
			}
			back, err := compat.P2PNetPrivKey(lsk)
			if err != nil {
				t.Fatal(err)
			}
			if !ic.KeyEqual(back, sk) {
				t.Error("private key changed on the round trip")
			}
			backPub, err := compat.P2PNetPubKey(lpk)
			if err != nil {
				t.Fatal(err)
			}
			if !ic.KeyEqual(backPub, pk) {
				t.Error("public key changed on the round trip")
			}
		})
	}
}

// TestErrors: errors.Is finds go-libp2p's sentinels in converted p2pnet
// errors and p2pnet's in converted go-libp2p errors, keeps finding the
// originals, and leaves other errors alone.
func TestErrors(t *testing.T) {
	pairs := []struct{ ours, theirs error }{
		{network.ErrReset, lnetwork.ErrReset},
		{network.ErrNoConn, lnetwork.ErrNoConn},
		{network.ErrLimitedConn, lnetwork.ErrLimitedConn},
		{network.ErrNoRemoteAddrs, lnetwork.ErrNoRemoteAddrs},
		{network.ErrResourceLimitExceeded, lnetwork.ErrResourceLimitExceeded},
		{network.ErrResourceScopeClosed, lnetwork.ErrResourceScopeClosed},
		{peerstore.ErrNotFound, lpeerstore.ErrNotFound},
	}
	for _, p := range pairs {
		ours := fmt.Errorf("context: %w", p.ours)
		got := compat.Libp2pError(ours)
		if !errors.Is(got, p.theirs) || !errors.Is(got, p.ours) {
			t.Errorf("Libp2pError(%v): Is(theirs) %v, Is(ours) %v", ours, errors.Is(got, p.theirs), errors.Is(got, p.ours))
		}
		theirs := fmt.Errorf("context: %w", p.theirs)
		back := compat.P2PNetError(theirs)
		if !errors.Is(back, p.ours) || !errors.Is(back, p.theirs) {
			t.Errorf("P2PNetError(%v): Is(ours) %v, Is(theirs) %v", theirs, errors.Is(back, p.ours), errors.Is(back, p.theirs))
		}
		for _, q := range pairs {
			if q != p && (errors.Is(got, q.theirs) || errors.Is(back, q.ours)) {
				t.Errorf("%v converted matches %v", p.ours, q.theirs)
			}
		}
	}
	for _, err := range []error{nil, io.EOF, os.ErrDeadlineExceeded, errors.New("other")} {
		if compat.Libp2pError(err) != err || compat.P2PNetError(err) != err {
			t.Errorf("%v changed", err)
		}
	}
	// A yamux reset with the resource-limit code, as a stream refused
	// for resources fails.
	refused := fmt.Errorf("read: %w", &yamux.StreamError{Code: uint32(network.StreamResourceLimitExceeded), Remote: true})
	got := compat.Libp2pError(refused)
	var se *lnetwork.StreamError
	if !errors.As(got, &se) || se.ErrorCode != lnetwork.StreamResourceLimitExceeded || !se.Remote {
		t.Errorf("refusal: %#v, want a StreamError", got)
	}
	for _, target := range []error{lnetwork.ErrReset, lnetwork.ErrResourceLimitExceeded, network.ErrReset, network.ErrResourceLimitExceeded} {
		if !errors.Is(got, target) {
			t.Errorf("refusal %v does not match %v", got, target)
		}
	}
	// A QUIC stream the remote reset with a code, as p2pnet's QUIC
	// transport reports it.
	qerr := fmt.Errorf("%w: %w", quic.ErrStreamReset, &quicgo.StreamError{ErrorCode: 0x42, Remote: true})
	got = compat.Libp2pError(qerr)
	if !errors.As(got, &se) || se.ErrorCode != 0x42 || !se.Remote || !errors.Is(got, lnetwork.ErrReset) {
		t.Errorf("QUIC reset: %#v, want a remote StreamError with code 0x42", got)
	}
}

// TestEventConversion: each of the host's events converts to
// go-libp2p's and back unchanged.
func TestEventConversion(t *testing.T) {
	a := ma.StringCast("/ip4/127.0.0.1/tcp/1")
	p := peer.ID("peer")
	evs := []any{
		event.EvtPeerConnectednessChanged{Peer: p, Connectedness: network.Limited},
		event.EvtPeerIdentificationCompleted{Peer: p, ListenAddrs: []ma.Multiaddr{a}, Protocols: []protocol.ID{"/a"}, ProtocolVersion: "pv", AgentVersion: "av", ObservedAddr: a},
		event.EvtPeerProtocolsUpdated{Peer: p, Added: []protocol.ID{"/a"}, Removed: []protocol.ID{"/b"}},
		event.EvtLocalProtocolsUpdated{Added: []protocol.ID{"/a"}},
		event.EvtLocalAddressesUpdated{Diffs: true, Current: []event.UpdatedAddress{{Address: a, Action: event.Added}}, Removed: []event.UpdatedAddress{{Address: a, Action: event.Removed}}},
		event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate},
		event.EvtNATDeviceTypeChanged{TransportProtocol: network.NATTransportTCP, NatDeviceType: network.NATDeviceTypeSymmetric},
	}
	for _, ev := range evs {
		l, ok := compat.Libp2pEvent(ev)
		if !ok {
			t.Errorf("%T not converted", ev)
			continue
		}
		back, ok := compat.P2PNetEvent(l)
		if !ok || fmt.Sprintf("%#v", back) != fmt.Sprintf("%#v", ev) {
			t.Errorf("%#v came back as %#v", ev, back)
		}
	}
	l, _ := compat.Libp2pEvent(event.EvtNATDeviceTypeChanged{NatDeviceType: network.NATDeviceTypeCone})
	if l.(levent.EvtNATDeviceTypeChanged).NatDeviceType != lnetwork.NATDeviceTypeEndpointIndependent {
		t.Error("NAT device types differ")
	}
	f, _ := compat.Libp2pEvent(event.EvtPeerIdentificationFailed{Peer: p, Reason: fmt.Errorf("x: %w", network.ErrReset)})
	if !errors.Is(f.(levent.EvtPeerIdentificationFailed).Reason, lnetwork.ErrReset) {
		t.Error("identification failure's reason lost its sentinel")
	}
	if _, ok := compat.Libp2pEvent(struct{}{}); ok {
		t.Error("a foreign event converted")
	}
	if compat.Libp2pDirection(network.DirInbound) != lnetwork.DirInbound || compat.P2PNetDirection(lnetwork.DirOutbound) != network.DirOutbound {
		t.Error("directions differ")
	}
	for c := network.NotConnected; c <= network.Limited; c++ {
		if compat.Libp2pConnectedness(c).String() != c.String() || compat.P2PNetConnectedness(compat.Libp2pConnectedness(c)) != c {
			t.Errorf("connectedness %v", c)
		}
	}
	if compat.Libp2pReachability(network.ReachabilityPublic) != lnetwork.ReachabilityPublic || compat.P2PNetReachability(lnetwork.ReachabilityPrivate) != network.ReachabilityPrivate {
		t.Error("reachabilities differ")
	}
}
