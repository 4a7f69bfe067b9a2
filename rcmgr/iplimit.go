package rcmgr

import (
	"fmt"
	"net/netip"
	"slices"
)

// SubnetLimit caps the inbound connections from one subnet: at most Conns
// connections from addresses sharing their first PrefixLen bits.
type SubnetLimit struct {
	PrefixLen int
	Conns     int
}

var (
	// DefaultConnLimitsPerIPv4 allows 8 inbound connections per IPv4
	// address.
	DefaultConnLimitsPerIPv4 = []SubnetLimit{{PrefixLen: 32, Conns: 8}}
	// DefaultConnLimitsPerIPv6 allows 8 inbound connections per IPv6 /56
	// (what one site usually gets) and 64 per /48.
	DefaultConnLimitsPerIPv6 = []SubnetLimit{{PrefixLen: 56, Conns: 8}, {PrefixLen: 48, Conns: 64}}
)

// validateSubnetLimits checks the limits of one address family.
func validateSubnetLimits(ls []SubnetLimit, bits int) error {
	for i, l := range ls {
		if l.PrefixLen < 0 || l.PrefixLen > bits {
			return fmt.Errorf("%w: per-IP limit with prefix length %d, want 0 to %d", ErrInvalidLimits, l.PrefixLen, bits)
		}
		if l.Conns < 0 {
			return fmt.Errorf("%w: per-IP limit of %d connections", ErrInvalidLimits, l.Conns)
		}
		for _, o := range ls[:i] {
			if o.PrefixLen == l.PrefixLen {
				return fmt.Errorf("%w: two per-IP limits for prefix length %d", ErrInvalidLimits, l.PrefixLen)
			}
		}
	}
	return nil
}

// ipLimiter counts the inbound connections per subnet. It is guarded by
// the Manager's mutex.
type ipLimiter struct {
	ipv4, ipv6 []SubnetLimit
	conns      map[netip.Prefix]int // a prefix's length tells which limit it counts for
}

func newIPLimiter(ipv4, ipv6 []SubnetLimit) ipLimiter {
	return ipLimiter{
		ipv4:  slices.Clone(ipv4),
		ipv6:  slices.Clone(ipv6),
		conns: make(map[netip.Prefix]int),
	}
}

// limitsFor returns the limits of ip's family.
func (l *ipLimiter) limitsFor(ip netip.Addr) []SubnetLimit {
	if ip.Is4() {
		return l.ipv4
	}
	return l.ipv6
}

// addLocked counts one more connection from ip, or refuses it.
func (l *ipLimiter) addLocked(ip netip.Addr) *LimitError {
	ls := l.limitsFor(ip)
	for _, sl := range ls {
		p, _ := ip.Prefix(sl.PrefixLen)
		if n := l.conns[p]; n >= sl.Conns {
			return &LimitError{
				Scope:     "ip " + p.String(),
				Kind:      KindIP,
				Resource:  ResourceConnsInbound,
				Requested: 1,
				Used:      int64(n),
				Limit:     int64(sl.Conns),
				Allowed:   int64(sl.Conns),
				Origin:    "ConnLimitsPerIP",
			}
		}
	}
	for _, sl := range ls {
		p, _ := ip.Prefix(sl.PrefixLen)
		l.conns[p]++
	}
	return nil
}

// removeLocked forgets a connection addLocked counted.
func (l *ipLimiter) removeLocked(ip netip.Addr) {
	for _, sl := range l.limitsFor(ip) {
		p, _ := ip.Prefix(sl.PrefixLen)
		if n := l.conns[p]; n > 1 {
			l.conns[p] = n - 1
		} else {
			delete(l.conns, p)
		}
	}
}
