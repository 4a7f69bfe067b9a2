package rcmgr

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/p2pnet/p2pnet/network"
)

var (
	// ErrInvalidLimits is wrapped by the errors of limits that cannot be
	// used: a negative limit, or a JSON file that does not parse, names an
	// unknown field or holds a value out of range.
	ErrInvalidLimits = errors.New("rcmgr: invalid limits")

	// ErrAlreadyAttached is returned by SetPeer, SetProtocol and SetService
	// when the scope already has a peer, protocol or service.
	ErrAlreadyAttached = errors.New("rcmgr: scope already attached")

	// ErrNegativeMemory is returned by ReserveMemory for a negative size.
	ErrNegativeMemory = errors.New("rcmgr: negative memory reservation")

	// errManagerClosed is returned by OpenConnection and OpenStream after
	// Close.
	errManagerClosed = fmt.Errorf("rcmgr: manager closed: %w", network.ErrResourceScopeClosed)
)

// LimitError is the error of every refused reservation. It says which
// scope refused, which resource, how much was asked for, how much was in
// use, the limit, and which field of Limits the limit came from.
// errors.Is(err, network.ErrResourceLimitExceeded) reports true for it.
//
// The message reads, for example,
//
//	peer 12D3KooW…: cannot reserve inbound stream: 256 of 256 in use (limit from PeerDefault)
//	system: cannot reserve 20.0 MiB of memory at priority 101 (low): 390.1 MiB of 1.0 GiB in use, this priority may use up to 408.0 MiB (limit from System)
type LimitError struct {
	// Scope names the scope that refused, as in "system", "peer 12D3KooW…",
	// "protocol /ipfs/ping/1.0.0 / peer 12D3KooW…", "stream 42" or
	// "ip 203.0.113.7/32".
	Scope string
	// Kind is the kind of that scope.
	Kind ScopeKind
	// Resource is the resource that ran out.
	Resource Resource
	// Requested is how much was asked for: bytes, or a count.
	Requested int64
	// Used is how much the scope held before the request.
	Used int64
	// Limit is the scope's limit for the resource.
	Limit int64
	// Priority is the priority of a memory reservation; 0 for the other
	// resources.
	Priority uint8
	// Allowed is what the scope may hold at Priority: for memory
	// (1+Priority)*Limit/256, for other resources Limit.
	Allowed int64
	// Origin names where Limit came from: a field of Limits such as
	// "System" or "PeerDefault", an override such as `Peer["12D3KooW…"]`,
	// or "ConnLimitsPerIP".
	Origin string
}

// Error describes the refusal in one line.
func (e *LimitError) Error() string {
	if e.Resource == ResourceMemory {
		s := fmt.Sprintf("%s: cannot reserve %s of memory at priority %s: %s of %s in use",
			e.Scope, formatBytes(e.Requested), formatPriority(e.Priority), formatBytes(e.Used), formatLimit(e.Resource, e.Limit))
		if e.Allowed != e.Limit {
			s += ", this priority may use up to " + formatBytes(e.Allowed)
		}
		return s + " (limit from " + e.Origin + ")"
	}
	what := e.Resource.String()
	if e.Requested != 1 {
		what = strconv.FormatInt(e.Requested, 10) + " " + what + "s"
	}
	return fmt.Sprintf("%s: cannot reserve %s: %d of %s in use (limit from %s)",
		e.Scope, what, e.Used, formatLimit(e.Resource, e.Limit), e.Origin)
}

// Unwrap returns network.ErrResourceLimitExceeded.
func (e *LimitError) Unwrap() error { return network.ErrResourceLimitExceeded }

// formatLimit writes a limit, or "unlimited".
func formatLimit(r Resource, v int64) string {
	if unlimited(r, v) {
		return "unlimited"
	}
	if r == ResourceMemory {
		return formatBytes(v)
	}
	return strconv.FormatInt(v, 10)
}

// formatPriority writes a priority with the name of the constant it
// equals, if any.
func formatPriority(p uint8) string {
	s := strconv.Itoa(int(p))
	switch p {
	case network.ReservationPriorityLow:
		s += " (low)"
	case network.ReservationPriorityMedium:
		s += " (medium)"
	case network.ReservationPriorityHigh:
		s += " (high)"
	case network.ReservationPriorityAlways:
		s += " (always)"
	}
	return s
}

// formatBytes writes n bytes for people: "512 B", "1.0 MiB", "390.1 MiB".
func formatBytes(n int64) string {
	if n == math.MaxInt64 {
		return "unlimited"
	}
	if n < kib && n > -kib {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	i := 0
	for (v >= 1024 || v <= -1024) && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
