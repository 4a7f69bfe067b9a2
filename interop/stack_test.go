package interop

import (
	"crypto/rand"
	"io"
	"sync"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/mux/yamux"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"
	"github.com/p2pnet/p2pnet/protocol"
	"github.com/p2pnet/p2pnet/sec"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"
	"github.com/p2pnet/p2pnet/transport"
	"github.com/p2pnet/p2pnet/transport/tcp"
	"github.com/p2pnet/p2pnet/upgrader"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-libp2p starts process-wide workers that outlive its hosts.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/host/resource-manager.(*resourceManager).background"),
	)
}

// securities are the security protocols proven against go-libp2p.
var securities = []string{"noise", "tls"}

// goHost starts a go-libp2p host on loopback TCP speaking only the named
// security protocol and yamux.
func goHost(t testing.TB, security string) lphost.Host {
	t.Helper()
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		// go-libp2p's default limits allow 64 inbound streams per protocol
		// and peer; the tests run 100 at once to test the wire, not
		// go-libp2p's limits.
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}),
	}
	switch security {
	case "noise":
		opts = append(opts, libp2p.Security(lpnoise.ID, lpnoise.New))
	case "tls":
		opts = append(opts, libp2p.Security(lptls.ID, lptls.New))
	default:
		t.Fatalf("unknown security %q", security)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// ourStack is p2pnet's TCP transport with the upgrader, the named
// security protocol and yamux.
type ourStack struct {
	id peer.ID
	tr *tcp.Transport
}

func newOurStack(t testing.TB, security string) *ourStack {
	t.Helper()
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(priv)
	muxers := []protocol.ID{yamux.ID}
	var st sec.Transport
	switch security {
	case "noise":
		st, err = noise.New(priv, muxers)
	case "tls":
		st, err = tls.New(priv, muxers)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := upgrader.New(upgrader.Config{
		Security: []sec.Transport{st},
		Muxers:   []upgrader.Muxer{{ID: yamux.ID, Mux: yamux.DefaultTransport}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &ourStack{id: id, tr: tcp.New(u, nil)}
}

// serve accepts connections on l and their streams, negotiating each
// stream's protocol against router and running its handler, until l
// closes. It returns a function that closes l and waits for everything
// it started.
func serve(l transport.Listener, router *multistream.Router[func(network.MuxedStream)], conns chan<- transport.CapableConn) func() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []transport.CapableConn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			if conns != nil {
				conns <- c
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					s, err := c.AcceptStream()
					if err != nil {
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, h, err := router.Negotiate(s)
						if err != nil {
							s.Reset()
							return
						}
						h(s)
					}()
				}
			}()
		}
	}()
	return func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// echo copies a stream back to itself until EOF, then closes it.
func echo(s network.MuxedStream) {
	io.Copy(s, s)
	s.Close()
}
