package nat

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

const routeTable = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth1	00000000	0200000A	0003	0	0	200	00000000	0	0	0
eth0	00000000	0100000A	0003	0	0	100	00000000	0	0	0
eth0	0000000A	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth2	00000000	00000000	0001	0	0	0	00000000	0	0	0
`

// TestParseRoutes: the default route of lowest metric through a gateway
// wins; a default route without a gateway and other routes do not count.
func TestParseRoutes(t *testing.T) {
	gw, err := parseRoutes(strings.NewReader(routeTable))
	if err != nil || gw.String() != "10.0.0.1" {
		t.Fatalf("parseRoutes = %v, %v; want 10.0.0.1", gw, err)
	}
	for _, tab := range []string{"", "Iface\tDestination\n", strings.Join(strings.Split(routeTable, "\n")[3:], "\n"),
		"h\neth0 00000000 zz00000A 0003 0 0 100 00000000\n"} {
		if gw, err := parseRoutes(strings.NewReader("h\n" + tab)); !errors.Is(err, ErrNoDefaultRoute) {
			t.Errorf("parseRoutes(%q) = %v, %v; want ErrNoDefaultRoute", tab, gw, err)
		}
	}
}

// TestDefaultGateway reads this machine's table: a result or
// ErrNoDefaultRoute, never anything else.
func TestDefaultGateway(t *testing.T) {
	gw, err := defaultGateway()
	if err != nil && !errors.Is(err, ErrNoDefaultRoute) {
		t.Fatal(err)
	}
	if err == nil && !gw.Is4() {
		t.Fatalf("gateway %v", gw)
	}
}

func FuzzParseRoutes(f *testing.F) {
	f.Add([]byte(routeTable))
	f.Add([]byte("Iface\n\x00\xff 00000000 00000000 3 0 0 -1 00000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gw, err := parseRoutes(strings.NewReader(string(b)))
		if err == nil && (!gw.Is4() || gw.IsUnspecified()) {
			t.Fatalf("gateway %v without an error", gw)
		}
	})
}

func FuzzDecodeRootDevice(f *testing.F) {
	loc, _ := url.Parse("http://10.0.0.1:5000/rootDesc.xml")
	f.Add([]byte(`<root xmlns="urn:schemas-upnp-org:device-1-0"><URLBase>http://10.0.0.1:5000/</URLBase><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType><deviceList><device><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>ctl/IPConn</controlURL></service></serviceList></device></deviceList></device></root>`))
	f.Add([]byte(`<root><device><serviceList><service><controlURL>%zz</controlURL></service></serviceList></device></root>`))
	f.Add([]byte(`<root><URLBase>::</URLBase></root>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := decodeRootDevice(strings.NewReader(string(b)), loc)
		if err != nil {
			return
		}
		for _, st := range upnpServices {
			for _, s := range root.Device.FindService(st) {
				_ = s.NewSOAPClient()
			}
		}
	})
}
