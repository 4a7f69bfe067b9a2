package multistream

import (
	"errors"
	"fmt"

	"github.com/p2pnet/p2pnet/protocol"
)

var (
	// ErrNotSupported matches, under errors.Is, the [*NotSupportedError]
	// a dialer gets when the listener refuses every protocol it proposed.
	ErrNotSupported = errors.New("multistream: protocol not supported")

	// ErrTooLarge reports a message whose length prefix exceeds
	// [MaxMessageSize], or a protocol ID too long to fit in a message.
	ErrTooLarge = errors.New("multistream: message too large")

	// ErrMalformed reports a message that breaks the wire format: a length
	// prefix that is not a minimal varint, or a message that does not end
	// with '\n'.
	ErrMalformed = errors.New("multistream: malformed message")

	// ErrHeaderMismatch reports a peer whose first message is not
	// /multistream/1.0.0.
	ErrHeaderMismatch = errors.New("multistream: peer does not speak " + ProtocolID)

	// ErrUnexpectedResponse reports a listener that answered a proposal
	// with neither the proposal nor "na".
	ErrUnexpectedResponse = errors.New("multistream: unexpected answer to proposal")

	// ErrNoProtocols is returned by [SelectOneOf] when it is given no
	// protocols to propose.
	ErrNoProtocols = errors.New("multistream: no protocols to propose")

	// ErrTooManyRounds is returned by [Router.Negotiate] when the dialer
	// has been refused [MaxRounds] times.
	ErrTooManyRounds = errors.New("multistream: too many refused proposals")

	// ErrInvalidProtocol reports a protocol ID that cannot be proposed or
	// registered: empty, not UTF-8, containing '\n', too long for a
	// message, or one of the reserved words "na", "ls" and the
	// multistream header itself.
	ErrInvalidProtocol = errors.New("multistream: invalid protocol ID")
)

// NotSupportedError is the error a dialer gets when the listener answered
// "na" to every protocol it proposed. It matches [ErrNotSupported].
type NotSupportedError struct {
	// Protocols lists the refused proposals, in the order they were made.
	Protocols []protocol.ID
}

// Error lists the refused protocols.
func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("multistream: protocols not supported: %q", e.Protocols)
}

// Is reports whether target is [ErrNotSupported].
func (e *NotSupportedError) Is(target error) bool {
	return target == ErrNotSupported
}
