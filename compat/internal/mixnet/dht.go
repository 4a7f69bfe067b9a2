package mixnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DHTPrefix is the protocol prefix of the test DHTs (/p2pnet-compat/kad/1.0.0),
// so they never take part in the public Amino DHT.
const DHTPrefix = "/p2pnet-compat"

// ErrBadRecord is what Validator says of a value without the "ok:" prefix.
var ErrBadRecord = errors.New("mixnet: record value lacks the ok: prefix")

// Validator is the DHTs' validator for the "v" namespace: a value must
// start with "ok:", and of several the greatest (bytewise) wins.
type Validator struct{}

// Validate accepts values that start with "ok:".
func (Validator) Validate(_ string, value []byte) error {
	if !bytes.HasPrefix(value, []byte("ok:")) {
		return ErrBadRecord
	}
	return nil
}

// Select picks the greatest value.
func (Validator) Select(_ string, values [][]byte) (int, error) {
	if len(values) == 0 {
		return 0, errors.New("mixnet: no values")
	}
	best := 0
	for i, v := range values {
		if bytes.Compare(v, values[best]) > 0 {
			best = i
		}
	}
	return best, nil
}

// DHTs is one DHT per host of a Network, in its order.
type DHTs []*dht.IpfsDHT

// StartDHTs starts a server-mode DHT on every host, with Validator for
// the "v" namespace and no automatic refresh (Bootstrap fills the
// tables).
func StartDHTs(n Network) (DHTs, error) {
	var ds DHTs
	for i, nd := range n {
		d, err := dht.New(nd.Host,
			dht.Mode(dht.ModeServer),
			dht.ProtocolPrefix(DHTPrefix),
			dht.NamespacedValidator("v", Validator{}),
			dht.DisableAutoRefresh(),
		)
		if err != nil {
			ds.Close()
			return nil, fmt.Errorf("host %d (%v): dht: %w", i, nd.Kind, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// Close closes every DHT.
func (ds DHTs) Close() error {
	var errs []error
	for _, d := range ds {
		if err := d.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TableKinds counts the peers of each kind in host i's routing table.
func (ds DHTs) TableKinds(n Network, i int) map[Kind]int {
	out := map[Kind]int{}
	for _, p := range ds[i].RoutingTable().ListPeers() {
		if k, ok := n.KindOf(p); ok {
			out[k]++
		}
	}
	return out
}

// Bootstrap connects every host to the boot hosts, then refreshes every
// routing table, round after round, until each holds at least minPeers
// peers (or all the others, in a smaller network) and, when the network
// has both kinds, peers of both kinds. It returns the number of rounds.
func (ds DHTs) Bootstrap(ctx context.Context, n Network, boot []int, minPeers int) (int, error) {
	minPeers = min(minPeers, len(n)-1)
	kinds := map[Kind]bool{}
	for _, nd := range n {
		kinds[nd.Kind] = true
	}
	for i, nd := range n {
		for _, b := range boot {
			if b == i {
				continue
			}
			if err := nd.Host.Connect(ctx, n[b].Info()); err != nil {
				return 0, fmt.Errorf("host %d -> boot %d: %w", i, b, err)
			}
		}
	}
	full := func() bool {
		for i := range ds {
			got := ds.TableKinds(n, i)
			total := 0
			for k := range kinds {
				if got[k] == 0 {
					return false
				}
				total += got[k]
			}
			if total < minPeers {
				return false
			}
		}
		return true
	}
	for round := 1; ; round++ {
		var wg sync.WaitGroup
		errs := make([]error, len(ds))
		for i, d := range ds {
			wg.Go(func() {
				select {
				case err := <-d.RefreshRoutingTable():
					errs[i] = err
				case <-ctx.Done():
					errs[i] = ctx.Err()
				}
			})
		}
		wg.Wait()
		if full() {
			return round, nil
		}
		if err := ctx.Err(); err != nil {
			return round, fmt.Errorf("routing tables not full after %d rounds: %w (%v)", round, err, errors.Join(errs...))
		}
	}
}

// Infos returns the AddrInfo of each host.
func (n Network) Infos() []peer.AddrInfo {
	out := make([]peer.AddrInfo, len(n))
	for i, nd := range n {
		out[i] = nd.Info()
	}
	return out
}
