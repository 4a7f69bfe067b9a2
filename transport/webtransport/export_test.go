package webtransport

// KillListener closes l's UDP socket abruptly, as if the host vanished:
// its sessions stop without a word to their peers.
func KillListener(l *Listener) { l.sl.Abort() }

// SetSlotHook makes l call f each time an inbound connection takes a
// handshake slot. It must be called before the first connection.
func SetSlotHook(l *Listener, f func()) { l.slotTaken = f }
