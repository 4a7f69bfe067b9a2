package nat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv marks the child process inNetns starts.
const childEnv = "P2PNET_NAT_NETNS_TEST"

// inNetns runs the calling test again in a child process that lives in a
// network namespace of its own with only loopback up, so that every
// socket of the test (SSDP multicast included, and the fixed NAT-PMP
// port 5351) is there and nowhere else. It returns true in the child,
// which runs the test; in the parent it waits for the child and reports
// its result.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		if err := loopbackUp(); err != nil {
			t.Fatal(err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root for a network namespace (CI=true: it must run)")
		}
		t.Skip("this test needs root for a network namespace")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log(l)
	}
	if err != nil {
		t.Fatalf("the test in its network namespace: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatal("the test did not pass in its network namespace")
	}
	return false
}

// loopbackUp brings lo up, with multicast on, in the process's
// namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_MULTICAST)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

var loopback = func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil }

// fakeIGD is a UPnP internet gateway on loopback: an SSDP responder on
// 239.255.255.250:1900 joined on lo, a device description and a SOAP
// control endpoint for one WANIPConnection (version 1 or 2).
type fakeIGD struct {
	t             *testing.T
	version       int
	permanentOnly bool            // 725 for any lease but 0
	taken         map[uint16]bool // external ports held by someone else
	ext           string

	ssdp  *net.UDPConn
	http  *http.Server
	addr  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	maps  map[string]igdEntry // "TCP/4001"
	calls []string
}

type igdEntry struct {
	internal, client string
	lease            string
}

func (g *fakeIGD) service() string {
	return fmt.Sprintf("urn:schemas-upnp-org:service:WANIPConnection:%d", g.version)
}

func startFakeIGD(t *testing.T, version int) *fakeIGD {
	g := &fakeIGD{t: t, version: version, taken: map[uint16]bool{}, ext: "203.0.113.7", maps: map[string]igdEntry{}}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	g.ssdp, err = net.ListenMulticastUDP("udp4", lo, &net.UDPAddr{IP: net.IPv4(239, 255, 255, 250), Port: 1900})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/rootDesc.xml", g.serveDesc)
	mux.HandleFunc("/ctl", g.serveControl)
	g.http = &http.Server{Handler: mux}
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.http.Serve(l) }()
	go func() { defer g.wg.Done(); g.serveSSDP() }()
	t.Cleanup(func() {
		g.ssdp.Close()
		g.http.Close()
		g.wg.Wait()
	})
	return g
}

func (g *fakeIGD) serveSSDP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := g.ssdp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf[:n])))
		if err != nil || req.Method != "M-SEARCH" {
			continue
		}
		st := req.Header.Get("ST")
		if st != g.service() {
			continue
		}
		resp := "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nEXT:\r\nST: " + st +
			"\r\nUSN: uuid:fake-igd::" + st + "\r\nLOCATION: http://" + g.addr + "/rootDesc.xml\r\nSERVER: fake UPnP/1.1\r\n\r\n"
		c, err := net.DialUDP("udp4", nil, from)
		if err != nil {
			continue
		}
		c.Write([]byte(resp))
		c.Close()
	}
}

func (g *fakeIGD) serveDesc(w http.ResponseWriter, _ *http.Request) {
	v := g.version
	fmt.Fprintf(w, `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
 <deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:%d</deviceType>
 <friendlyName>fake IGD</friendlyName><UDN>uuid:fake-igd</UDN>
 <deviceList><device>
  <deviceType>urn:schemas-upnp-org:device:WANDevice:%d</deviceType><UDN>uuid:fake-wan</UDN>
  <deviceList><device>
   <deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:%d</deviceType><UDN>uuid:fake-wanconn</UDN>
   <serviceList><service>
    <serviceType>%s</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
    <controlURL>/ctl</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/scpd.xml</SCPDURL>
   </service></serviceList>
  </device></deviceList>
 </device></deviceList>
</device>
</root>`, v, v, v, g.service())
}

// soapArgs are the arguments of a SOAP action.
type soapArgs map[string]string

func (a *soapArgs) UnmarshalXML(d *xml.Decoder, _ xml.StartElement) error {
	*a = soapArgs{}
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var s string
			if err := d.DecodeElement(&s, &tok); err != nil {
				return err
			}
			(*a)[tok.Name.Local] = s
		case xml.EndElement:
			return nil
		}
	}
}

func (g *fakeIGD) serveControl(w http.ResponseWriter, r *http.Request) {
	action := strings.Trim(r.Header.Get("SOAPAction"), `"`)
	ns, name, _ := strings.Cut(action, "#")
	var env struct {
		Body struct {
			Args soapArgs `xml:",any"`
		} `xml:"Body"`
	}
	if ns != g.service() || xml.NewDecoder(r.Body).Decode(&env) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	args := env.Body.Args
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, name+" "+args["NewProtocol"]+" "+args["NewExternalPort"]+" "+args["NewLeaseDuration"])
	out := ""
	switch name {
	case "GetExternalIPAddress":
		out = "<NewExternalIPAddress>" + g.ext + "</NewExternalIPAddress>"
	case "AddPortMapping", "AddAnyPortMapping":
		if g.permanentOnly && args["NewLeaseDuration"] != "0" {
			g.fault(w, 725, "OnlyPermanentLeasesSupported")
			return
		}
		p, _ := strconv.Atoi(args["NewExternalPort"])
		if g.taken[uint16(p)] {
			if name == "AddPortMapping" {
				g.fault(w, 718, "ConflictInMappingEntry")
				return
			}
			for p = 40000; g.taken[uint16(p)]; p++ {
			}
		}
		g.maps[args["NewProtocol"]+"/"+strconv.Itoa(p)] = igdEntry{args["NewInternalPort"], args["NewInternalClient"], args["NewLeaseDuration"]}
		if name == "AddAnyPortMapping" {
			out = "<NewReservedPort>" + strconv.Itoa(p) + "</NewReservedPort>"
		}
	case "DeletePortMapping":
		k := args["NewProtocol"] + "/" + args["NewExternalPort"]
		if _, ok := g.maps[k]; !ok {
			g.fault(w, 714, "NoSuchEntryInArray")
			return
		}
		delete(g.maps, k)
	default:
		g.fault(w, 401, "Invalid Action")
		return
	}
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>`,
		name, g.service(), out, name)
}

func (g *fakeIGD) fault(w http.ResponseWriter, code int, desc string) {
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode><errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`, code, desc)
}

func (g *fakeIGD) entries() map[string]igdEntry {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]igdEntry{}
	for k, v := range g.maps {
		out[k] = v
	}
	return out
}

func discoverLoopbackUPnP(t *testing.T) *upnpGateway {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDiscoveryTimeout)
	defer cancel()
	gw, err := discoverUPnP(ctx, loopback, "p2pnet-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.close)
	return gw.(*upnpGateway)
}

// TestUPnPWithGoupnp: goupnp finds the fake IGD over SSDP on loopback
// (version 2 and 1), reads its external address, maps the same port
// with the lease asked, falls back to another port when that one is
// taken (AddAnyPortMapping on v2, a random one on v1), and removes.
func TestUPnPWithGoupnp(t *testing.T) {
	if !inNetns(t) {
		return
	}
	for _, v := range []int{2, 1} {
		igd := startFakeIGD(t, v)
		gw := discoverLoopbackUPnP(t)
		if want := fmt.Sprintf("UPnP WANIPConnection:%d at %s", v, igd.addr); gw.String() != want {
			t.Errorf("gateway %q, want %q", gw, want)
		}
		if gw.internal.String() != "127.0.0.1" {
			t.Errorf("internal client %v", gw.internal)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ip, err := gw.externalIP(ctx)
		if err != nil || ip.String() != "203.0.113.7" {
			t.Fatalf("v%d externalIP = %v, %v", v, ip, err)
		}
		ext, lease, err := gw.addMapping(ctx, tcp, 4001, 4001, time.Hour)
		if err != nil || ext != 4001 || lease != time.Hour {
			t.Fatalf("v%d addMapping = %d, %v, %v", v, ext, lease, err)
		}
		if e := igd.entries()["TCP/4001"]; e != (igdEntry{"4001", "127.0.0.1", "3600"}) {
			t.Fatalf("v%d mapping at the gateway: %+v", v, e)
		}
		igd.mu.Lock()
		igd.taken[4002] = true
		igd.mu.Unlock()
		ext, _, err = gw.addMapping(ctx, udp, 4002, 4002, time.Hour)
		if err != nil || ext == 4002 || ext == 0 {
			t.Fatalf("v%d addMapping of a taken port = %d, %v", v, ext, err)
		}
		if v == 2 && ext != 40000 {
			t.Errorf("v2 did not use AddAnyPortMapping: port %d", ext)
		}
		for _, m := range []struct {
			p        uint16
			internal uint16
		}{{4001, 4001}, {ext, 4002}} {
			proto := tcp
			if m.internal == 4002 {
				proto = udp
			}
			if err := gw.deleteMapping(ctx, proto, m.internal, m.p); err != nil {
				t.Fatal(err)
			}
		}
		if e := igd.entries(); len(e) != 0 {
			t.Fatalf("v%d mappings left: %v", v, e)
		}
		// Removing what is gone (714) is no error.
		if err := gw.deleteMapping(ctx, tcp, 4001, 4001); err != nil {
			t.Errorf("removing a missing mapping: %v", err)
		}
		cancel()
		igd.ssdp.Close() // the next version's IGD takes port 1900
	}
}

// TestUPnPPermanentOnly: a gateway that refuses leases (725) gets a
// permanent mapping, reported as lease 0, and later requests ask for 0
// at once.
func TestUPnPPermanentOnly(t *testing.T) {
	if !inNetns(t) {
		return
	}
	igd := startFakeIGD(t, 1)
	igd.permanentOnly = true
	gw := discoverLoopbackUPnP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ext, lease, err := gw.addMapping(ctx, tcp, 4001, 4001, time.Hour)
	if err != nil || ext != 4001 || lease != 0 {
		t.Fatalf("addMapping = %d, %v, %v", ext, lease, err)
	}
	if _, _, err := gw.addMapping(ctx, udp, 4001, 4001, time.Hour); err != nil {
		t.Fatal(err)
	}
	igd.mu.Lock()
	calls := igd.calls
	igd.mu.Unlock()
	want := []string{"AddPortMapping TCP 4001 3600", "AddPortMapping TCP 4001 0", "AddPortMapping UDP 4001 0"}
	var adds []string
	for _, c := range calls {
		if strings.HasPrefix(c, "AddPortMapping") {
			adds = append(adds, c)
		}
	}
	if strings.Join(adds, ",") != strings.Join(want, ",") {
		t.Fatalf("requests %q, want %q", adds, want)
	}
}

// TestPortMapperWithUPnP: the mapper over goupnp and the fake IGD maps
// both ports, and Close removes them from the gateway.
func TestPortMapperWithUPnP(t *testing.T) {
	if !inNetns(t) {
		return
	}
	igd := startFakeIGD(t, 2)
	changed := make(chan struct{}, 10)
	m := NewPortMapper(PortMapLogger(quiet), OnPortMapChange(func() { changed <- struct{}{} }),
		withDiscovery(func(ctx context.Context) (gateway, error) { return discoverUPnP(ctx, loopback, "p2pnet-test") }))
	m.Map(tcp, 4001)
	m.Map(udp, 4001)
	deadline := time.After(20 * time.Second)
	for len(m.Mappings()) < 2 {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("mappings after 20 s: %v", m.Mappings())
		}
	}
	if e := igd.entries(); len(e) != 2 || e["TCP/4001"].lease != "3600" || e["UDP/4001"].client != "127.0.0.1" {
		t.Fatalf("gateway's mappings: %v", e)
	}
	m.Close()
	if e := igd.entries(); len(e) != 0 {
		t.Fatalf("mappings left after Close: %v", e)
	}
}

// fakeNATPMP is a NAT-PMP server (RFC 6886) on 127.0.0.1:5351.
type fakeNATPMP struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
	mu   sync.Mutex
	maps map[string]uint32 // "tcp/4001->4001" -> lifetime
	max  uint32            // the longest lifetime granted
}

func startFakeNATPMP(t *testing.T) *fakeNATPMP {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5351})
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeNATPMP{conn: c, maps: map[string]uint32{}, max: 600}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { c.Close(); s.wg.Wait() })
	return s
}

func (s *fakeNATPMP) serve() {
	defer s.wg.Done()
	buf := make([]byte, 64)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if n < 2 || buf[0] != 0 {
			continue
		}
		var out []byte
		switch op := buf[1]; {
		case op == 0 && n == 2:
			out = []byte{0, 128, 0, 0, 0, 0, 0, 1, 203, 0, 113, 9}
		case (op == 1 || op == 2) && n == 12:
			proto := map[byte]string{1: "udp", 2: "tcp"}[op]
			internal := binary.BigEndian.Uint16(buf[4:6])
			ext := binary.BigEndian.Uint16(buf[6:8])
			life := min(binary.BigEndian.Uint32(buf[8:12]), s.max)
			s.mu.Lock()
			if life == 0 {
				for k := range s.maps {
					if strings.HasPrefix(k, proto+"/") && strings.HasSuffix(k, "->"+strconv.Itoa(int(internal))) {
						delete(s.maps, k)
					}
				}
			} else {
				s.maps[fmt.Sprintf("%s/%d->%d", proto, ext, internal)] = life
			}
			s.mu.Unlock()
			out = binary.BigEndian.AppendUint16([]byte{0, 128 + op, 0, 0, 0, 0, 0, 1}, internal)
			out = binary.BigEndian.AppendUint16(out, ext)
			out = binary.BigEndian.AppendUint32(out, life)
		default:
			continue
		}
		s.conn.WriteToUDP(out, from)
	}
}

// TestNATPMPWithGoNATPMP: go-nat-pmp finds the fake server at the
// "default gateway", maps with the lifetime the server grants, and
// removes.
func TestNATPMPWithGoNATPMP(t *testing.T) {
	if !inNetns(t) {
		return
	}
	srv := startFakeNATPMP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := discoverNATPMP(ctx, func() (netip.Addr, error) { return netip.MustParseAddr("127.0.0.1"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := g.externalIP(ctx); err != nil || ip.String() != "203.0.113.9" {
		t.Fatalf("externalIP = %v, %v", ip, err)
	}
	ext, lease, err := g.addMapping(ctx, udp, 4001, 4001, time.Hour)
	if err != nil || ext != 4001 || lease != 600*time.Second {
		t.Fatalf("addMapping = %d, %v, %v", ext, lease, err)
	}
	srv.mu.Lock()
	if srv.maps["udp/4001->4001"] != 600 {
		t.Errorf("server's mappings: %v", srv.maps)
	}
	srv.mu.Unlock()
	if err := g.deleteMapping(ctx, udp, 4001, ext); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.maps) != 0 {
		t.Errorf("left after removal: %v", srv.maps)
	}
}

// TestNATPMPNoServer: nothing listens at the gateway: discovery fails
// within its bound instead of hanging.
func TestNATPMPNoServer(t *testing.T) {
	if !inNetns(t) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := discoverNATPMP(ctx, func() (netip.Addr, error) { return netip.MustParseAddr("127.0.0.1"), nil })
	if err == nil {
		t.Fatal("found a NAT-PMP gateway where there is none")
	}
	if d := time.Since(start); d > natpmpTimeout+time.Second {
		t.Fatalf("took %v", d)
	}
	if _, err := discoverNATPMP(ctx, func() (netip.Addr, error) { return netip.Addr{}, ErrNoDefaultRoute }); !errors.Is(err, ErrNoDefaultRoute) {
		t.Fatalf("without a route: %v", err)
	}
}
