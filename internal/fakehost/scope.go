package fakehost

import (
	"errors"
	"fmt"
	"sync"

	"github.com/p2pnet/p2pnet/network"
)

// ErrLimit is what a [Scope] over its limit returns.
var ErrLimit = fmt.Errorf("fake scope: %w", network.ErrResourceLimitExceeded)

// ErrServiceSet is what [Scope.SetService] returns for a second service.
var ErrServiceSet = errors.New("fake scope: service already set")

// Scope is a stream scope that counts memory and may limit it.
type Scope struct {
	network.NullScope
	limit int

	mu      sync.Mutex // guards the following
	mem     int
	service string
}

// ReserveMemory reserves size bytes, or returns [ErrLimit] if that would
// exceed the host's limit when the scope was made.
func (s *Scope) ReserveMemory(size int, prio uint8) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && s.mem+size > s.limit {
		return ErrLimit
	}
	s.mem += size
	return nil
}

// ReleaseMemory releases size bytes; it panics if more are released than
// were reserved.
func (s *Scope) ReleaseMemory(size int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mem -= size
	if s.mem < 0 {
		panic("fake scope: released more than reserved")
	}
}

// Stat returns the memory reserved.
func (s *Scope) Stat() network.ScopeStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return network.ScopeStat{Memory: int64(s.mem)}
}

// SetService attaches the stream to srv; attaching it to another service
// afterwards fails with [ErrServiceSet].
func (s *Scope) SetService(srv string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.service != "" && s.service != srv {
		return ErrServiceSet
	}
	s.service = srv
	return nil
}

// Service returns the service the stream is attached to, or "".
func (s *Scope) Service() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.service
}
