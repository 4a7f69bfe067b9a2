package mixnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// badPrefix marks the messages the topic validator rejects.
var badPrefix = []byte("bad:")

// GossipConfig is what RunGossip runs.
type GossipConfig struct {
	Topic    string
	Edges    [][2]int // connections between hosts, by index
	Messages int      // good messages, published in turn by the honest hosts
	// Rogues are hosts (by index) that register no validator and, once
	// the good messages are delivered, publish BadMessages messages the
	// others' validator rejects; their neighbours' scores of them must
	// fall below zero. Rogues publish no good messages.
	Rogues      []int
	BadMessages int
	// Heartbeat is gossipsub's heartbeat interval.
	Heartbeat time.Duration
	// PublishInterval spaces the publishes (none: back to back), so that
	// latencies measure propagation rather than queueing, and gossipsub's
	// outbound queues do not overflow on a slow machine (a message
	// dropped from a full queue is recovered only by gossip, within the
	// history window).
	PublishInterval time.Duration
	// QueueSize sets gossipsub's outbound queue per peer, its validation
	// queue and the subscriptions' buffers (0: gossipsub's defaults, 32).
	// gossipsub sheds load by dropping from full queues.
	QueueSize int
}

// GossipResult is what RunGossip saw.
type GossipResult struct {
	// Latencies holds, for every good message and every host other than
	// its publisher, the time from Publish to delivery.
	Latencies []time.Duration
	// Published counts the good messages published by hosts of each kind.
	Published map[Kind]int
	// Received counts, per host, the distinct good messages delivered.
	Received []int
	// BadDelivered counts bad messages delivered to honest hosts.
	BadDelivered int
	// Rejected counts messages honest hosts' validators rejected.
	Rejected int
	// RogueScore holds, per rogue, the lowest score an honest neighbour
	// gave it.
	RogueScore map[int]float64
	// DroppedRPCs counts RPCs gossipsub dropped for full outbound queues,
	// over all hosts: a message dropped so is recovered only by gossip
	// within the history window.
	DroppedRPCs int
	// Lost counts messages gossipsub dropped for other reasons (a full
	// validation queue, a subscriber too slow), by reason.
	Lost map[string]int
}

// meshTracer counts a host's mesh peers in one topic and rejections.
type meshTracer struct {
	topic string

	mu      sync.Mutex // guards mesh
	mesh    map[peer.ID]bool
	changed chan struct{} // closed and replaced on each change

	rejected atomic.Int64
	dropped  atomic.Int64 // RPCs dropped for a full outbound queue

	lostMu sync.Mutex
	lost   map[string]int // messages dropped for other reasons, by reason
}

func newMeshTracer(topic string) *meshTracer {
	return &meshTracer{topic: topic, mesh: map[peer.ID]bool{}, changed: make(chan struct{})}
}

func (t *meshTracer) set(p peer.ID, topic string, in bool) {
	if topic != t.topic {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if in {
		t.mesh[p] = true
	} else {
		delete(t.mesh, p)
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// waitMesh waits until the mesh has at least n peers.
func (t *meshTracer) waitMesh(ctx context.Context, n int) error {
	for {
		t.mu.Lock()
		size, ch := len(t.mesh), t.changed
		t.mu.Unlock()
		if size >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("mesh of %d peers, waiting for %d: %w", size, n, ctx.Err())
		}
	}
}

func (t *meshTracer) Graft(p peer.ID, topic string) { t.set(p, topic, true) }
func (t *meshTracer) Prune(p peer.ID, topic string) { t.set(p, topic, false) }
func (t *meshTracer) RejectMessage(m *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationFailed:
		t.rejected.Add(1)
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		t.lose(reason)
	}
}

func (t *meshTracer) lose(why string) {
	t.lostMu.Lock()
	defer t.lostMu.Unlock()
	if t.lost == nil {
		t.lost = map[string]int{}
	}
	t.lost[why]++
}

func (t *meshTracer) lostCounts(into map[string]int) {
	t.lostMu.Lock()
	defer t.lostMu.Unlock()
	for k, v := range t.lost {
		into[k] += v
	}
}
func (t *meshTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *meshTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *meshTracer) Join(string)                                          {}
func (t *meshTracer) Leave(string)                                         {}
func (t *meshTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *meshTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *meshTracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *meshTracer) ThrottlePeer(peer.ID)                                 {}
func (t *meshTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *meshTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *meshTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *meshTracer) DropRPC(*pubsub.RPC, peer.ID)                         { t.dropped.Add(1) }
func (t *meshTracer) UndeliverableMessage(*pubsub.Message)                 { t.lose("subscriber too slow") }

// scoreWatch keeps the latest scores one host gives its peers.
type scoreWatch struct {
	mu      sync.Mutex
	scores  map[peer.ID]float64
	changed chan struct{}
}

func (w *scoreWatch) inspect(s map[peer.ID]float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.scores = s
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *scoreWatch) get(p peer.ID) (float64, bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.scores[p]
	return s, ok, w.changed
}

// ScoreParams are the peer-scoring parameters RunGossip uses for topic:
// invalid messages weigh heavily, first deliveries and time in the mesh
// lightly; IP colocation is off, since every host is on 127.0.0.1.
func ScoreParams(topic string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	return &pubsub.PeerScoreParams{
			AppSpecificScore:  func(peer.ID) float64 { return 0 },
			AppSpecificWeight: 1,
			DecayInterval:     time.Second,
			DecayToZero:       0.01,
			Topics: map[string]*pubsub.TopicScoreParams{
				topic: {
					TopicWeight:                    1,
					TimeInMeshWeight:               0.01,
					TimeInMeshQuantum:              time.Second,
					TimeInMeshCap:                  10,
					FirstMessageDeliveriesWeight:   1,
					FirstMessageDeliveriesDecay:    0.9,
					FirstMessageDeliveriesCap:      100,
					InvalidMessageDeliveriesWeight: -100,
					InvalidMessageDeliveriesDecay:  0.9,
				},
			},
		}, &pubsub.PeerScoreThresholds{
			GossipThreshold:   -100,
			PublishThreshold:  -1000,
			GraylistThreshold: -10000,
		}
}

// RunGossip runs gossipsub with peer scoring and a topic validator on
// every host of n, connects them along cfg.Edges, waits for the meshes,
// publishes cfg.Messages good messages from the honest hosts in turn
// (alternating kinds where the network has both), waits until every
// host has them all, then lets the rogues publish bad messages and waits
// until an honest neighbour of each rogue scores it below zero. It
// returns when all that happened or ctx ends (then with an error and
// what it saw).
func RunGossip(ctx context.Context, n Network, cfg GossipConfig) (*GossipResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rogue := map[int]bool{}
	for _, r := range cfg.Rogues {
		rogue[r] = true
	}
	params := pubsub.DefaultGossipSubParams()
	params.HeartbeatInterval = cfg.Heartbeat
	params.HeartbeatInitialDelay = cfg.Heartbeat / 2
	sp, st := ScoreParams(cfg.Topic)

	type member struct {
		ps     *pubsub.PubSub
		topic  *pubsub.Topic
		sub    *pubsub.Subscription
		tracer *meshTracer
		scores *scoreWatch
	}
	members := make([]member, len(n))
	for i, nd := range n {
		m := member{tracer: newMeshTracer(cfg.Topic), scores: &scoreWatch{changed: make(chan struct{})}}
		opts := []pubsub.Option{
			pubsub.WithGossipSubParams(params),
			pubsub.WithPeerScore(sp, st),
			pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(m.scores.inspect), cfg.Heartbeat),
			pubsub.WithRawTracer(m.tracer),
		}
		var subOpts []pubsub.SubOpt
		if cfg.QueueSize > 0 {
			opts = append(opts, pubsub.WithPeerOutboundQueueSize(cfg.QueueSize), pubsub.WithValidateQueueSize(cfg.QueueSize))
			subOpts = append(subOpts, pubsub.WithBufferSize(cfg.QueueSize))
		}
		ps, err := pubsub.NewGossipSub(ctx, nd.Host, opts...)
		if err != nil {
			return nil, fmt.Errorf("host %d (%v): gossipsub: %w", i, nd.Kind, err)
		}
		m.ps = ps
		if !rogue[i] {
			err := ps.RegisterTopicValidator(cfg.Topic, func(_ context.Context, _ peer.ID, msg *pubsub.Message) bool {
				return !bytes.HasPrefix(msg.Data, badPrefix)
			})
			if err != nil {
				return nil, fmt.Errorf("host %d: validator: %w", i, err)
			}
		}
		if m.topic, err = ps.Join(cfg.Topic); err != nil {
			return nil, fmt.Errorf("host %d: join: %w", i, err)
		}
		if m.sub, err = m.topic.Subscribe(subOpts...); err != nil {
			return nil, fmt.Errorf("host %d: subscribe: %w", i, err)
		}
		members[i] = m
	}
	defer func() {
		for _, m := range members {
			m.sub.Cancel()
			m.topic.Close()
		}
	}()

	res := &GossipResult{Published: map[Kind]int{}, Received: make([]int, len(n)), RogueScore: map[int]float64{}, Lost: map[string]int{}}
	var mu sync.Mutex // guards res while receivers run
	allGood := make(chan int, len(n))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range n {
		wg.Go(func() {
			seen := map[uint32]bool{}
			for {
				msg, err := members[i].sub.Next(ctx)
				if err != nil {
					return
				}
				now := time.Now()
				if bytes.HasPrefix(msg.Data, badPrefix) {
					if !rogue[i] {
						mu.Lock()
						res.BadDelivered++
						mu.Unlock()
					}
					continue
				}
				if len(msg.Data) < 12 {
					continue
				}
				seq := binary.BigEndian.Uint32(msg.Data)
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(msg.Data[4:])))
				if seen[seq] {
					continue
				}
				seen[seq] = true
				mu.Lock()
				res.Received[i]++
				if msg.ReceivedFrom != n[i].Host.ID() {
					res.Latencies = append(res.Latencies, now.Sub(sent))
				}
				mu.Unlock()
				if len(seen) == cfg.Messages {
					allGood <- i
				}
			}
		})
	}

	degree := make([]int, len(n))
	for _, e := range cfg.Edges {
		degree[e[0]]++
		degree[e[1]]++
	}
	if err := n.Connect(ctx, cfg.Edges); err != nil {
		return res, err
	}
	for i, m := range members {
		// The heartbeat grafts up to D peers while the mesh is below
		// Dlo: every neighbour, when there are at most D.
		if err := m.tracer.waitMesh(ctx, min(degree[i], params.D)); err != nil {
			return res, fmt.Errorf("host %d (%v): %w", i, n[i].Kind, err)
		}
	}

	var publishers []int
	for _, k := range []Kind{P2PNet, Libp2p} {
		for i, nd := range n {
			if nd.Kind == k && !rogue[i] {
				publishers = append(publishers, i)
			}
		}
	}
	// Interleave the kinds: p2pnet hosts come first in publishers.
	order := interleave(n, publishers)
	var tick <-chan time.Time
	if cfg.PublishInterval > 0 {
		t := time.NewTicker(cfg.PublishInterval)
		defer t.Stop()
		tick = t.C
	}
	for seq := range cfg.Messages {
		if tick != nil && seq > 0 {
			select {
			case <-tick:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		i := order[seq%len(order)]
		data := make([]byte, 12, 64)
		binary.BigEndian.PutUint32(data, uint32(seq))
		binary.BigEndian.PutUint64(data[4:], uint64(time.Now().UnixNano()))
		if err := members[i].topic.Publish(ctx, data); err != nil {
			return res, fmt.Errorf("host %d (%v): publish %d: %w", i, n[i].Kind, seq, err)
		}
		res.Published[n[i].Kind]++
	}
	for range n {
		select {
		case <-allGood:
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			for _, m := range members {
				res.DroppedRPCs += int(m.tracer.dropped.Load())
				m.tracer.lostCounts(res.Lost)
			}
			return res, fmt.Errorf("waiting for deliveries (received per host %v, %d RPCs dropped for full queues, lost %v): %w", res.Received, res.DroppedRPCs, res.Lost, ctx.Err())
		}
	}

	for _, r := range cfg.Rogues {
		for j := range cfg.BadMessages {
			if err := members[r].topic.Publish(ctx, fmt.Appendf(badPrefix, "%d-%d", r, j)); err != nil {
				return res, fmt.Errorf("rogue %d: publish: %w", r, err)
			}
		}
	}
	for _, r := range cfg.Rogues {
		rid := n[r].Host.ID()
		lowest, err := waitNegative(ctx, n, cfg.Edges, r, rogue, func(i int) (float64, bool, <-chan struct{}) {
			return members[i].scores.get(rid)
		})
		res.RogueScore[r] = lowest
		if err != nil {
			return res, fmt.Errorf("rogue %d (%v): %w", r, n[r].Kind, err)
		}
	}
	for i, m := range members {
		if !rogue[i] {
			res.Rejected += int(m.tracer.rejected.Load())
		}
		res.DroppedRPCs += int(m.tracer.dropped.Load())
		m.tracer.lostCounts(res.Lost)
	}
	cancel()
	wg.Wait()
	return res, nil
}

// waitNegative waits until an honest neighbour of rogue r scores it
// below zero, and returns that score.
func waitNegative(ctx context.Context, n Network, edges [][2]int, r int, rogue map[int]bool, get func(int) (float64, bool, <-chan struct{})) (float64, error) {
	var neighbours []int
	for _, e := range edges {
		for k, x := range e {
			if x == r && !rogue[e[1-k]] {
				neighbours = append(neighbours, e[1-k])
			}
		}
	}
	if len(neighbours) == 0 {
		return 0, fmt.Errorf("no honest neighbour")
	}
	for {
		var wait []<-chan struct{}
		for _, i := range neighbours {
			s, ok, ch := get(i)
			if ok && s < 0 {
				return s, nil
			}
			wait = append(wait, ch)
		}
		// Any neighbour's next inspection may show it.
		select {
		case <-wait[0]:
		case <-ctx.Done():
			return 0, fmt.Errorf("no honest neighbour scored it below zero: %w", ctx.Err())
		}
	}
}

// interleave orders publishers so kinds alternate while both last.
func interleave(n Network, publishers []int) []int {
	var a, b []int
	for _, i := range publishers {
		if n[i].Kind == P2PNet {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
	}
	var out []int
	for len(a)+len(b) > 0 {
		if len(a) > 0 {
			out, a = append(out, a[0]), a[1:]
		}
		if len(b) > 0 {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
