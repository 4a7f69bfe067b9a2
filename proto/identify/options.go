package identify

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// DefaultProtocolVersion is the protocol version announced by default,
// the one libp2p implementations announce.
const DefaultProtocolVersion = "ipfs/0.1.0"

// DefaultTimeout bounds each exchange, in either direction: identify,
// its answer, and a push. It is go-libp2p's value.
const DefaultTimeout = 5 * time.Second

// maxVersionLen bounds the user agent and protocol version we announce,
// so that they leave room for the rest of the message.
const maxVersionLen = 1 << 10

// ErrInvalidOption is the error of NewService given an unusable option.
var ErrInvalidOption = errors.New("identify: invalid option")

// DefaultUserAgent is the agent version announced by default:
// "p2pnet/" followed by the version of the p2pnet module the program was
// built with, or "devel" when that is unknown.
var DefaultUserAgent = "p2pnet/" + moduleVersion()

const modulePath = "github.com/p2pnet/p2pnet"

// moduleVersion finds the p2pnet module's version in the build info.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := ""
	if bi.Main.Path == modulePath {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			v = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				v = d.Replace.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return v
}

// config is what the options set.
type config struct {
	userAgent       string
	protocolVersion string
	timeout         time.Duration
	events          Events
	tracer          Tracer // nil: none
}

// Option configures a Service.
type Option func(*config)

// UserAgent sets the agent version announced. The empty string means
// DefaultUserAgent.
func UserAgent(ua string) Option {
	return func(c *config) { c.userAgent = ua }
}

// ProtocolVersion sets the protocol version announced. The empty string
// means DefaultProtocolVersion.
func ProtocolVersion(v string) Option {
	return func(c *config) { c.protocolVersion = v }
}

// Timeout sets how long each exchange may take. Default: DefaultTimeout.
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.protocolVersion == "" {
		c.protocolVersion = DefaultProtocolVersion
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case len(c.userAgent) > maxVersionLen:
		return c, fmt.Errorf("%w: user agent of %d bytes, limit %d", ErrInvalidOption, len(c.userAgent), maxVersionLen)
	case len(c.protocolVersion) > maxVersionLen:
		return c, fmt.Errorf("%w: protocol version of %d bytes, limit %d", ErrInvalidOption, len(c.protocolVersion), maxVersionLen)
	case c.timeout < 0:
		return c, fmt.Errorf("%w: negative timeout %v", ErrInvalidOption, c.timeout)
	}
	return c, nil
}

// Tracer observes identify exchanges, for metrics (package metrics
// implements it). Its methods run on the service's goroutines and must
// not block.
type Tracer interface {
	// Identified follows each identify exchange we asked for; err is
	// nil on success.
	Identified(err error)
	// PushSent follows each push we sent; err is nil on success.
	PushSent(err error)
	// PushReceived follows each push a peer sent us; err is nil when it
	// was taken in.
	PushReceived(err error)
}

// WithTracer makes the service report to t. Default: none.
func WithTracer(t Tracer) Option {
	return func(c *config) { c.tracer = t }
}
