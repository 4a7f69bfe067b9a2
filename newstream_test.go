package p2pnet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/multistream"
	"github.com/p2pnet/p2pnet/network"
	"github.com/p2pnet/p2pnet/proto/identify"
	"github.com/p2pnet/p2pnet/protocol"
)

// Tests of Host.NewStream with one protocol: a peer's refusal reaches the
// caller, from NewStream when identify has told what the peer serves, and
// from Close otherwise.

// checkRefused fails the test unless err is a refusal by the peer.
func checkRefused(t *testing.T, what string, err error) {
	t.Helper()
	var nse *multistream.NotSupportedError
	if !errors.Is(err, multistream.ErrNotSupported) || !errors.As(err, &nse) {
		t.Fatalf("%s: %v; want an error matching multistream.ErrNotSupported", what, err)
	}
}

// received collects what a handler read from each stream.
func received(t *testing.T) (network.StreamHandler, <-chan []byte) {
	ch := make(chan []byte, 1)
	return func(s network.Stream) {
		b, err := io.ReadAll(s)
		if err != nil {
			t.Errorf("handler: %v", err)
		}
		s.Close()
		ch <- b
	}, ch
}

func TestNewStreamRefusedByIdentify(t *testing.T) {
	a, b := newHost(t), newHost(t)
	b.SetStreamHandler("/served/1.0.0", echo)
	c := connect(t, a, b)
	<-a.Identify().IdentifyWait(c)
	if got, _ := a.Peerstore().SupportsProtocols(b.ID(), "/served/1.0.0"); len(got) != 1 {
		t.Fatalf("identify did not record /served/1.0.0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := a.NewStream(ctx, b.ID(), "/nope/1.0.0")
	if err == nil {
		s.Reset()
	}
	checkRefused(t, "NewStream of a protocol identify did not list", err)

	// A listed protocol is proposed lazily, as before.
	s, err = a.NewStream(ctx, b.ID(), "/served/1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hi"))
	got := make([]byte, 2)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "hi" {
		t.Errorf("echo %q, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestNewStreamMatchHandlerAfterIdentify(t *testing.T) {
	// Identify lists a match handler by its registration name, not by the
	// protocols it accepts: those must still be reachable.
	a, b := newHost(t), newHost(t)
	b.SetStreamHandlerMatch("/match", func(p protocol.ID) bool { return len(p) > 7 && p[:7] == "/match/" }, echo)
	c := connect(t, a, b)
	<-a.Identify().IdentifyWait(c)
	s, err := a.NewStream(context.Background(), b.ID(), "/match/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("m"))
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Errorf("match handler: %v", err)
	}
}

func TestNewStreamWriteOnlyRefused(t *testing.T) {
	// When the host cannot know in advance, a stream that is only written
	// learns of the refusal from Close.
	tests := []struct {
		name string
		// prepare changes b before a connects
		prepare func(t *testing.T, b *p2pnet.Host)
		// whether identify of b ends before NewStream
		identified bool
	}{
		{"identify in progress", func(t *testing.T, b *p2pnet.Host) {
			release := make(chan struct{})
			b.SetStreamHandler(identify.ID, func(s network.Stream) {
				<-release
				s.Reset()
			})
			t.Cleanup(func() { close(release) }) // before the hosts close
		}, false},
		{"peer without identify", func(t *testing.T, b *p2pnet.Host) {
			b.RemoveStreamHandler(identify.ID)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newHost(t), newHost(t)
			tt.prepare(t, b)
			c := connect(t, a, b)
			if tt.identified {
				select {
				case <-a.Identify().IdentifyWait(c):
				case <-time.After(10 * time.Second):
					t.Fatal("identify did not end")
				}
			} else {
				select {
				case <-a.Identify().IdentifyWait(c):
					t.Fatal("identify ended")
				default:
				}
			}
			s, err := a.NewStream(context.Background(), b.ID(), "/nope/1.0.0")
			if err != nil {
				t.Fatalf("NewStream: %v; want a lazy stream", err)
			}
			if _, err := s.Write([]byte("hello")); err != nil {
				t.Fatalf("Write before the answer: %v", err)
			}
			checkRefused(t, "Close", s.Close())
		})
	}
}

func TestNewStreamWriteOnlyAccepted(t *testing.T) {
	// Close waits for the answer, then closes as before: the data arrives.
	payload := bytes.Repeat([]byte("data"), 10000)
	for _, identified := range []bool{false, true} {
		name := "before identify"
		if identified {
			name = "after identify"
		}
		t.Run(name, func(t *testing.T) {
			a, b := newHost(t), newHost(t)
			h, got := received(t)
			b.SetStreamHandler("/sink/1.0.0", h)
			c := connect(t, a, b)
			if identified {
				<-a.Identify().IdentifyWait(c)
			}
			s, err := a.NewStream(context.Background(), b.ID(), "/sink/1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(payload); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case b := <-got:
				if !bytes.Equal(b, payload) {
					t.Errorf("handler read %d bytes, want %d", len(b), len(payload))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("handler did not end")
			}
		})
	}
}

func TestNewStreamAnsweredByIdleHandler(t *testing.T) {
	// The echo of the accepted protocol is written lazily, to share a
	// write with the handler's reply. A handler that neither reads nor
	// writes yet must not leave a dialer that waits for the echo
	// hanging: yamux writes what it holds back within a millisecond.
	a, b := newHost(t), newHost(t)
	held := make(chan network.Stream, 1)
	b.SetStreamHandlerMatch("/idle", func(p protocol.ID) bool { return strings.HasPrefix(string(p), "/idle/") },
		func(s network.Stream) { held <- s })
	c := connect(t, a, b)
	<-a.Identify().IdentifyWait(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Two protocols the peerstore does not list: NewStream negotiates,
	// waiting for the echo, before it returns. The first streams may
	// find other frames (identify, the keepalive's first pings) going
	// out that carry the echo; the later ones find the connection idle.
	for i := range 20 {
		s, err := a.NewStream(ctx, b.ID(), "/idle/one", "/idle/two")
		if err != nil {
			t.Fatalf("NewStream %d: %v", i, err)
		}
		if s.Protocol() != "/idle/one" {
			t.Errorf("negotiated %q, want /idle/one", s.Protocol())
		}
		s.Close()
		(<-held).Close()
	}
}
