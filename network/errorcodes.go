package network

// StreamErrorCode is the reason a stream reset carries to the remote side
// (libp2p/specs error-codes): yamux puts it in the Length field of the
// WindowUpdate frame with the RST flag, QUIC in RESET_STREAM. Peers that
// send none send StreamNoError. The values are libp2p's.
type StreamErrorCode uint32

// Stream reset codes.
const (
	StreamNoError                   StreamErrorCode = 0
	StreamProtocolNegotiationFailed StreamErrorCode = 0x1001
	StreamResourceLimitExceeded     StreamErrorCode = 0x1002
	StreamRateLimited               StreamErrorCode = 0x1003
	StreamProtocolViolation         StreamErrorCode = 0x1004
	StreamSupplanted                StreamErrorCode = 0x1005
	StreamGarbageCollected          StreamErrorCode = 0x1006
	StreamShutdown                  StreamErrorCode = 0x1007
	StreamGated                     StreamErrorCode = 0x1008
	StreamCodeOutOfRange            StreamErrorCode = 0x1009
)

// ConnErrorCode is the reason a connection close carries to the remote
// side (libp2p/specs error-codes): yamux puts it in the Length field of
// the GoAway frame, QUIC in CONNECTION_CLOSE. The values are libp2p's.
type ConnErrorCode uint32

// Connection close codes.
const (
	ConnNoError                   ConnErrorCode = 0
	ConnProtocolNegotiationFailed ConnErrorCode = 0x1000
	ConnResourceLimitExceeded     ConnErrorCode = 0x1001
	ConnRateLimited               ConnErrorCode = 0x1002
	ConnProtocolViolation         ConnErrorCode = 0x1003
	ConnSupplanted                ConnErrorCode = 0x1004
	ConnGarbageCollected          ConnErrorCode = 0x1005
	ConnShutdown                  ConnErrorCode = 0x1006
	ConnGated                     ConnErrorCode = 0x1007
	ConnCodeOutOfRange            ConnErrorCode = 0x1008
)
