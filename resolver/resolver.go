// Package resolver resolves the DNS components of multiaddrs before they
// are dialed: /dns, /dns4 and /dns6 to IP addresses, and /dnsaddr through
// the TXT records of the multiaddr dnsaddr protocol
// (multiformats/multiaddr protocols/DNSADDR.md). Its Resolver is the
// swarm's network.MultiaddrDNSResolver; DNS itself is done by a pluggable
// BasicResolver, net.DefaultResolver unless configured otherwise, which may
// differ per domain.
//
// It may import network, peer, the standard library, go-multiaddr and its
// net package.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// DefaultRecursionLimit is how many nested /dnsaddr lookups Resolve
// follows, go-libp2p's swarm value.
const DefaultRecursionLimit = 4

var (
	// ErrNoAddresses means a resolution produced no address: the lookups
	// answered, but with no record of the wanted kind, or every record was
	// filtered out. Errors of the failed branches, if any, are joined to
	// it.
	ErrNoAddresses = errors.New("resolver: no addresses")

	// ErrRecursionLimit means a /dnsaddr record led to more nested
	// /dnsaddr lookups than the recursion limit allows; that branch was
	// dropped.
	ErrRecursionLimit = errors.New("resolver: dnsaddr recursion limit reached")

	// ErrCycle means a /dnsaddr record led back to a domain already being
	// resolved on the same branch; that branch was dropped.
	ErrCycle = errors.New("resolver: dnsaddr cycle")

	// ErrInvalidRecord means a TXT record starting with "dnsaddr=" that does
	// not hold a valid, non-empty multiaddr. Such records are skipped.
	ErrInvalidRecord = errors.New("resolver: invalid dnsaddr record")

	// ErrInvalidOption means an Option was given a nil BasicResolver or
	// an empty domain.
	ErrInvalidOption = errors.New("resolver: invalid option")
)

// BasicResolver does the DNS lookups. *net.Resolver satisfies it.
//
// When a BasicResolver also has *net.Resolver's method
// LookupIP(ctx, network, host string) ([]net.IP, error), /dns4 and /dns6
// use it, so that only A or only AAAA records are queried.
type BasicResolver interface {
	LookupIPAddr(context.Context, string) ([]net.IPAddr, error)
	LookupTXT(context.Context, string) ([]string, error)
}

// ipLookuper is the optional, family-selecting lookup of *net.Resolver.
type ipLookuper interface {
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
}

// Resolver resolves multiaddrs with DNS components. It is immutable once
// built and safe for concurrent use.
type Resolver struct {
	def    BasicResolver
	domain map[string]BasicResolver // by normalized domain
}

var _ network.MultiaddrDNSResolver = (*Resolver)(nil)

// Option configures a Resolver built by New.
type Option func(*Resolver) error

// WithDefaultResolver sets the BasicResolver for names that no
// WithDomainResolver covers. Default: net.DefaultResolver.
func WithDefaultResolver(r BasicResolver) Option {
	return func(res *Resolver) error {
		if r == nil {
			return fmt.Errorf("%w: nil default resolver", ErrInvalidOption)
		}
		res.def = r
		return nil
	}
}

// WithDomainResolver makes r resolve domain and every name under it
// (labels are compared case-insensitively, a trailing dot is ignored).
// When several domains cover a name, the longest wins. Default: none.
func WithDomainResolver(domain string, r BasicResolver) Option {
	return func(res *Resolver) error {
		d := normalizeDomain(domain)
		if d == "" {
			return fmt.Errorf("%w: empty domain", ErrInvalidOption)
		}
		if r == nil {
			return fmt.Errorf("%w: nil resolver for domain %q", ErrInvalidOption, domain)
		}
		if res.domain == nil {
			res.domain = make(map[string]BasicResolver)
		}
		res.domain[d] = r
		return nil
	}
}

// New returns a Resolver configured by opts.
func New(opts ...Option) (*Resolver, error) {
	r := &Resolver{def: net.DefaultResolver}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// normalizeDomain lower-cases name and drops one trailing dot.
func normalizeDomain(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// resolverFor returns the BasicResolver of the longest configured domain
// that name equals or lies under, or the default one.
func (r *Resolver) resolverFor(name string) BasicResolver {
	if len(r.domain) == 0 {
		return r.def
	}
	for d := normalizeDomain(name); ; {
		if br, ok := r.domain[d]; ok {
			return br
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return r.def
		}
		d = d[i+1:]
	}
}

// Resolve resolves a peer's addresses for dialing: each address's /dnsaddr
// component first (following up to DefaultRecursionLimit nested records,
// keeping only records for p when p is not empty), then the /dns, /dns4 or
// /dns6 component of each result. It returns at most limit addresses, in
// the order of addrs and of the DNS answers. An address that fails to
// resolve is dropped; the error, wrapping ErrNoAddresses and joined with
// every failure, comes only when addrs is not empty and nothing resolved.
// Within one call a host is looked up once per family.
func (r *Resolver) Resolve(ctx context.Context, p peer.ID, addrs []ma.Multiaddr, limit int) ([]ma.Multiaddr, error) {
	if limit <= 0 || len(addrs) == 0 {
		return nil, nil
	}
	out := make([]ma.Multiaddr, 0, min(len(addrs), limit))
	var errs []error
	cache := make(ipCache)
	for _, a := range addrs {
		if len(out) >= limit {
			break
		}
		stage := []ma.Multiaddr{a}
		if indexDNSAddr(a) >= 0 {
			res, err := r.ResolveDNSAddr(ctx, p, a, DefaultRecursionLimit, limit-len(out))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			stage = res
		}
		for _, b := range stage {
			if len(out) >= limit {
				break
			}
			if indexDNS(b) < 0 {
				out = append(out, b)
				continue
			}
			res, err := r.resolveDNSComponent(ctx, b, limit-len(out), cache)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, res...)
		}
	}
	if len(out) == 0 {
		return nil, noAddresses(fmt.Sprintf("%d addresses", len(addrs)), errs)
	}
	return out, nil
}

// noAddresses returns ErrNoAddresses for what, joined with the failures
// that explain it.
func noAddresses(what string, errs []error) error {
	err := fmt.Errorf("%w for %s", ErrNoAddresses, what)
	if len(errs) == 0 {
		return err
	}
	return errors.Join(append([]error{err}, errs...)...)
}
