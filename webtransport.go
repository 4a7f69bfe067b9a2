package p2pnet

import (
	"fmt"

	"github.com/p2pnet/p2pnet/transport/quic"
	"github.com/p2pnet/p2pnet/transport/webtransport"
)

// wtConfig is what the WebTransport options set.
type wtConfig struct {
	opts []webtransport.Option
}

// The WebTransport transport is always there: a host dials
// /quic-v1/webtransport/certhash/… addresses, and listens on
// /ip4|ip6/…/udp/N/quic-v1/webtransport when ListenAddrs names one; the
// default listen addresses have none. Browsers can dial it. Listening on
// the port of a QUIC listen address (for example /udp/4001/quic-v1 and
// /udp/4001/quic-v1/webtransport) shares that UDP socket; Addrs then
// shows the WebTransport addresses with their certificate hashes.

// WebTransportOptions configures the WebTransport transport with opts
// (see package transport/webtransport); given more than once, the
// options add up. Default: no options.
func WebTransportOptions(opts ...webtransport.Option) Option {
	return func(c *config) error {
		c.wt.opts = append(c.wt.opts, opts...)
		return nil
	}
}

// newWebTransport makes the host's WebTransport transport, on the QUIC
// transport qt's sockets.
func newWebTransport(cfg *config, qt *quic.Transport) (*webtransport.Transport, error) {
	opts := cfg.wt.opts
	if cfg.gater != nil {
		opts = append(opts[:len(opts):len(opts)], webtransport.WithConnectionGater(cfg.gater))
	}
	t, err := webtransport.New(cfg.priv, cfg.rcmgr, qt, opts...)
	if err != nil {
		return nil, fmt.Errorf("p2pnet: %w", err)
	}
	return t, nil
}
