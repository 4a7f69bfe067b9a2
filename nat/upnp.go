package nat

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/httpu"
	"github.com/huin/goupnp/soap"
	"github.com/huin/goupnp/ssdp"

	"github.com/p2pnet/p2pnet/network"
)

// ssdpWindow is how long an SSDP search waits for answers.
const ssdpWindow = 2 * time.Second

// maxDescription bounds a device description we read.
const maxDescription = 1 << 20

// UPnP error codes (UPnP IGD WANIPConnection:2, section 2.4).
const (
	upnpNoSuchEntry        = 714
	upnpOnlyPermanentLease = 725
)

// upnpServices are the services that map ports, most capable first.
var upnpServices = []string{
	internetgateway2.URN_WANIPConnection_2,
	internetgateway2.URN_WANIPConnection_1,
	internetgateway2.URN_WANPPPConnection_1,
}

// upnpClient is what goupnp's WANIPConnection2, WANIPConnection1 and
// WANPPPConnection1 clients have in common that the mapper uses.
type upnpClient interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
}

// upnpAnyPort is WANIPConnection:2's AddAnyPortMapping: the gateway
// picks a free external port.
type upnpAnyPort interface {
	AddAnyPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16,
		intClient string, enabled bool, desc string, lease uint32) (uint16, error)
}

// upnpGateway maps ports with UPnP IGD.
type upnpGateway struct {
	client      upnpClient
	service     string     // the service type
	at          string     // the control URL's host
	internal    netip.Addr // our address on the gateway's network
	description string
	transport   *http.Transport

	permanentOnly bool // the gateway refused leases (725): ask for 0; only run touches it
}

// multicastAddrs returns our IPv4 addresses on interfaces that are up,
// multicast-capable and not loopback: where SSDP searches go out.
func multicastAddrs() ([]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("nat: %w", err)
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
					out = append(out, ip.Unmap())
				}
			}
		}
	}
	return out, nil
}

// discoverUPnP searches, from each of the addresses locals returns, for
// the services in upnpServices at once, and returns the first gateway,
// in that order of preference, whose service tells its external
// address.
func discoverUPnP(ctx context.Context, locals func() ([]netip.Addr, error), description string) (gateway, error) {
	addrs, err := locals()
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("nat: UPnP: no multicast-capable IPv4 interface")
	}
	searchCtx, cancel := context.WithTimeout(ctx, ssdpWindow)
	defer cancel()
	found := make([][]*http.Response, len(upnpServices))
	errs := make([]error, len(upnpServices)+1)
	var wg sync.WaitGroup
	for i, st := range upnpServices {
		wg.Go(func() { found[i], errs[i] = ssdpSearch(searchCtx, addrs, st) })
	}
	wg.Wait()
	tr := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: opTimeout}
	for i, st := range upnpServices {
		for _, resp := range found[i] {
			gw, err := upnpGatewayAt(ctx, tr, resp, st, description)
			if err == nil {
				return gw, nil
			}
			errs = append(errs, err)
		}
	}
	tr.CloseIdleConnections()
	return nil, fmt.Errorf("nat: UPnP: no gateway answered: %w", errors.Join(errs...))
}

// ssdpSearch sends an SSDP search for target from each address and
// returns the answers that arrive until ctx ends.
func ssdpSearch(ctx context.Context, addrs []netip.Addr, target string) ([]*http.Response, error) {
	var clients []httpu.ClientInterfaceCtx
	for _, a := range addrs {
		c, err := httpu.NewHTTPUClientAddr(a.String())
		if err != nil {
			continue
		}
		defer c.Close()
		clients = append(clients, c)
	}
	if len(clients) == 0 {
		return nil, fmt.Errorf("nat: UPnP: no socket for SSDP")
	}
	return ssdp.RawSearch(ctx, httpu.NewMultiClientCtx(clients), target, 2)
}

// upnpGatewayAt reads the description an SSDP answer points to and
// returns a gateway for its first service of type st that tells its
// external address.
func upnpGatewayAt(ctx context.Context, tr *http.Transport, resp *http.Response, st, description string) (*upnpGateway, error) {
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("nat: UPnP: SSDP answer without a location: %w", err)
	}
	local, err := netip.ParseAddr(resp.Header.Get(httpu.LocalAddressHeader))
	if err != nil {
		return nil, fmt.Errorf("nat: UPnP: SSDP answer on an unknown address: %w", err)
	}
	root, err := fetchRootDevice(ctx, tr, loc)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, srv := range root.Device.FindService(st) {
		sc := srv.NewSOAPClient()
		sc.HTTPClient = http.Client{Transport: tr, Timeout: opTimeout}
		base := goupnp.ServiceClient{SOAPClient: sc, RootDevice: root, Location: loc, Service: srv}
		var c upnpClient
		switch st {
		case internetgateway2.URN_WANIPConnection_2:
			c = &internetgateway2.WANIPConnection2{ServiceClient: base}
		case internetgateway2.URN_WANIPConnection_1:
			c = &internetgateway2.WANIPConnection1{ServiceClient: base}
		default:
			c = &internetgateway2.WANPPPConnection1{ServiceClient: base}
		}
		g := &upnpGateway{client: c, service: st, at: sc.EndpointURL.Host, internal: local.Unmap(),
			description: description, transport: tr}
		if _, err := g.externalIP(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		return g, nil
	}
	return nil, fmt.Errorf("nat: UPnP: no usable %s at %s: %w", st, loc, errors.Join(errs...))
}

// fetchRootDevice reads the device description at loc.
func fetchRootDevice(ctx context.Context, tr *http.Transport, loc *url.URL) (*goupnp.RootDevice, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("nat: UPnP: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("nat: UPnP: device description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("nat: UPnP: device description at %s: %s", loc, resp.Status)
	}
	return decodeRootDevice(io.LimitReader(resp.Body, maxDescription), loc)
}

// decodeRootDevice decodes a device description read from loc, and
// resolves its URLs against its URLBase or loc.
func decodeRootDevice(r io.Reader, loc *url.URL) (*goupnp.RootDevice, error) {
	root := new(goupnp.RootDevice)
	d := xml.NewDecoder(r)
	d.DefaultSpace = goupnp.DeviceXMLNamespace
	if err := d.Decode(root); err != nil {
		return nil, fmt.Errorf("nat: UPnP: device description at %s: %w", loc, err)
	}
	base := loc
	if root.URLBaseStr != "" {
		u, err := url.Parse(root.URLBaseStr)
		if err != nil {
			return nil, fmt.Errorf("nat: UPnP: device description at %s: URLBase: %w", loc, err)
		}
		base = u
	}
	root.SetURLBase(base)
	return root, nil
}

// upnpCode returns the UPnP error code of a SOAP fault, 0 for other
// errors.
func upnpCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}

func (g *upnpGateway) String() string {
	return fmt.Sprintf("UPnP %s at %s", serviceName(g.service), g.at)
}

// serviceName is a service type without its URN prefix.
func serviceName(st string) string {
	const prefix = "urn:schemas-upnp-org:service:"
	if len(st) > len(prefix) && st[:len(prefix)] == prefix {
		return st[len(prefix):]
	}
	return st
}

func (g *upnpGateway) externalIP(ctx context.Context) (netip.Addr, error) {
	s, err := g.client.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nat: UPnP GetExternalIPAddress: %w", err)
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Unmap().Is4() || ip.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("nat: UPnP GetExternalIPAddress: no usable address (%q)", s)
	}
	return ip.Unmap(), nil
}

func (g *upnpGateway) addMapping(ctx context.Context, proto network.NATTransportProtocol, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	p, err := protoName(proto, true)
	if err != nil {
		return 0, 0, err
	}
	add := func(port uint16) (uint16, error) {
		secs := uint32(lease / time.Second)
		if g.permanentOnly {
			secs = 0
		}
		err := g.client.AddPortMappingCtx(ctx, "", port, p, internal, g.internal.String(), true, g.description, secs)
		if upnpCode(err) == upnpOnlyPermanentLease && secs != 0 {
			g.permanentOnly = true
			err = g.client.AddPortMappingCtx(ctx, "", port, p, internal, g.internal.String(), true, g.description, 0)
		}
		return port, err
	}
	granted := func() time.Duration {
		if g.permanentOnly {
			return 0
		}
		return lease.Truncate(time.Second)
	}
	port, err := add(ext)
	if err == nil {
		return port, granted(), nil
	}
	// The port is taken (718) or refused: let a v2 gateway pick, or
	// try a few others.
	if anyPort, ok := g.client.(upnpAnyPort); ok {
		secs := uint32(lease / time.Second)
		if g.permanentOnly {
			secs = 0
		}
		got, err2 := anyPort.AddAnyPortMappingCtx(ctx, "", ext, p, internal, g.internal.String(), true, g.description, secs)
		if err2 == nil && got != 0 {
			return got, granted(), nil
		}
	}
	for range 3 {
		if ctx.Err() != nil {
			break
		}
		if port, err2 := add(uint16(1024 + rand.IntN(65536-1024))); err2 == nil {
			return port, granted(), nil
		}
	}
	return 0, 0, fmt.Errorf("nat: UPnP AddPortMapping %s %d: %w", p, internal, err)
}

func (g *upnpGateway) deleteMapping(ctx context.Context, proto network.NATTransportProtocol, _, ext uint16) error {
	p, err := protoName(proto, true)
	if err != nil {
		return err
	}
	err = g.client.DeletePortMappingCtx(ctx, "", ext, p)
	if err != nil && upnpCode(err) != upnpNoSuchEntry {
		return fmt.Errorf("nat: UPnP DeletePortMapping %s %d: %w", p, ext, err)
	}
	return nil
}

func (g *upnpGateway) close() { g.transport.CloseIdleConnections() }
