package multistream

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/p2pnet/p2pnet/protocol"
)

// Router is the listener side of multistream-select: it maps protocol IDs
// to handlers of type T and answers a dialer's proposals with them.
//
// The zero value is an empty Router ready to use. A Router is safe for
// concurrent use; handlers may be added and removed while negotiations run.
type Router[T any] struct {
	mu    sync.RWMutex        // guards the following
	exact map[string]entry[T] // registrations by AddHandler, keyed by ID
	// matchers holds the registrations by AddHandlerMatch in registration
	// order. It is copy-on-write below its length, so a reader may keep
	// iterating a snapshot after unlocking.
	matchers []matchEntry[T]
}

// entry is a handler registered for an exact protocol ID.
type entry[T any] struct {
	id protocol.ID
	h  T
}

// matchEntry is a handler registered with a match function.
type matchEntry[T any] struct {
	id    protocol.ID
	match func(protocol.ID) bool
	h     T
}

// NewRouter returns an empty Router.
func NewRouter[T any]() *Router[T] {
	return &Router[T]{}
}

// AddHandler registers h for proposals equal to id, replacing whatever was
// registered under id before.
//
// It panics if id is not a valid protocol ID (see [ErrInvalidProtocol]):
// that is a programming error, like an invalid pattern given to
// http.ServeMux.
func (r *Router[T]) AddHandler(id protocol.ID, h T) {
	mustValidate(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(id)
	if r.exact == nil {
		r.exact = make(map[string]entry[T])
	}
	r.exact[string(id)] = entry[T]{id: id, h: h}
}

// AddHandlerMatch registers h for the proposals that match accepts,
// replacing whatever was registered under id before. id names the
// registration for [Router.RemoveHandler], [Router.Protocols] and "ls";
// match alone decides which proposals h gets, so it should accept id.
//
// A handler registered with AddHandler for the exact proposal wins over
// match functions; among match functions the one registered first wins.
// match is called with no lock held and must be safe for concurrent use.
//
// It panics if id is not a valid protocol ID, or match is nil.
func (r *Router[T]) AddHandlerMatch(id protocol.ID, match func(protocol.ID) bool, h T) {
	mustValidate(id)
	if match == nil {
		panic("multistream: AddHandlerMatch with a nil match function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(id)
	r.matchers = append(r.matchers, matchEntry[T]{id: id, match: match, h: h})
}

// RemoveHandler removes the registration named id, if any.
func (r *Router[T]) RemoveHandler(id protocol.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(id)
}

func (r *Router[T]) removeLocked(id protocol.ID) {
	delete(r.exact, string(id))
	i := slices.IndexFunc(r.matchers, func(m matchEntry[T]) bool { return m.id == id })
	if i < 0 {
		return
	}
	// Copy rather than shift in place: lookups may be reading a snapshot.
	matchers := make([]matchEntry[T], 0, len(r.matchers)-1)
	matchers = append(matchers, r.matchers[:i]...)
	r.matchers = append(matchers, r.matchers[i+1:]...)
}

// Protocols returns the IDs of all registrations, sorted.
func (r *Router[T]) Protocols() []protocol.ID {
	r.mu.RLock()
	ids := make([]protocol.ID, 0, len(r.exact)+len(r.matchers))
	for _, e := range r.exact {
		ids = append(ids, e.id)
	}
	for _, m := range r.matchers {
		ids = append(ids, m.id)
	}
	r.mu.RUnlock()
	slices.Sort(ids)
	return ids
}

// lookup finds the handler for the proposal msg.
func (r *Router[T]) lookup(msg []byte) (protocol.ID, T, bool) {
	var zero T
	// A proposal that is not a valid protocol ID cannot be supported; it is
	// refused before any match function sees it.
	if !validProposal(msg) {
		return "", zero, false
	}
	r.mu.RLock()
	if e, ok := r.exact[string(msg)]; ok {
		r.mu.RUnlock()
		return e.id, e.h, true
	}
	if len(r.matchers) == 0 {
		r.mu.RUnlock()
		return "", zero, false
	}
	// Match functions are user code: call them on a snapshot, without the
	// lock, so one that blocks or registers handlers cannot deadlock us.
	matchers := r.matchers
	r.mu.RUnlock()
	id := protocol.ID(msg)
	for _, m := range matchers {
		if m.match(id) {
			return id, m.h, true
		}
	}
	return "", zero, false
}

// LazyWriter is a writer that can hold a small write back to go out with
// the next one, as a yamux stream can (the swarm's streams over yamux
// too). Such a stream sends what it holds before it waits to read, so a
// peer waiting for it is never stuck.
type LazyWriter interface {
	WriteLazy(p []byte) (int, error)
}

// Negotiate answers a dialer on rw: it reads the dialer's header, then
// answers proposals, "na" to those it has no handler for and the protocol
// list to "ls", until one has a handler. It echoes that one and returns it
// with its handler; what follows on rw belongs to that protocol.
//
// Negotiate reads nothing past the accepted proposal, and writes once per
// round trip: our header goes out with the first answer, after the
// dialer's header and first proposal have been read. When rw is a
// [LazyWriter], the echo of the accepted protocol is written lazily, to
// share a write with the handler's reply. It gives up with
// [ErrTooManyRounds] after refusing [MaxRounds] proposals, and with
// [ErrHeaderMismatch] if the dialer does not speak /multistream/1.0.0.
//
// An error writing the final echo is not reported: the dialer may have
// sent its proposal and data and closed its side for reading, and the
// handler should still see the data. Later writes will fail anyway.
func (r *Router[T]) Negotiate(rw io.ReadWriter) (protocol.ID, T, error) {
	var zero T
	p := getBuf()
	defer putBuf(p)
	rbuf := (*p)[:MaxMessageSize]
	out := (*p)[MaxMessageSize:MaxMessageSize]

	msg, err := readMessage(rw, rbuf)
	if err != nil {
		return "", zero, err
	}
	if string(msg) != ProtocolID {
		return "", zero, fmt.Errorf("%w: dialer sent %q", ErrHeaderMismatch, msg)
	}
	out = append(out, headerMsg...)

	for refused := 0; ; refused++ {
		if refused == MaxRounds {
			return "", zero, ErrTooManyRounds
		}
		msg, err := readMessage(rw, rbuf)
		if err != nil {
			return "", zero, err
		}
		if string(msg) == listProtocols {
			out = r.appendList(out)
		} else if id, h, ok := r.lookup(msg); ok {
			out = appendMessage(out, string(id))
			if lw, ok := rw.(LazyWriter); ok {
				_, _ = lw.WriteLazy(out)
			} else {
				_, _ = rw.Write(out)
			}
			return id, h, nil
		} else {
			out = append(out, naMsg...)
		}
		if _, err := rw.Write(out); err != nil {
			return "", zero, fmt.Errorf("multistream: writing answer: %w", err)
		}
		out = out[:0]
	}
}

// appendList appends the answer to "ls": one message holding a message per
// protocol, then '\n'.
func (r *Router[T]) appendList(dst []byte) []byte {
	ids := r.Protocols()
	n := 1 // the outer message's own '\n'
	for _, id := range ids {
		n += messageLen(len(id))
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	for _, id := range ids {
		dst = appendMessage(dst, string(id))
	}
	return append(dst, '\n')
}

// validProposal is validateID for a received proposal, without allocating.
// "ls" never gets here.
func validProposal(msg []byte) bool {
	return len(msg) > 0 && utf8.Valid(msg) && !slices.Contains(msg, '\n') &&
		string(msg) != notAvailable && string(msg) != ProtocolID
}

// mustValidate panics if id is not a valid protocol ID.
func mustValidate(id protocol.ID) {
	if err := validateID(id); err != nil {
		panic(err)
	}
}
