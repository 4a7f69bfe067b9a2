package quic

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/p2pnet/p2pnet/network"

	quicgo "github.com/quic-go/quic-go"
)

// HandshakeStats counts a Transport's inbound handshakes, on all its
// sockets. Counts of Initials count packets: a client whose ClientHello
// takes two (as a post-quantum key share does) may be counted twice.
type HandshakeStats struct {
	// InProgress is the number of inbound handshakes in progress, from
	// the client's first Initial to the handshake's end or failure. It is
	// at most the WithMaxHandshakes limit.
	InProgress int
	// Unverified is how many of them began from an address nobody had
	// validated (with a Retry, or a token from an earlier connection).
	Unverified int
	// Retries counts the Initials answered with a Retry.
	Retries uint64
	// RefusedBudget counts the Initials refused with CONNECTION_REFUSED
	// because WithMaxHandshakes handshakes were in progress.
	RefusedBudget uint64
	// RefusedLimits counts the refusals of the resource manager: of
	// Initials before the handshake (CONNECTION_REFUSED), and of
	// connections after it (application error 0x1001).
	RefusedLimits uint64
}

// HandshakeStats returns the transport's counts of inbound handshakes.
func (t *Transport) HandshakeStats() HandshakeStats {
	return HandshakeStats{
		InProgress:    int(t.handshakes.Load()),
		Unverified:    int(t.unverified.Load()),
		Retries:       t.retries.Load(),
		RefusedBudget: t.refusedBudget.Load(),
		RefusedLimits: t.refusedLimits.Load(),
	}
}

// beginHandshake counts a new inbound handshake, unless maxHandshakes are
// in progress already.
func (t *Transport) beginHandshake(verified bool) bool {
	for {
		n := t.handshakes.Load()
		if n >= t.maxHandshakes {
			return false
		}
		if t.handshakes.CompareAndSwap(n, n+1) {
			break
		}
	}
	if !verified {
		t.unverified.Add(1)
	}
	return true
}

// endHandshake stops counting an inbound handshake begun by
// beginHandshake.
func (t *Transport) endHandshake(verified bool) {
	if !verified {
		t.unverified.Add(-1)
	}
	t.handshakes.Add(-1)
}

// verifySourceAddress is quic-go's question, for each Initial from an
// address not validated yet, whether the client must prove its address
// with a Retry before its handshake begins: only while retryThreshold or
// more handshakes from unvalidated addresses are in progress. quic-go
// asks from one goroutine per socket, just before connContext counts the
// handshake, so the count exceeds the threshold by at most one per
// listening socket.
func (t *Transport) verifySourceAddress(net.Addr) bool {
	if t.unverified.Load() < t.retryThreshold {
		return false
	}
	t.retries.Add(1)
	return true
}

// connContext is quic-go's hook for each new inbound connection attempt,
// called before the handshake begins; an error makes quic-go answer
// CONNECTION_REFUSED and keep nothing. It counts the handshake against
// the transport's budget, asks the resource manager whether it would
// take the connection now (opening a scope and ending it at once: the
// scope is opened for good when the handshake completes, see
// Listener.setUp), and prepares the TLS configuration of the handshake.
// The handshake stops counting when it completes or the connection ends.
func (t *Transport) connContext(ctx context.Context, ep *endpoint, info *quicgo.ClientInfo) (context.Context, error) {
	if !t.beginHandshake(info.AddrVerified) {
		t.refusedBudget.Add(1)
		return ctx, errHandshakeBudget
	}
	st := &connState{t: t, ep: ep, verified: info.AddrVerified, start: time.Now()}
	st.handshaking.Store(true)
	raddr, err := quicMultiaddr(info.RemoteAddr)
	if err != nil {
		raddr = nil // let the resource manager decide without it
	}
	scope, err := t.rcmgr.OpenConnection(network.DirInbound, false, raddr)
	if err != nil {
		st.endHandshake()
		t.refusedLimits.Add(1)
		return ctx, err
	}
	scope.Done()
	st.tlsConf, st.keys = t.identity.ConfigForPeer("", alpn)
	ctx = context.WithValue(ctx, connStateKey{}, st)
	context.AfterFunc(ctx, st.release)
	return ctx, nil
}

// maxReasonLen bounds the reason phrase of a refusal's CONNECTION_CLOSE
// frame, which must fit in one packet.
const maxReasonLen = 256

// refuse closes an established connection because the resource manager
// refused it with err: application error 0x1001, RESOURCE_LIMIT_EXCEEDED,
// with err's text as the reason.
func refuse(qc *quicgo.Conn, err error) {
	reason := err.Error()
	if !strings.Contains(reason, network.ErrResourceLimitExceeded.Error()) {
		reason = network.ErrResourceLimitExceeded.Error() + ": " + reason
	}
	if len(reason) > maxReasonLen {
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "")
	}
	qc.CloseWithError(codeResourceLimitExceeded, reason)
}
