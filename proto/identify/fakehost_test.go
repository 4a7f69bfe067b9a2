package identify

import (
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
	"github.com/p2pnet/p2pnet/internal/fakehost"

	ma "github.com/multiformats/go-multiaddr"
)

// fakeHost is the in-memory host the tests run identify on.
type fakeHost = fakehost.Host

// fakeConn is one end of a connection between fakeHosts.
type fakeConn = fakehost.Conn

// newFakeHost makes a host with a key of type typ; ECDSA keys are too
// long to be inlined in the peer ID, so the peer ID alone does not give
// the key away.
func newFakeHost(t *testing.T, typ ic.KeyType) *fakeHost { return fakehost.NewWithKey(t, typ) }

// connect links a, at aAddr, and b, at bAddr, and fires the Connected
// notifications of both sides. It returns a's and b's ends.
func connect(a, b *fakeHost, aAddr, bAddr string) (ab, ba *fakeConn) {
	return fakehost.Connect(a, b, ma.StringCast(aAddr), ma.StringCast(bAddr))
}
