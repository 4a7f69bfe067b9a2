package p2pnet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/fakehost"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/peerstore"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/proto/ping"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

// stubConn is a connection that only knows its remote peer: all a
// forgetter asks of one.
type stubConn struct {
	network.Conn
	p peer.ID
}

func (c stubConn) RemotePeer() peer.ID { return c.p }

func newTestKey(t testing.TB) (ic.PrivKey, peer.ID) {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

// storeSome stores in ps some of everything a connected peer p leaves
// behind, as identify and ping do.
func storeSome(t *testing.T, ps *peerstore.Memory, p peer.ID, priv ic.PrivKey) {
	t.Helper()
	if err := ps.AddPubKey(p, priv.GetPublic()); err != nil {
		t.Fatal(err)
	}
	if err := ps.SetProtocols(p, "/a", "/b"); err != nil {
		t.Fatal(err)
	}
	if err := ps.Put(p, identify.AgentVersionKey, "x/1"); err != nil {
		t.Fatal(err)
	}
	ps.RecordLatency(p, time.Millisecond)
	ps.AddAddr(p, ma.StringCast("/ip4/192.0.2.1/tcp/1"), peerstore.ConnectedAddrTTL)
}

// remembered reports whether ps still holds anything but addresses
// about p.
func remembered(ps *peerstore.Memory, p peer.ID) bool {
	protos, _ := ps.GetProtocols(p)
	_, err := ps.Get(p, identify.AgentVersionKey)
	return slices.Contains(ps.PeersWithKeys(), p) || len(protos) > 0 || err == nil || ps.LatencyEWMA(p) != 0
}

// forgetterTest is a forgetter with grace one minute over a store that
// holds our own key, in a synctest bubble.
func forgetterTest(t *testing.T) (*forgetter, *peerstore.Memory, peer.ID) {
	ps := peerstore.New()
	selfPriv, self := newTestKey(t)
	if err := ps.AddPrivKey(self, selfPriv); err != nil {
		t.Fatal(err)
	}
	f := newForgetter(ps, self, time.Minute, peerstoreGCInterval)
	t.Cleanup(f.close)
	return f, ps, self
}

func TestForgetterForgetsAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, ps, self := forgetterTest(t)
		priv, p := newTestKey(t)
		c := stubConn{p: p}
		f.Connected(nil, c)
		storeSome(t, ps, p, priv)
		f.Disconnected(nil, c)
		ps.UpdateAddrs(p, peerstore.ConnectedAddrTTL, peerstore.RecentlyConnectedAddrTTL) // as identify does

		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if !remembered(ps, p) {
			t.Fatal("peer forgotten before the grace period ended")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if remembered(ps, p) {
			t.Fatal("peer still remembered when the grace period ended")
		}
		if got := ps.Addrs(p); len(got) != 1 {
			t.Errorf("addresses = %v; they should stay until they expire", got)
		}
		if ps.PrivKey(self) == nil {
			t.Error("our own key is gone")
		}
		// The addresses expire 15 minutes after the disconnection, and the
		// next sweep frees what is left.
		time.Sleep(peerstore.RecentlyConnectedAddrTTL - time.Minute + peerstoreGCInterval)
		synctest.Wait()
		if n := ps.Len(); n != 1 {
			t.Errorf("the peerstore holds %d peers; want 1 (ourselves)", n)
		}
	})
}

func TestForgetterKeepsReconnectedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, ps, _ := forgetterTest(t)
		priv, p := newTestKey(t)
		c1, c2, c3 := stubConn{p: p}, stubConn{p: p}, stubConn{p: p}
		f.Connected(nil, c1)
		storeSome(t, ps, p, priv)
		f.Disconnected(nil, c1)
		time.Sleep(30 * time.Second)
		f.Connected(nil, c2) // back within the grace period
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if !remembered(ps, p) {
			t.Fatal("a peer that reconnected within the grace period was forgotten")
		}

		// With two connections, closing one forgets nothing.
		f.Connected(nil, c3)
		f.Disconnected(nil, c2)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if !remembered(ps, p) {
			t.Fatal("a peer still connected was forgotten")
		}
		// The grace period counts from the last disconnection.
		f.Disconnected(nil, c3)
		time.Sleep(time.Minute - time.Nanosecond)
		synctest.Wait()
		if !remembered(ps, p) {
			t.Fatal("peer forgotten before the grace period ended")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if remembered(ps, p) {
			t.Fatal("peer still remembered a grace period after its last disconnection")
		}
	})
}

func TestForgetterNeverForgetsUs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, ps, self := forgetterTest(t)
		c := stubConn{p: self}
		f.Connected(nil, c)
		f.Disconnected(nil, c)
		time.Sleep(time.Hour)
		synctest.Wait()
		if ps.PrivKey(self) == nil {
			t.Fatal("our own key was forgotten")
		}
	})
}

func TestForgetterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, ps, _ := forgetterTest(t)
		priv, p := newTestKey(t)
		c := stubConn{p: p}
		f.Connected(nil, c)
		storeSome(t, ps, p, priv)
		f.Disconnected(nil, c)
		f.close()
		f.close() // twice is fine
		// Notifications after close, which the swarm may still deliver,
		// do nothing.
		q := stubConn{p: "other"}
		f.Connected(nil, q)
		f.Disconnected(nil, q)
		time.Sleep(time.Hour)
		synctest.Wait()
		if !remembered(ps, p) {
			t.Fatal("a closed forgetter forgot a peer")
		}
	})
}

// maxIdentify returns the identify answer of a peer with key priv that
// says as much as identify accepts and the peerstore keeps: MaxMessages
// messages of at most MaxMessageSize bytes, with identify.MaxListenAddrs
// listen addresses, identify.MaxProtocols protocols, and agent and
// protocol versions of peerstore.MaxMetadataLen bytes. Protocol IDs take
// the room left (maxProtoLen). n, below 100,000, makes every string
// distinct.
func maxIdentify(priv ic.PrivKey, n int) ([]byte, error) {
	return identifyAnswer(priv, n, maxProtoLen)
}

// maxProtoLen is the length of protocol IDs that fills a maximal
// identify answer: the largest multiple of 8 for which it fits.
var maxProtoLen = func() int {
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		panic(err)
	}
	for l := peerstore.MaxProtocolLen; ; l -= 8 {
		if _, err := identifyAnswer(priv, 99999, l); err == nil {
			return l
		}
	}
}()

// identifyAnswer is maxIdentify with protocol IDs of protoLen bytes.
func identifyAnswer(priv ic.PrivKey, n, protoLen int) ([]byte, error) {
	key, err := ic.MarshalPublicKey(priv.GetPublic())
	if err != nil {
		return nil, err
	}
	type field struct {
		num protowire.Number
		val []byte
	}
	fields := []field{
		{1, key},
		{4, ma.StringCast("/ip4/127.0.0.1/tcp/1").Bytes()},
		{5, []byte(fmt.Sprintf("%d/%s", n, strings.Repeat("p", peerstore.MaxMetadataLen)))[:peerstore.MaxMetadataLen]},
		{6, []byte(fmt.Sprintf("%d/%s", n, strings.Repeat("a", peerstore.MaxMetadataLen)))[:peerstore.MaxMetadataLen]},
	}
	for i := range identify.MaxListenAddrs {
		a := ma.StringCast(fmt.Sprintf("/dns4/%s.%d.example/tcp/%d", strings.Repeat("h", 120), n, i+1))
		fields = append(fields, field{2, a.Bytes()})
	}
	for i := range identify.MaxProtocols {
		id := fmt.Sprintf("/%d/%d/", n, i)
		fields = append(fields, field{3, []byte(id + strings.Repeat("x", protoLen-len(id)))})
	}
	var out, msg []byte
	msgs := 0
	flush := func() {
		out = binary.AppendUvarint(out, uint64(len(msg)))
		out = append(out, msg...)
		msg = msg[:0]
		msgs++
	}
	for _, f := range fields {
		size := protowire.SizeTag(f.num) + protowire.SizeBytes(len(f.val))
		if len(msg)+size > identify.MaxMessageSize {
			flush()
		}
		msg = protowire.AppendTag(msg, f.num, protowire.BytesType)
		msg = protowire.AppendBytes(msg, f.val)
	}
	flush()
	if msgs > identify.MaxMessages {
		return nil, fmt.Errorf("the maximal identify answer takes %d messages; identify reads %d", msgs, identify.MaxMessages)
	}
	return out, nil
}

// pingDelay is how long the peers of TestForgetManyMaximalPeers take to
// echo a ping.
const pingDelay = 5 * time.Millisecond

// TestForgetManyMaximalPeers is issue 9's test: 5,000 peers connect to
// our host, tell it as much as identify and the peerstore accept, are
// pinged, and leave, 100 at a time, one batch every 20 seconds. A grace
// period after the last leaves, the host has forgotten all but their
// addresses; once those expire (RecentlyConnectedAddrTTL after the
// disconnection) and the next sweep runs, the peerstore holds only
// ourselves, and the heap is back within forgetHeapSlack of where it
// started.
//
// It runs in a synctest bubble, so the hosts are internal/fakehost's,
// whose connections and streams are in memory: the real swarm cannot
// carry identify on the in-memory transport (internal/testtransport's
// streams have no deadlines, which identify sets, and are unbuffered
// pipes, on which lazy multistream negotiation deadlocks). Everything
// that stores or forgets is real: the identify service reading the
// peers' answers, the ping client, the peerstore, and the forgetter fed
// by the network's Connected and Disconnected notifications.
// TestForgetterOnRealHosts checks the forgetter's wiring into the real
// host.
func TestForgetManyMaximalPeers(t *testing.T) {
	const (
		peers = 5000
		batch = 100
		gap   = 20 * time.Second
		grace = time.Minute
	)
	synctest.Test(t, func(t *testing.T) {
		h := fakehost.New(t)
		ps := h.MemoryPeerstore()
		ids, err := identify.NewService(h)
		if err != nil {
			t.Fatal(err)
		}
		ids.Start()
		defer ids.Close()
		f := newForgetter(ps, h.ID(), grace, peerstoreGCInterval)
		h.Network().Notify(f)
		defer func() {
			h.Network().StopNotify(f)
			f.close()
		}()
		hAddr := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
		synctest.Wait()
		before := heapInUse()

		for b := 0; b < peers; b += batch {
			conns := make([]*fakehost.Conn, batch)
			remotes := make([]peer.ID, batch)
			for i := range batch {
				r := fakehost.New(t)
				answer, err := maxIdentify(r.PrivKey(), b+i)
				if err != nil {
					t.Fatal(err)
				}
				r.SetStreamHandler(identify.ID, func(s network.Stream) {
					s.Write(answer)
					s.Close()
				})
				r.SetStreamHandler(ping.ID, func(s network.Stream) {
					var buf [ping.PayloadSize]byte
					io.ReadFull(s, buf[:])
					time.Sleep(pingDelay)
					s.Write(buf[:])
					s.Close()
				})
				rAddr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 10000+i))
				conns[i], _ = fakehost.Connect(h, r, hAddr, rAddr)
				remotes[i] = r.ID()
			}
			synctest.Wait() // identified
			errs := make([]error, batch)
			var wg sync.WaitGroup
			for i, p := range remotes {
				wg.Go(func() {
					if _, err := ping.PingOnce(t.Context(), h, p); err != nil {
						errs[i] = err
						return
					}
					errs[i] = checkMaximal(ps, p)
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("peer %d: %v", b+i, err)
				}
			}
			for _, c := range conns {
				c.Disconnect()
			}
			time.Sleep(gap)
		}
		time.Sleep(grace)
		synctest.Wait()
		if got := ps.PeersWithKeys(); !slices.Equal(got, []peer.ID{h.ID()}) {
			t.Errorf("a grace period after the last peer left, %d peers have keys; want only ourselves", len(got))
		}
		time.Sleep(peerstore.RecentlyConnectedAddrTTL + peerstoreGCInterval)
		synctest.Wait()
		if n := ps.Len(); n != 1 {
			t.Errorf("after the addresses expired, the peerstore holds %d peers; want 1 (ourselves)", n)
		}
		after := heapInUse()
		t.Logf("heap: %d KiB before, %d KiB after %d peers came and went, each with %d protocol IDs of %d bytes",
			before>>10, after>>10, peers, identify.MaxProtocols, maxProtoLen)
		if after > before+forgetHeapSlack {
			t.Errorf("the heap grew by %d KiB; slack is %d KiB", (after-before)>>10, forgetHeapSlack>>10)
		}
	})
}

// forgetHeapSlack is how much larger the heap may be after thousands of
// peers came and went than before. About 0.6 MiB of it is the fake
// host's record of the 10,000 stream scopes it made, which it keeps for
// CheckScopes; a real host keeps none.
const forgetHeapSlack = 2 << 20

// checkMaximal checks that ps holds what maxIdentify and the ping told
// about p: the data the forgetter must then drop.
func checkMaximal(ps *peerstore.Memory, p peer.ID) error {
	protos, _ := ps.GetProtocols(p)
	agent, _ := ps.Get(p, identify.AgentVersionKey)
	switch {
	case len(protos) != identify.MaxProtocols:
		return fmt.Errorf("%d protocols stored; want %d", len(protos), identify.MaxProtocols)
	case len(ps.Addrs(p)) != peerstore.MaxAddrsPerPeer:
		return fmt.Errorf("%d addresses stored; want %d", len(ps.Addrs(p)), peerstore.MaxAddrsPerPeer)
	case agent == nil || len(agent.(string)) != peerstore.MaxMetadataLen:
		return fmt.Errorf("agent version %.20q… not stored", agent)
	case ps.LatencyEWMA(p) != pingDelay:
		return fmt.Errorf("LatencyEWMA = %v; want %v", ps.LatencyEWMA(p), pingDelay)
	}
	return nil
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestForgetterOnRealHosts checks startForgetting's wiring into a real
// host over TCP: the swarm's notifications reach the forgetter, which
// forgets a peer (here at once: grace 0) once its last connection
// closes, after identify and ping stored what they learnt.
func TestForgetterOnRealHosts(t *testing.T) {
	newTCPHost := func() *Host {
		h, err := New(ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	a, b := newTCPHost(), newTCPHost()
	forgotten := make(chan peer.ID, 1)
	f := a.startForgetting(0)
	f.forgotten = func(p peer.ID) { forgotten <- p }
	defer a.stopForgetting(f)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range a.Network().ConnsToPeer(b.ID()) {
		<-a.Identify().IdentifyWait(c)
	}
	if _, err := ping.PingOnce(ctx, a, b.ID()); err != nil {
		t.Fatal(err)
	}
	if !remembered(a.ps, b.ID()) || a.ps.LatencyEWMA(b.ID()) <= 0 {
		t.Fatal("identify and ping stored nothing about the peer")
	}
	b.Close()
	select {
	case p := <-forgotten:
		if p != b.ID() {
			t.Fatalf("forgot %s; want %s", p, b.ID())
		}
	case <-ctx.Done():
		t.Fatal("the peer was not forgotten after its connection closed")
	}
	if remembered(a.ps, b.ID()) {
		t.Error("the forgotten peer is still remembered")
	}
	if len(a.ps.Addrs(b.ID())) == 0 {
		t.Error("the forgotten peer's addresses are gone; they should stay until they expire")
	}
	if a.ps.PrivKey(a.ID()) == nil {
		t.Error("our own key is gone")
	}
}
