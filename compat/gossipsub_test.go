package compat_test

import (
	"context"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet/compat/internal/mixnet"
)

// TestGossipsubMixed runs gossipsub v0.19.0 with peer scoring and a
// topic validator on 8 p2pnet-backed and 8 go-libp2p hosts connected
// at random: 100 messages published by hosts of both kinds reach every
// host; bad messages from one rogue host of each kind are rejected by
// every honest host's validator, never delivered, and drive the rogue's
// score below zero at its honest neighbours.
func TestGossipsubMixed(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	n, err := mixnet.New(8, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	edges := mixnet.SparseEdges(len(n), 1, 16)
	res, err := mixnet.RunGossip(ctx, n, mixnet.GossipConfig{
		Topic:       "compat-test",
		Edges:       edges,
		Messages:    100,
		Rogues:      []int{3, 12}, // one of each kind
		BadMessages: 5,
		Heartbeat:   100 * time.Millisecond,
		// Spaced publishes and long queues: under -race on a loaded
		// machine, back-to-back publishes overflow gossipsub's outbound
		// and validation queues (32 by default), and gossipsub sheds the
		// message; gossip recovers it only within its history window.
		PublishInterval: 20 * time.Millisecond,
		QueueSize:       256,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, got := range res.Received {
		if got != 100 {
			t.Errorf("host %d (%v) received %d of 100 messages", i, n[i].Kind, got)
		}
	}
	if res.Published[mixnet.P2PNet] == 0 || res.Published[mixnet.Libp2p] == 0 {
		t.Errorf("published by kind: %v, want both kinds", res.Published)
	}
	if res.BadDelivered != 0 {
		t.Errorf("%d bad messages delivered to honest hosts", res.BadDelivered)
	}
	if res.Rejected == 0 {
		t.Error("no honest validator rejected a bad message")
	}
	for r, s := range res.RogueScore {
		if s >= 0 {
			t.Errorf("rogue %d scored %v", r, s)
		}
	}
	t.Logf("edges %d, latency p50 %v p99 %v over %d deliveries, rogue scores %v, rejections %d, RPCs dropped %d, messages shed %v",
		len(edges), mixnet.Percentile(res.Latencies, 50), mixnet.Percentile(res.Latencies, 99), len(res.Latencies), res.RogueScore, res.Rejected, res.DroppedRPCs, res.Lost)
}
