package event

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// DefaultBufSize is the buffer of a subscription unless BufSize says
// otherwise.
const DefaultBufSize = 16

var (
	// ErrClosed is returned by Emit on a closed emitter.
	ErrClosed = errors.New("event: emitter closed")
	// ErrBadType is returned for an event type that is not a pointer to a
	// type, and for an emitted value of the wrong type.
	ErrBadType = errors.New("event: bad event type")
)

// Bus delivers events from emitters to subscribers. The zero value is
// not usable; call NewBus. It is safe for concurrent use.
type Bus struct {
	mu    sync.RWMutex // guards nodes and each node's subs and last
	nodes map[reflect.Type]*node

	dropped atomic.Uint64
}

// node is one event type's subscribers.
type node struct {
	typ  reflect.Type
	subs []*Subscription
	// last is the last event of a stateful emitter, given to each new
	// subscriber; nil if none.
	last      any
	stateful  bool
	emitters  int
	lastValid bool
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{nodes: map[reflect.Type]*node{}} }

// Dropped counts the events dropped for full subscriber buffers, over
// all subscriptions.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// typeOf returns the event type that eventType, a pointer to a value of
// it, names.
func typeOf(eventType any) (reflect.Type, error) {
	t := reflect.TypeOf(eventType)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil, fmt.Errorf("%w: %T: name an event type with a nil pointer to it, as new(T)", ErrBadType, eventType)
	}
	return t.Elem(), nil
}

func (b *Bus) nodeLocked(t reflect.Type) *node {
	n := b.nodes[t]
	if n == nil {
		n = &node{typ: t}
		b.nodes[t] = n
	}
	return n
}

// SubscriptionOpt configures a subscription.
type SubscriptionOpt func(*subConfig) error

type subConfig struct {
	bufSize int
	name    string
}

// BufSize sets how many events a subscription buffers before it drops.
// Default: DefaultBufSize.
func BufSize(n int) SubscriptionOpt {
	return func(c *subConfig) error {
		if n < 1 {
			return fmt.Errorf("event: buffer size %d, need at least 1", n)
		}
		c.bufSize = n
		return nil
	}
}

// Name names a subscription, for debugging.
func Name(name string) SubscriptionOpt {
	return func(c *subConfig) error {
		c.name = name
		return nil
	}
}

// Subscription receives the events of the types it subscribed to.
type Subscription struct {
	bus   *Bus
	types []reflect.Type
	name  string
	ch    chan any

	closeOnce sync.Once
	dropped   atomic.Uint64
}

// Subscribe subscribes to eventType, a nil pointer to an event type
// (new(EvtPeerConnectednessChanged)), or to each type of a slice of
// them ([]any{new(A), new(B)}). Events arrive on Out as values (not
// pointers).
func (b *Bus) Subscribe(eventType any, opts ...SubscriptionOpt) (*Subscription, error) {
	cfg := subConfig{bufSize: DefaultBufSize}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	list, ok := eventType.([]any)
	if !ok {
		list = []any{eventType}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no event type", ErrBadType)
	}
	s := &Subscription{bus: b, name: cfg.name, ch: make(chan any, cfg.bufSize)}
	for _, et := range list {
		t, err := typeOf(et)
		if err != nil {
			return nil, err
		}
		s.types = append(s.types, t)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range s.types {
		n := b.nodeLocked(t)
		n.subs = append(n.subs, s)
		if n.lastValid {
			s.deliverLocked(n.last)
		}
	}
	return s, nil
}

// Out returns the channel the events arrive on. Close closes it.
func (s *Subscription) Out() <-chan any { return s.ch }

// Dropped counts the events this subscription missed because its buffer
// was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Name returns the name given with the Name option.
func (s *Subscription) Name() string { return s.name }

// Close ends the subscription and closes Out's channel; events still
// buffered can be read until it reports closed. Closing again does
// nothing.
func (s *Subscription) Close() error {
	s.closeOnce.Do(func() {
		b := s.bus
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, t := range s.types {
			n := b.nodes[t]
			for i, x := range n.subs {
				if x == s {
					n.subs = append(n.subs[:i:i], n.subs[i+1:]...)
					break
				}
			}
			b.gcLocked(n)
		}
		close(s.ch)
	})
	return nil
}

// deliverLocked queues ev or counts it dropped. The bus's lock (read or
// write) is held, so the channel is open.
func (s *Subscription) deliverLocked(ev any) {
	select {
	case s.ch <- ev:
	default:
		s.dropped.Add(1)
		s.bus.dropped.Add(1)
	}
}

func (b *Bus) gcLocked(n *node) {
	if len(n.subs) == 0 && n.emitters == 0 && !n.lastValid {
		delete(b.nodes, n.typ)
	}
}

// EmitterOpt configures an emitter.
type EmitterOpt func(*emitterConfig)

type emitterConfig struct{ stateful bool }

// Stateful makes the bus remember the last event emitted of the type and
// give it to each new subscriber at once, for state such as the local
// addresses or reachability. The memory outlives the emitter.
func Stateful() EmitterOpt { return func(c *emitterConfig) { c.stateful = true } }

// Emitter emits events of one type.
type Emitter struct {
	bus    *Bus
	n      *node
	closed atomic.Bool
}

// Emitter returns an emitter of eventType, a nil pointer to the event
// type.
func (b *Bus) Emitter(eventType any, opts ...EmitterOpt) (*Emitter, error) {
	var cfg emitterConfig
	for _, o := range opts {
		o(&cfg)
	}
	t, err := typeOf(eventType)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.nodeLocked(t)
	n.emitters++
	n.stateful = n.stateful || cfg.stateful
	return &Emitter{bus: b, n: n}, nil
}

// Emit hands ev, a value of the emitter's type, to every subscriber of
// the type. It never blocks: see the package doc for full buffers.
func (e *Emitter) Emit(ev any) error {
	if e.closed.Load() {
		return ErrClosed
	}
	if reflect.TypeOf(ev) != e.n.typ {
		return fmt.Errorf("%w: emitting %T on an emitter of %v", ErrBadType, ev, e.n.typ)
	}
	b := e.bus
	if e.n.stateful {
		b.mu.Lock()
		defer b.mu.Unlock()
		e.n.last, e.n.lastValid = ev, true
	} else {
		b.mu.RLock()
		defer b.mu.RUnlock()
	}
	for _, s := range e.n.subs {
		s.deliverLocked(ev)
	}
	return nil
}

// Close ends the emitter. Closing again does nothing.
func (e *Emitter) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	b := e.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	e.n.emitters--
	b.gcLocked(e.n)
	return nil
}
