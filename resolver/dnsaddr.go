package resolver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/p2pnet/p2pnet/peer"

	ma "github.com/multiformats/go-multiaddr"
)

// dnsaddrTXTPrefix starts every TXT record of the dnsaddr protocol.
const dnsaddrTXTPrefix = "dnsaddr="

// dnsaddrSubdomain is prefixed to a /dnsaddr domain to name its TXT
// records.
const dnsaddrSubdomain = "_dnsaddr."

// errNotDNSAddr means a TXT record that is not a dnsaddr record; such
// records are ignored, as the protocol asks.
var errNotDNSAddr = errors.New("resolver: not a dnsaddr record")

// parseTXT parses the value of one TXT record: "dnsaddr=" followed by a
// multiaddr.
func parseTXT(txt string) (ma.Multiaddr, error) {
	s, ok := strings.CutPrefix(txt, dnsaddrTXTPrefix)
	if !ok {
		return nil, errNotDNSAddr
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidRecord, txt, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w %q: empty multiaddr", ErrInvalidRecord, txt)
	}
	return m, nil
}

// indexDNSAddr returns the index of m's first /dnsaddr component, or -1.
func indexDNSAddr(m ma.Multiaddr) int {
	for i := range m {
		if m[i].Code() == ma.P_DNSADDR {
			return i
		}
	}
	return -1
}

// hasSuffix reports whether m ends with suffix and is longer than it.
func hasSuffix(m, suffix ma.Multiaddr) bool {
	return len(m) > len(suffix) && m[len(m)-len(suffix):].Equal(suffix)
}

// ResolveDNSAddr resolves the first /dnsaddr component of maddr: it looks up
// the TXT records of _dnsaddr.<domain> and keeps each "dnsaddr=<multiaddr>"
// record that ends with what follows the component in maddr (so
// /dnsaddr/example.com/p2p/X keeps only records ending in /p2p/X) and,
// when expectedPeerID is not empty, whose last component is not a /p2p/
// of another peer; what precedes the component is kept in front of each
// record. A record that itself holds a /dnsaddr component is resolved in
// turn, to at most recursionLimit lookups deep along any branch, and a
// branch that returns to a domain it is resolving is dropped (ErrCycle).
//
// The result has at most outputLimit addresses: the records that need no
// further lookup first, in TXT order, then the results of the nested
// records, in TXT order. Nested records are resolved concurrently, each
// within an equal share of the output limit that remains, so a hostile
// zone costs at most about outputLimit × recursionLimit lookups. A failing
// branch is dropped; an error, wrapping ErrNoAddresses and joined with the
// branches' errors (ErrRecursionLimit, ErrCycle, lookup errors), comes only
// when nothing resolved. When outputLimit is not positive it returns
// nothing and no error; when maddr has no /dnsaddr component, maddr itself.
func (r *Resolver) ResolveDNSAddr(ctx context.Context, expectedPeerID peer.ID, maddr ma.Multiaddr, recursionLimit, outputLimit int) ([]ma.Multiaddr, error) {
	if outputLimit <= 0 {
		return nil, nil
	}
	i := indexDNSAddr(maddr)
	if i < 0 {
		return []ma.Multiaddr{maddr}, nil
	}
	w := dnsaddrWalk{r: r, want: expectedPeerID}
	if !w.peerMatches(maddr) {
		// Every record must end like maddr; none can be for the peer.
		return nil, noAddresses(maddr.String()+" for peer "+expectedPeerID.String(), nil)
	}
	return w.resolve(ctx, maddr, i, recursionLimit, outputLimit, nil)
}

// dnsaddrWalk is one ResolveDNSAddr call.
type dnsaddrWalk struct {
	r    *Resolver
	want peer.ID // the expected peer, or "" for any
}

// peerMatches reports whether m may be an address of w.want: it does not
// end in a /p2p component, or that component is w.want.
func (w *dnsaddrWalk) peerMatches(m ma.Multiaddr) bool {
	if w.want == "" || len(m) == 0 || m[len(m)-1].Code() != ma.P_P2P {
		return true
	}
	id, err := peer.IDFromBytes(m[len(m)-1].RawValue())
	return err == nil && id == w.want
}

// nestedRecord is a record that needs another /dnsaddr lookup: addr, whose
// first /dnsaddr component is at index at.
type nestedRecord struct {
	addr ma.Multiaddr
	at   int
}

// resolve resolves the /dnsaddr component at index i of m, with levels
// lookups left along this branch, into at most limit addresses. onPath
// holds the domains being resolved by the callers on this branch; it is
// never appended to in place, so concurrent branches may share it.
func (w *dnsaddrWalk) resolve(ctx context.Context, m ma.Multiaddr, i, levels, limit int, onPath []string) ([]ma.Multiaddr, error) {
	if levels <= 0 {
		return nil, fmt.Errorf("%w: %s", ErrRecursionLimit, m)
	}
	domain := m[i].Value()
	key := normalizeDomain(domain)
	if slices.Contains(onPath, key) {
		return nil, fmt.Errorf("%w: %s", ErrCycle, m)
	}
	onPath = append(onPath[:len(onPath):len(onPath)], key)

	txts, err := w.r.resolverFor(domain).LookupTXT(ctx, dnsaddrSubdomain+domain)
	if err != nil {
		return nil, fmt.Errorf("resolver: resolving %s: %w", m, err)
	}
	prefix, suffix := m[:i], m[i+1:]
	var (
		direct   []ma.Multiaddr
		nested   []nestedRecord
		firstBad error // the first invalid record, to explain an empty result
	)
	for _, txt := range txts {
		rec, err := parseTXT(txt)
		if err != nil {
			if firstBad == nil && !errors.Is(err, errNotDNSAddr) {
				firstBad = err
			}
			continue
		}
		if !hasSuffix(rec, suffix) || !w.peerMatches(rec) {
			continue
		}
		addr := rec
		if len(prefix) > 0 {
			addr = make(ma.Multiaddr, 0, len(prefix)+len(rec))
			addr = append(append(addr, prefix...), rec...)
		}
		if j := indexDNSAddr(rec); j >= 0 {
			nested = append(nested, nestedRecord{addr, len(prefix) + j})
		} else if len(direct) < limit {
			direct = append(direct, addr)
		}
	}

	out := direct
	var errs []error
	// Each nested record gets at least one place in the output, so there
	// are never more of them than places left.
	if room := limit - len(direct); room > 0 && len(nested) > 0 {
		nested = nested[:min(len(nested), room)]
		results := w.resolveNested(ctx, nested, levels-1, room, onPath)
		for _, res := range results {
			if res.err != nil {
				errs = append(errs, res.err)
				continue
			}
			out = append(out, res.addrs...)
		}
	}
	if len(out) == 0 {
		if firstBad != nil {
			errs = append(errs, firstBad)
		}
		return nil, noAddresses(m.String(), errs)
	}
	return out, nil
}

// nestedResult is the outcome of resolving one nested record.
type nestedResult struct {
	addrs []ma.Multiaddr
	err   error
}

// resolveNested resolves the nested records concurrently, sharing room
// places of output among them as equally as it can.
func (w *dnsaddrWalk) resolveNested(ctx context.Context, nested []nestedRecord, levels, room int, onPath []string) []nestedResult {
	results := make([]nestedResult, len(nested))
	share := func(k int) int {
		n := room / len(nested)
		if k < room%len(nested) {
			n++
		}
		return n
	}
	if len(nested) == 1 {
		results[0].addrs, results[0].err = w.resolve(ctx, nested[0].addr, nested[0].at, levels, room, onPath)
		return results
	}
	var wg sync.WaitGroup
	for k, n := range nested {
		wg.Go(func() {
			results[k].addrs, results[k].err = w.resolve(ctx, n.addr, n.at, levels, share(k), onPath)
		})
	}
	wg.Wait()
	return results
}
