package rcmgr

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRefusalLogInterval is how often, at most, a Manager logs the
// summary of its refusals unless WithRefusalLog says otherwise.
const DefaultRefusalLogInterval = 10 * time.Second

// maxLoggedSources is how many sources a summary tells apart, per limit
// and in all; beyond that it says "at least".
const maxLoggedSources = 1024

// WithRefusalLog sets where and how often the Manager logs the summary of
// its refusals: at Info level, one line per interval at most, only when
// something was refused. The line comes interval after the first refusal
// of the interval, and says how many requests were refused, from how many
// sources (see Shares: remote addresses, grouped), and which limits
// refused them in which kind of scope and for which resource, with their
// own counts:
//
//	level=INFO msg="resource manager refused requests" interval=10s refusals=1210 sources=3 limits="Shares.UnnegotiatedStreamsPerPeer (peer, StreamsInbound): 1200 from 2 sources; Transient (transient, ConnsInbound): 10 from 1 source"
//
// A refusal whose request has no known remote address (such as a memory
// reservation of a peer scope) counts in the refusals, not the sources.
// Close logs what is pending at once.
//
// A nil logger means slog.Default() at the time of logging; an interval
// of 0 turns the summary off. By default the Manager logs to
// slog.Default() every DefaultRefusalLogInterval.
func WithRefusalLog(logger *slog.Logger, interval time.Duration) Option {
	return func(c *config) error {
		if interval < 0 {
			return fmt.Errorf("%w: refusal log interval %v", ErrInvalidLimits, interval)
		}
		c.logger, c.logInterval = logger, interval
		return nil
	}
}

// refusalKey names one limit refusing one resource in one kind of scope.
type refusalKey struct {
	limit    string // LimitError.Origin
	kind     ScopeKind
	resource Resource
}

// LimitRefusalCount counts the refusals of one limit, in one kind of
// scope, for want of one resource.
type LimitRefusalCount struct {
	// Limit names the limit as LimitError.Origin does: a field of Limits
	// such as "Transient" or "PeerDefault", an override such as
	// `Peer["12D3KooW…"]`, "ConnLimitsPerIP", or a cap of the Shares such
	// as "Shares.UnnegotiatedStreamsPerPeer".
	Limit    string
	Kind     ScopeKind
	Resource Resource
	Count    uint64
}

// RefusalsByLimit returns how many requests each limit refused since New,
// in each kind of scope and for each resource, sorted by limit, kind and
// resource. Refusals counts the same refusals by kind and resource alone.
func (m *Manager) RefusalsByLimit() []LimitRefusalCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refusalsByLimitLocked()
}

func (m *Manager) refusalsByLimitLocked() []LimitRefusalCount {
	out := make([]LimitRefusalCount, 0, len(m.refusedBy))
	for k, n := range m.refusedBy {
		out = append(out, LimitRefusalCount{Limit: k.limit, Kind: k.kind, Resource: k.resource, Count: n})
	}
	slices.SortFunc(out, func(a, b LimitRefusalCount) int {
		return cmp.Or(cmp.Compare(a.Limit, b.Limit), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Resource, b.Resource))
	})
	return out
}

// refuseLocked counts the refusal err of a request from src (the zero
// Prefix when unknown), and adds it to the summary to be logged.
func (m *Manager) refuseLocked(err *LimitError, src netip.Prefix) {
	m.refused[err.Kind][err.Resource]++
	k := refusalKey{limit: err.Origin, kind: err.Kind, resource: err.Resource}
	m.refusedBy[k]++
	if m.closed {
		return
	}
	m.log.addLocked(m, k, src)
}

// refusalLog gathers the refusals of one interval and logs their summary
// when it ends. There is no goroutine: the first refusal of an interval
// starts a timer, whose function logs the summary.
type refusalLog struct {
	logger   *slog.Logger // nil means slog.Default()
	interval time.Duration
	wg       sync.WaitGroup // counts the timer functions pending or running

	// Guarded by the Manager's mutex.
	timer   *time.Timer // pending, from the first refusal of the interval
	tallies map[refusalKey]*refusalTally
	sources sourceSet
	total   uint64
}

// refusalTally is what one limit refused in the interval.
type refusalTally struct {
	count   uint64
	sources sourceSet
}

// sourceSet is a set of sources that stops growing at maxLoggedSources.
type sourceSet struct {
	m    map[netip.Prefix]struct{}
	full bool
}

func (s *sourceSet) add(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	if _, ok := s.m[p]; ok {
		return
	}
	if len(s.m) >= maxLoggedSources {
		s.full = true
		return
	}
	if s.m == nil {
		s.m = make(map[netip.Prefix]struct{})
	}
	s.m[p] = struct{}{}
}

// count writes the number of sources: "3", or "at least 1024".
func (s *sourceSet) count() string {
	n := strconv.Itoa(len(s.m))
	if s.full {
		n = "at least " + n
	}
	return n
}

// String writes "3 sources", "1 source" or "at least 1024 sources".
func (s *sourceSet) String() string {
	if len(s.m) == 1 && !s.full {
		return "1 source"
	}
	return s.count() + " sources"
}

// addLocked adds a refusal by k of a request from src to the interval,
// starting the interval if it is the first.
func (l *refusalLog) addLocked(m *Manager, k refusalKey, src netip.Prefix) {
	if l.interval <= 0 {
		return
	}
	if l.timer == nil {
		l.tallies = make(map[refusalKey]*refusalTally)
		l.wg.Add(1)
		l.timer = time.AfterFunc(l.interval, func() {
			defer l.wg.Done()
			m.mu.Lock()
			line := l.takeLocked()
			m.mu.Unlock()
			line.write()
		})
	}
	t := l.tallies[k]
	if t == nil {
		t = new(refusalTally)
		l.tallies[k] = t
	}
	t.count++
	t.sources.add(src)
	l.sources.add(src)
	l.total++
}

// stopLocked ends the interval at once, for Close: it returns the
// pending summary, if any.
func (l *refusalLog) stopLocked() refusalLine {
	if l.timer == nil || !l.timer.Stop() {
		// Nothing pending, or the timer's function is running and will
		// take the summary.
		return refusalLine{}
	}
	l.wg.Done()
	return l.takeLocked()
}

// takeLocked ends the interval and returns its summary.
func (l *refusalLog) takeLocked() refusalLine {
	if l.timer == nil {
		return refusalLine{}
	}
	keys := make([]refusalKey, 0, len(l.tallies))
	for k := range l.tallies {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b refusalKey) int {
		return cmp.Or(cmp.Compare(l.tallies[b].count, l.tallies[a].count),
			cmp.Compare(a.limit, b.limit), cmp.Compare(a.kind, b.kind), cmp.Compare(a.resource, b.resource))
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("; ")
		}
		t := l.tallies[k]
		fmt.Fprintf(&b, "%s (%s, %s): %d from %s", k.limit, k.kind, k.resource.FieldName(), t.count, t.sources.String())
	}
	line := refusalLine{
		logger: l.logger,
		attrs: []slog.Attr{
			slog.Duration("interval", l.interval),
			slog.Uint64("refusals", l.total),
			slog.String("sources", l.sources.count()),
			slog.String("limits", b.String()),
		},
	}
	l.timer, l.tallies, l.sources, l.total = nil, nil, sourceSet{}, 0
	return line
}

// refusalLine is a summary to be logged, outside the Manager's lock.
type refusalLine struct {
	logger *slog.Logger
	attrs  []slog.Attr // nil: nothing to log
}

func (r refusalLine) write() {
	if r.attrs == nil {
		return
	}
	logger := r.logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.LogAttrs(context.Background(), slog.LevelInfo, "resource manager refused requests", r.attrs...)
}
