package perf

import (
	"testing"

	"github.com/p2pnet/p2pnet/internal/fakehost"
)

// fakeHost is the in-memory host the tests run perf on.
type fakeHost = fakehost.Host

// lazyStream is what fakeHost.NewStream returns.
type lazyStream = fakehost.LazyStream

// newFakeHost returns a host whose inbound handlers the test's cleanup
// waits for.
func newFakeHost(t testing.TB) *fakeHost {
	h := fakehost.New(t)
	t.Cleanup(h.Wait)
	return h
}

// link lets a and b open streams to each other.
func link(a, b *fakeHost) { fakehost.Link(a, b) }
