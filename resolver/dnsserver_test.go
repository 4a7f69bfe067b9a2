package resolver

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// question is one query the test server received.
type question struct {
	name  string // lower case, without the trailing dot
	qtype uint16
}

// rrset is what the test server knows of one name.
type rrset struct {
	a, aaaa []net.IP
	txt     []string
	silent  bool // never answer queries for the name
}

// dnsServer is a real DNS server on loopback, UDP and TCP (for answers
// too long for a UDP datagram), serving the records the test gives it.
type dnsServer struct {
	udpAddr, tcpAddr string

	mu      sync.Mutex // guards the following
	names   map[string]*rrset
	queries map[question]int
	overTCP int // queries received over TCP
}

// startDNSServer starts a server that the test shuts down when it ends.
func startDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{names: make(map[string]*rrset), queries: make(map[question]int)}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s.udpAddr, s.tcpAddr = pc.LocalAddr().String(), l.Addr().String()
	serve(t, &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS)})
	serve(t, &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.serveDNS)})
	return s
}

// serve runs srv until the test ends.
func serve(t *testing.T, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("DNS server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("DNS server shutdown: %v", err)
		}
		<-done
	})
}

// set returns the records of name, creating them.
func (s *dnsServer) set(name string) *rrset {
	name = normalizeDomain(name)
	rs := s.names[name]
	if rs == nil {
		rs = &rrset{}
		s.names[name] = rs
	}
	return rs
}

// addIP serves A or AAAA records for name.
func (s *dnsServer) addIP(name string, ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.set(name)
	for _, ip := range ips {
		p := net.ParseIP(ip)
		if p.To4() != nil {
			rs.a = append(rs.a, p.To4())
		} else {
			rs.aaaa = append(rs.aaaa, p)
		}
	}
}

// addTXT serves TXT records for name.
func (s *dnsServer) addTXT(name string, txts ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.set(name)
	rs.txt = append(rs.txt, txts...)
}

// addDNSAddr serves dnsaddr TXT records for _dnsaddr.<domain>.
func (s *dnsServer) addDNSAddr(domain string, addrs ...string) {
	txts := make([]string, len(addrs))
	for i, a := range addrs {
		txts[i] = dnsaddrTXTPrefix + a
	}
	s.addTXT(dnsaddrSubdomain+domain, txts...)
}

// silence makes the server drop every query for name.
func (s *dnsServer) silence(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set(name).silent = true
}

// count returns how many queries of qtype for name the server received.
func (s *dnsServer) count(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[question{normalizeDomain(name), qtype}]
}

// tcpQueries returns how many queries came over TCP.
func (s *dnsServer) tcpQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overTCP
}

// serveDNS answers one query: NXDOMAIN for unknown names, the name's
// records of the asked type otherwise, truncated to what the client can
// take over UDP.
func (s *dnsServer) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := normalizeDomain(q.Name)
	s.mu.Lock()
	s.queries[question{name, q.Qtype}]++
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if !udp {
		s.overTCP++
	}
	rs, ok := s.names[name]
	var silent bool
	var a, aaaa []net.IP
	var txt []string
	if ok {
		silent, a, aaaa, txt = rs.silent, rs.a, rs.aaaa, rs.txt
	}
	s.mu.Unlock()
	if silent {
		return
	}
	m := new(dns.Msg)
	// A negative answer carries the zone's SOA, as real servers send it;
	// without it the Go resolver takes an empty answer for a lame referral.
	soa := &dns.SOA{
		Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 60,
	}
	if !ok {
		m.SetRcode(req, dns.RcodeNameError)
		m.Ns = []dns.RR{soa}
		w.WriteMsg(m)
		return
	}
	m.SetReply(req)
	m.Authoritative = true
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
	}
	switch q.Qtype {
	case dns.TypeA:
		for _, ip := range a {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: ip})
		}
	case dns.TypeAAAA:
		for _, ip := range aaaa {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: ip})
		}
	case dns.TypeTXT:
		for _, v := range txt {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: chunkTXT(v)})
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa}
	}
	if udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// chunkTXT splits v into the at most 255-byte strings of one TXT record.
// miekg/dns takes the strings in presentation format, so quotes and
// backslashes are escaped.
func chunkTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, escapeTXT(v[:255]))
		v = v[255:]
	}
	return append(out, escapeTXT(v))
}

func escapeTXT(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// resolver returns a Go resolver that asks only this server. The socket is
// closed when the lookup's context ends, because the Go resolver would
// otherwise keep reading until its own timeout (5 s) after a cancelled
// lookup, outliving the test.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			addr := s.udpAddr
			if strings.HasPrefix(network, "tcp") {
				addr = s.tcpAddr
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			context.AfterFunc(ctx, func() { c.Close() })
			return c, nil
		},
	}
}
