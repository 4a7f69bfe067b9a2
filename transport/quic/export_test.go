package quic

// SetPunchHook makes t call f each time a hole-punching Dial is ready to
// receive the peer's connection.
func SetPunchHook(t *Transport, f func()) { t.punchRegistered = f }

// KillListener closes l's socket abruptly, as if the host vanished: its
// connections stop without a word to their peers.
func KillListener(l *Listener) { l.ep.close() }
