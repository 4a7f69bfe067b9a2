package compat_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/p2pnet/p2pnet/compat/internal/mixnet"
)

// TestDHTMixed runs kad-dht v0.42.2 in server mode on 10 p2pnet-backed
// and 10 go-libp2p hosts bootstrapped through one host of each kind:
// every routing table fills with peers of both kinds; values put (with a
// custom validator) by a host of one kind are got by hosts of the other,
// a value the validator refuses is refused, and providers announced by
// one kind are found by the other.
func TestDHTMixed(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	n, err := mixnet.New(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ds, err := mixnet.StartDHTs(n)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	rounds, err := ds.Bootstrap(ctx, n, []int{0, 10}, 6)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds {
		k := ds.TableKinds(n, i)
		t.Logf("host %d (%v): routing table %v", i, n[i].Kind, k)
	}
	t.Logf("routing tables full after %d refresh rounds", rounds)

	// Values: each kind puts, the other kind gets.
	for _, c := range []struct{ put, get int }{{1, 15}, {12, 4}, {2, 3}, {13, 17}} {
		key := fmt.Sprintf("/v/key-%d", c.put)
		val := []byte(fmt.Sprintf("ok:from %d", c.put))
		if err := ds[c.put].PutValue(ctx, key, val); err != nil {
			t.Fatalf("PutValue by host %d (%v): %v", c.put, n[c.put].Kind, err)
		}
		got, err := ds[c.get].GetValue(ctx, key)
		if err != nil {
			t.Fatalf("GetValue by host %d (%v) of %d's value: %v", c.get, n[c.get].Kind, c.put, err)
		}
		if string(got) != string(val) {
			t.Errorf("host %d got %q, want %q", c.get, got, val)
		}
	}
	if err := ds[5].PutValue(ctx, "/v/bad", []byte("not ok")); !errors.Is(err, mixnet.ErrBadRecord) {
		t.Errorf("PutValue of an invalid value: %v, want ErrBadRecord", err)
	}

	// Providers: each kind provides, the other kind finds.
	for _, c := range []struct{ prov, find int }{{6, 18}, {16, 8}} {
		mh, err := multihash.Sum([]byte(fmt.Sprintf("content %d", c.prov)), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		key := cid.NewCidV1(cid.Raw, mh)
		if err := ds[c.prov].Provide(ctx, key, true); err != nil {
			t.Fatalf("Provide by host %d (%v): %v", c.prov, n[c.prov].Kind, err)
		}
		found := false
		for ai := range ds[c.find].FindProvidersAsync(ctx, key, 1) {
			if ai.ID == n[c.prov].Host.ID() {
				found = true
			}
		}
		if !found {
			t.Errorf("host %d (%v) did not find provider %d (%v)", c.find, n[c.find].Kind, c.prov, n[c.prov].Kind)
		}
	}
}
