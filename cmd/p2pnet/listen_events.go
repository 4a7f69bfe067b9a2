package main

import (
	"context"
	"log/slog"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/event"
	"github.com/p2pnet/p2pnet/network"
)

// logHostEvents logs what the node learns about itself, until ctx ends:
// its reachability, the type of NAT in front of it per transport, and
// its announced addresses. It returns once it is subscribed; the
// returned function stops it and waits.
func logHostEvents(ctx context.Context, h *p2pnet.Host, log *slog.Logger) (stop func(), err error) {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged), new(event.EvtNATDeviceTypeChanged), new(event.EvtLocalAddressesUpdated),
	}, event.Name("p2pnet listen"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sub.Out():
				switch e := ev.(type) {
				case event.EvtLocalReachabilityChanged:
					if e.Reachability != network.ReachabilityUnknown {
						log.Info("reachability", "reachability", e.Reachability.String())
					}
				case event.EvtNATDeviceTypeChanged:
					log.Info("NAT type", "transport", e.TransportProtocol.String(), "type", e.NatDeviceType.String())
				case event.EvtLocalAddressesUpdated:
					var addrs []string
					for _, u := range e.Current {
						addrs = append(addrs, u.Address.String())
					}
					log.Info("announced addresses", "addrs", addrs)
				}
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
