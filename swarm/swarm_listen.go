package swarm

import (
	"errors"
	"fmt"

	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/transport"

	ma "github.com/multiformats/go-multiaddr"
)

// listener is a transport listener and the address it listens on.
type listener struct {
	tl   transport.Listener
	addr ma.Multiaddr
}

// Listen listens on each address with the transport that handles it, and
// fires a Listen notification for each. It succeeds when at least one
// address works (or none is given); otherwise its error names each
// address and why it failed. Each listener gets one goroutine that
// accepts connections until the listener closes.
func (s *Swarm) Listen(addrs ...ma.Multiaddr) error {
	var errs []error
	ok := 0
	for _, a := range addrs {
		if err := s.listen(a); err != nil {
			errs = append(errs, fmt.Errorf("listen on %s: %w", a, err))
			continue
		}
		ok++
	}
	if ok == 0 && len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

func (s *Swarm) listen(a ma.Multiaddr) error {
	t := s.transportFor(a)
	if t == nil {
		return ErrNoTransport
	}
	tl, err := t.Listen(a)
	if err != nil {
		return err
	}
	l := &listener{tl: tl, addr: tl.Multiaddr()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		tl.Close()
		return ErrSwarmClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	s.notifyAll(func(n network.Notifiee) { n.Listen(s, l.addr) })
	go s.acceptLoop(l)
	return nil
}

// acceptLoop adds the listener's connections to the swarm until Accept
// fails, then forgets the listener and fires ListenClose.
func (s *Swarm) acceptLoop(l *listener) {
	defer s.wg.Done()
	for {
		tc, err := l.tl.Accept()
		if err != nil {
			break
		}
		// Only fails when the swarm is closed; the connection is closed
		// then, and Accept fails next.
		_, _ = s.addConn(tc, network.DirInbound)
	}
	l.tl.Close()
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
	s.notifyAll(func(n network.Notifiee) { n.ListenClose(s, l.addr) })
}

// ListenAddresses returns the addresses the swarm listens on, as the
// transports report them (with actual ports).
func (s *Swarm) ListenAddresses() []ma.Multiaddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ma.Multiaddr, 0, len(s.listeners))
	for l := range s.listeners {
		out = append(out, l.addr)
	}
	return out
}
