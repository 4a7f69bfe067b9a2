package swarm

import (
	"strings"

	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrError is why one address of a peer could not be dialed.
type AddrError struct {
	Addr ma.Multiaddr
	Err  error
}

// Error names the address and the reason.
func (e *AddrError) Error() string { return e.Addr.String() + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *AddrError) Unwrap() error { return e.Err }

// DialError is the error of a failed DialPeer: the overall cause and, for
// each address that was considered, why it failed. errors.Is and errors.As
// see the cause and every address's error.
type DialError struct {
	// Peer is the peer that was dialed.
	Peer peer.ID
	// Addrs lists the addresses that failed, in the order they failed.
	Addrs []AddrError
	// Cause is the overall reason: ErrAllDialsFailed,
	// network.ErrNoRemoteAddrs, ErrNoGoodAddresses, a context error, ...
	Cause error
}

// Error lists the cause and each address with its error.
func (e *DialError) Error() string {
	var b strings.Builder
	b.WriteString("failed to dial ")
	b.WriteString(e.Peer.String())
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	for i := range e.Addrs {
		b.WriteString("\n  * [")
		b.WriteString(e.Addrs[i].Addr.String())
		b.WriteString("] ")
		b.WriteString(e.Addrs[i].Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause followed by every address's error, so that
// errors.Is finds any of them.
func (e *DialError) Unwrap() []error {
	errs := make([]error, 0, len(e.Addrs)+1)
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	for i := range e.Addrs {
		errs = append(errs, &e.Addrs[i])
	}
	return errs
}

// record adds the failure of addr.
func (e *DialError) record(addr ma.Multiaddr, err error) {
	e.Addrs = append(e.Addrs, AddrError{Addr: addr, Err: err})
}
