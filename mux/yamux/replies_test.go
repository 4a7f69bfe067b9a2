package yamux

import (
	"testing"
	"testing/synctest"
)

// TestRefusalsNeverDropped: a remote that opens far more streams than the
// backlog takes, in one burst and without reading, gets a RST for every
// refused stream, in order, and the answer to the ping it sent last: the
// read loop waits for its replies to be written rather than dropping
// them (a dropped refusal leaves the remote's stream hanging).
func TestRefusalsNeverDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, p := newRawPeer(t, nil, true, nil, false)
		const refused = 3 * maxQueuedReplies
		var burst []byte
		for i := range DefaultAcceptBacklog + refused {
			burst = appendHeader(burst, typeWindowUpdate, flagSYN, uint32(2*i+1), 0)
		}
		burst = appendHeader(burst, typePing, flagSYN, 0, 77)
		written := make(chan error, 1)
		go func() {
			_, err := p.nc.Write(burst)
			written <- err
		}()
		// Everything that can happen without the remote reading has
		// happened: the replies pile up (or, before the fix, were dropped).
		synctest.Wait()
		<-p.done // newRawPeer queued a nil for a peer that does not read
		go p.readLoop()

		next := uint32(2*DefaultAcceptBacklog + 1)
		for {
			f, ok := <-p.frames // not p.next: it hides pings
			if !ok {
				t.Fatalf("connection closed after %d refusals", (next-2*DefaultAcceptBacklog-1)/2)
			}
			if f.typ == typePing && f.flags == flagSYN {
				continue // a keepalive of the Conn's own
			}
			if f.typ == typePing {
				if f.flags != flagACK || f.length != 77 {
					t.Fatalf("ping frame %+v", f.header)
				}
				break
			}
			if f.typ != typeWindowUpdate || f.flags != flagRST || f.streamID != next {
				t.Fatalf("frame %+v; want the RST of stream %d", f.header, next)
			}
			next += 2
		}
		if got := (next - 2*DefaultAcceptBacklog - 1) / 2; got != refused {
			t.Fatalf("%d refusals before the ping's answer; want %d", got, refused)
		}
		if err := <-written; err != nil {
			t.Fatal(err)
		}
	})
}
