package network

import ma "github.com/multiformats/go-multiaddr"

// Notifiee receives a network's events. The network calls a notifiee
// from its own goroutines; a notifiee may call back into the network.
type Notifiee interface {
	// Listen is called when the network starts listening on an address.
	Listen(Network, ma.Multiaddr)
	// ListenClose is called when the network stops listening on an
	// address.
	ListenClose(Network, ma.Multiaddr)
	// Connected is called when a connection opens, before any stream the
	// remote opens on it reaches a handler.
	Connected(Network, Conn)
	// Disconnected is called when a connection closes, never before
	// Connected for the same connection.
	Disconnected(Network, Conn)
}

// NotifyBundle is a Notifiee made of functions; each unset function is
// simply not called. It is the easy way to listen for some events.
type NotifyBundle struct {
	ListenF      func(Network, ma.Multiaddr)
	ListenCloseF func(Network, ma.Multiaddr)

	ConnectedF    func(Network, Conn)
	DisconnectedF func(Network, Conn)
}

var _ Notifiee = (*NotifyBundle)(nil)

// Listen calls ListenF if it is set.
func (nb *NotifyBundle) Listen(n Network, a ma.Multiaddr) {
	if nb.ListenF != nil {
		nb.ListenF(n, a)
	}
}

// ListenClose calls ListenCloseF if it is set.
func (nb *NotifyBundle) ListenClose(n Network, a ma.Multiaddr) {
	if nb.ListenCloseF != nil {
		nb.ListenCloseF(n, a)
	}
}

// Connected calls ConnectedF if it is set.
func (nb *NotifyBundle) Connected(n Network, c Conn) {
	if nb.ConnectedF != nil {
		nb.ConnectedF(n, c)
	}
}

// Disconnected calls DisconnectedF if it is set.
func (nb *NotifyBundle) Disconnected(n Network, c Conn) {
	if nb.DisconnectedF != nil {
		nb.DisconnectedF(n, c)
	}
}

// GlobalNoopNotifiee is a shared notifiee that ignores every event. Do not
// change it.
var GlobalNoopNotifiee = &NoopNotifiee{}

// NoopNotifiee ignores every event; embed it to implement only some of
// Notifiee's methods.
type NoopNotifiee struct{}

var _ Notifiee = (*NoopNotifiee)(nil)

// Connected does nothing.
func (nn *NoopNotifiee) Connected(n Network, c Conn) {}

// Disconnected does nothing.
func (nn *NoopNotifiee) Disconnected(n Network, c Conn) {}

// Listen does nothing.
func (nn *NoopNotifiee) Listen(n Network, addr ma.Multiaddr) {}

// ListenClose does nothing.
func (nn *NoopNotifiee) ListenClose(n Network, addr ma.Multiaddr) {}
