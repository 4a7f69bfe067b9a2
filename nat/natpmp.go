package nat

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"

	"github.com/p2pnet/p2pnet/network"
)

// natpmpTimeout bounds each NAT-PMP request, retransmissions included
// (RFC 6886 resends after 250 ms, doubling): go-nat-pmp cannot be
// cancelled, so this is also how long Close may wait for one.
const natpmpTimeout = 3 * time.Second

// natpmpGateway maps ports with NAT-PMP (RFC 6886).
type natpmpGateway struct {
	gw netip.Addr
}

// discoverNATPMP asks the gateway that route returns (the default
// route's) for its external address.
func discoverNATPMP(ctx context.Context, route func() (netip.Addr, error)) (gateway, error) {
	gw, err := route()
	if err != nil {
		return nil, err
	}
	g := &natpmpGateway{gw: gw}
	if _, err := g.externalIP(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// client returns a client whose requests end by ctx's deadline or
// natpmpTimeout, whichever comes first.
func (g *natpmpGateway) client(ctx context.Context) (*natpmp.Client, error) {
	d := natpmpTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	if err := ctx.Err(); err != nil || d <= 0 {
		return nil, fmt.Errorf("nat: NAT-PMP: %w", context.DeadlineExceeded)
	}
	return natpmp.NewClientWithTimeout(g.gw.AsSlice(), d), nil
}

func (g *natpmpGateway) String() string { return "NAT-PMP at " + g.gw.String() }

func (g *natpmpGateway) externalIP(ctx context.Context) (netip.Addr, error) {
	c, err := g.client(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	res, err := c.GetExternalAddress()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nat: NAT-PMP external address from %s: %w", g.gw, err)
	}
	ip := netip.AddrFrom4(res.ExternalIPAddress)
	if ip.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("nat: NAT-PMP: %s has no external address", g.gw)
	}
	return ip, nil
}

func (g *natpmpGateway) addMapping(ctx context.Context, proto network.NATTransportProtocol, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	p, err := protoName(proto, false)
	if err != nil {
		return 0, 0, err
	}
	c, err := g.client(ctx)
	if err != nil {
		return 0, 0, err
	}
	res, err := c.AddPortMapping(p, int(internal), int(ext), int(lease/time.Second))
	if err != nil {
		return 0, 0, fmt.Errorf("nat: NAT-PMP mapping %s %d: %w", p, internal, err)
	}
	if res.MappedExternalPort == 0 || res.PortMappingLifetimeInSeconds == 0 {
		return 0, 0, fmt.Errorf("nat: NAT-PMP mapping %s %d: granted port %d for %d s", p, internal,
			res.MappedExternalPort, res.PortMappingLifetimeInSeconds)
	}
	return res.MappedExternalPort, time.Duration(res.PortMappingLifetimeInSeconds) * time.Second, nil
}

// deleteMapping asks for a lifetime of 0 with external port 0, which
// RFC 6886 (section 3.4) defines as removal.
func (g *natpmpGateway) deleteMapping(ctx context.Context, proto network.NATTransportProtocol, internal, _ uint16) error {
	p, err := protoName(proto, false)
	if err != nil {
		return err
	}
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	if _, err := c.AddPortMapping(p, int(internal), 0, 0); err != nil {
		return fmt.Errorf("nat: NAT-PMP removal %s %d: %w", p, internal, err)
	}
	return nil
}

func (g *natpmpGateway) close() {}
