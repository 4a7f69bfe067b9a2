package resolver

import (
	"context"
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// indexDNS returns the index of m's first /dns, /dns4 or /dns6 component,
// or -1.
func indexDNS(m ma.Multiaddr) int {
	for i := range m {
		switch m[i].Code() {
		case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
			return i
		}
	}
	return -1
}

// ResolveDNSComponent resolves the first /dns, /dns4 or /dns6 component of
// maddr: /dns4 to the host's A records, /dns6 to its AAAA records, /dns to
// both, each replacing the component by /ip4 or /ip6 and keeping what
// precedes and follows it. It returns at most outputLimit addresses in the
// order the BasicResolver gave them; none (and no error) when outputLimit
// is not positive, and maddr itself when it has no such component. A
// lookup that fails returns its error; one that finds no address of the
// wanted family returns ErrNoAddresses.
func (r *Resolver) ResolveDNSComponent(ctx context.Context, maddr ma.Multiaddr, outputLimit int) ([]ma.Multiaddr, error) {
	return r.resolveDNSComponent(ctx, maddr, outputLimit, nil)
}

// resolveDNSComponent is ResolveDNSComponent with a cache of lookups,
// which may be nil.
func (r *Resolver) resolveDNSComponent(ctx context.Context, maddr ma.Multiaddr, limit int, cache ipCache) ([]ma.Multiaddr, error) {
	if limit <= 0 {
		return nil, nil
	}
	i := indexDNS(maddr)
	if i < 0 {
		return []ma.Multiaddr{maddr}, nil
	}
	code, host := maddr[i].Code(), maddr[i].Value()
	ips, err := cache.lookup(ctx, r, code, host)
	if err != nil {
		return nil, fmt.Errorf("resolver: resolving %s: %w", maddr, err)
	}
	prefix, suffix := maddr[:i], maddr[i+1:]
	out := make([]ma.Multiaddr, 0, min(len(ips), limit))
	for _, ip := range ips {
		if len(out) == limit {
			break
		}
		// An IPv4-mapped AAAA record counts as IPv4, as in go-multiaddr-dns.
		v4 := ip.To4() != nil
		if (code == ma.P_DNS4 && !v4) || (code == ma.P_DNS6 && v4) {
			continue
		}
		ipAddr, err := manet.FromIP(ip)
		if err != nil {
			continue
		}
		a := make(ma.Multiaddr, 0, len(prefix)+len(ipAddr)+len(suffix))
		a = append(append(append(a, prefix...), ipAddr...), suffix...)
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, noAddresses(maddr.String(), nil)
	}
	return out, nil
}

// lookupIP looks host up for a /dns (code ma.P_DNS), /dns4 or /dns6
// component.
func (r *Resolver) lookupIP(ctx context.Context, code int, host string) ([]net.IP, error) {
	br := r.resolverFor(host)
	if l, ok := br.(ipLookuper); ok && code != ma.P_DNS {
		network := "ip4"
		if code == ma.P_DNS6 {
			network = "ip6"
		}
		return l.LookupIP(ctx, network, host)
	}
	addrs, err := br.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, nil
}

// ipKey names one lookup: a host for one kind of DNS component.
type ipKey struct {
	code int
	host string
}

// ipResult is the outcome of one lookup.
type ipResult struct {
	ips []net.IP
	err error
}

// ipCache remembers lookups for the length of one Resolve call, which
// often meets one host in several addresses (TCP and QUIC, say). A nil
// ipCache remembers nothing.
type ipCache map[ipKey]ipResult

// lookup returns the remembered outcome of the lookup, or does it.
func (c ipCache) lookup(ctx context.Context, r *Resolver, code int, host string) ([]net.IP, error) {
	if c == nil {
		return r.lookupIP(ctx, code, host)
	}
	k := ipKey{code, normalizeDomain(host)}
	if res, ok := c[k]; ok {
		return res.ips, res.err
	}
	ips, err := r.lookupIP(ctx, code, host)
	c[k] = ipResult{ips, err}
	return ips, err
}
