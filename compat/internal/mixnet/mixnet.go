// Package mixnet builds small networks of p2pnet-backed and plain
// go-libp2p hosts on loopback, for compat's tests and its side-by-side
// measurement. It may import compat, the p2pnet host and go-libp2p.
package mixnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	p2pnet "github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/compat"
)

// Kind says which stack a host runs.
type Kind int

const (
	// P2PNet is a p2pnet host behind compat.Wrap.
	P2PNet Kind = iota
	// Libp2p is a plain go-libp2p host.
	Libp2p
)

func (k Kind) String() string {
	if k == P2PNet {
		return "p2pnet"
	}
	return "go-libp2p"
}

// Node is one host of a network.
type Node struct {
	Kind Kind
	Host host.Host
}

// Info returns the node's ID and addresses.
func (n Node) Info() peer.AddrInfo {
	return peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}
}

// NewHost starts a host of kind k listening on loopback TCP.
func NewHost(k Kind) (host.Host, error) {
	switch k {
	case P2PNet:
		h, err := p2pnet.New(
			p2pnet.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			p2pnet.DisableAutoNAT(),
			p2pnet.DisableHolePunching(),
		)
		if err != nil {
			return nil, err
		}
		w, err := compat.Wrap(h)
		if err != nil {
			h.Close()
			return nil, err
		}
		return w, nil
	case Libp2p:
		return libp2p.New(
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.DisableRelay(),
			libp2p.DisableMetrics(),
			libp2p.DisableIdentifyAddressDiscovery(),
		)
	}
	return nil, fmt.Errorf("mixnet: unknown kind %d", k)
}

// Network is a set of hosts.
type Network []Node

// New starts np p2pnet hosts and nl go-libp2p hosts, p2pnet first.
// On error it closes what it started.
func New(np, nl int) (Network, error) {
	var n Network
	for i := range np + nl {
		k := P2PNet
		if i >= np {
			k = Libp2p
		}
		h, err := NewHost(k)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("mixnet: host %d (%v): %w", i, k, err)
		}
		n = append(n, Node{Kind: k, Host: h})
	}
	return n, nil
}

// Close closes every host.
func (n Network) Close() error {
	var errs []error
	for _, nd := range n {
		if err := nd.Host.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Hosts returns the hosts of kind k.
func (n Network) Hosts(k Kind) []host.Host {
	var out []host.Host
	for _, nd := range n {
		if nd.Kind == k {
			out = append(out, nd.Host)
		}
	}
	return out
}

// KindOf returns the kind of the host with ID p.
func (n Network) KindOf(p peer.ID) (Kind, bool) {
	for _, nd := range n {
		if nd.Host.ID() == p {
			return nd.Kind, true
		}
	}
	return 0, false
}

// SparseEdges returns the edges of a connected random graph over n
// nodes: a ring (so the graph is connected) and extra random edges,
// each node starting `extra` of them, from a seeded source.
func SparseEdges(n, extra int, seed uint64) [][2]int {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := map[[2]int]bool{}
	var edges [][2]int
	add := func(a, b int) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if !seen[[2]int{a, b}] {
			seen[[2]int{a, b}] = true
			edges = append(edges, [2]int{a, b})
		}
	}
	// A ring over a shuffled order mixes the kinds along it.
	order := r.Perm(n)
	for i := range order {
		add(order[i], order[(i+1)%n])
	}
	for a := range n {
		for range extra {
			add(a, r.IntN(n))
		}
	}
	sort.Slice(edges, func(i, j int) bool { return slices.Compare(edges[i][:], edges[j][:]) < 0 })
	return edges
}

// Connect connects the nodes of each edge, the lower index dialing.
func (n Network) Connect(ctx context.Context, edges [][2]int) error {
	for _, e := range edges {
		a, b := n[e[0]], n[e[1]]
		if err := a.Host.Connect(ctx, b.Info()); err != nil {
			return fmt.Errorf("mixnet: %v %d -> %v %d: %w", a.Kind, e[0], b.Kind, e[1], err)
		}
	}
	return nil
}

// Percentile returns the p-th percentile (0..100) of ds, nearest rank.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
