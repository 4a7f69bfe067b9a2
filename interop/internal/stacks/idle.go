package stacks

import (
	"context"

	"github.com/p2pnet/p2pnet/peer"

	lppeer "github.com/libp2p/go-libp2p/core/peer"
)

// Idle is one listener host and n dialer hosts of a stack, built but not
// yet connected, so that what the connections cost can be measured
// apart from what the hosts cost.
type Idle struct {
	// Connect connects every dialer to the listener.
	Connect func(ctx context.Context) error
	// Close closes every host.
	Close func()
}

// NewIdle builds the listener and n dialers of the stack, p2pnet's
// (ours) or go-libp2p's.
func NewIdle(ours bool, stack string, n int) (*Idle, error) {
	var cl closers
	fail := func(err error) (*Idle, error) {
		cl.close()
		return nil, err
	}
	if ours {
		server, c, err := OurHost(stack)
		if err != nil {
			return fail(err)
		}
		cl = append(cl, c)
		info := peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}
		var connect []func(context.Context, peer.AddrInfo) error
		for range n {
			h, c, err := OurHost(stack)
			if err != nil {
				return fail(err)
			}
			cl = append(cl, c)
			connect = append(connect, h.Connect)
		}
		return &Idle{
			Connect: func(ctx context.Context) error {
				for _, c := range connect {
					if err := c(ctx, info); err != nil {
						return err
					}
				}
				return nil
			},
			Close: cl.close,
		}, nil
	}
	server, err := GoHost(stack)
	if err != nil {
		return fail(err)
	}
	cl = append(cl, func() { server.Close() })
	info := lppeer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}
	var connect []func(context.Context, lppeer.AddrInfo) error
	for range n {
		h, err := GoHost(stack)
		if err != nil {
			return fail(err)
		}
		cl = append(cl, func() { h.Close() })
		connect = append(connect, h.Connect)
	}
	return &Idle{
		Connect: func(ctx context.Context) error {
			for _, c := range connect {
				if err := c(ctx, info); err != nil {
					return err
				}
			}
			return nil
		},
		Close: cl.close,
	}, nil
}
