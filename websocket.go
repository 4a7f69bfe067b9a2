package p2pnet

import (
	"crypto/tls"
	"fmt"

	"github.com/p2pnet/p2pnet/transport/websocket"
)

// wsConfig is what the WebSocket options set.
type wsConfig struct {
	opts []websocket.Option
}

// The WebSocket transport is always there: a host dials /ws, /tls/ws and
// /wss addresses, and listens on them when ListenAddrs names one (for
// example /ip4/0.0.0.0/tcp/4002/ws); the default listen addresses have
// none. Browsers can open WebSocket connections, not TCP ones.

// WebSocketOptions configures the WebSocket transport with opts (see
// package transport/websocket); given more than once, the options add up.
// Default: no options.
func WebSocketOptions(opts ...websocket.Option) Option {
	return func(c *config) error {
		c.ws.opts = append(c.ws.opts, opts...)
		return nil
	}
}

// WebSocketTLS gives /tls/ws and /wss listen addresses their TLS
// configuration, with the certificate browsers will check (it must name
// the host they dial). Default: none; listening on /tls/ws then fails.
func WebSocketTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
			return fmt.Errorf("p2pnet: WebSocketTLS: the TLS configuration has no certificate")
		}
		c.ws.opts = append(c.ws.opts, websocket.WithTLSConfig(cfg))
		return nil
	}
}
