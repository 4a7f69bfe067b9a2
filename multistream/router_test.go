package multistream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/p2pnet/p2pnet/protocol"
)

func TestRouterRegistrations(t *testing.T) {
	var r Router[string]
	if got := r.Protocols(); len(got) != 0 {
		t.Fatalf("zero Router has protocols %q", got)
	}
	r.AddHandler("/b", "b")
	r.AddHandlerMatch("/a", func(protocol.ID) bool { return true }, "a")
	r.AddHandler("/c", "c")
	if got, want := r.Protocols(), []protocol.ID{"/a", "/b", "/c"}; !slices.Equal(got, want) {
		t.Fatalf("Protocols = %q, want %q", got, want)
	}

	// Registering under a taken ID replaces the registration, whatever its
	// kind.
	r.AddHandler("/a", "a-exact")
	r.AddHandlerMatch("/b", func(id protocol.ID) bool { return id == "/b" }, "b-match")
	if got, want := r.Protocols(), []protocol.ID{"/a", "/b", "/c"}; !slices.Equal(got, want) {
		t.Fatalf("after replacing, Protocols = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		id   protocol.ID
		want string
	}{{"/a", "a-exact"}, {"/b", "b-match"}, {"/c", "c"}} {
		if id, h, ok := r.lookup([]byte(tt.id)); !ok || id != tt.id || h != tt.want {
			t.Errorf("lookup(%q) = %q, %q, %v; want %q", tt.id, id, h, ok, tt.want)
		}
	}

	r.RemoveHandler("/a")
	r.RemoveHandler("/b")
	r.RemoveHandler("/nothing")
	if got, want := r.Protocols(), []protocol.ID{"/c"}; !slices.Equal(got, want) {
		t.Fatalf("after removing, Protocols = %q, want %q", got, want)
	}
	for _, id := range []string{"/a", "/b"} {
		if _, _, ok := r.lookup([]byte(id)); ok {
			t.Errorf("lookup(%q) found a removed handler", id)
		}
	}
}

func TestRouterPanicsOnInvalidID(t *testing.T) {
	for _, id := range []protocol.ID{"", "na", "ls", ProtocolID, "/a\nb"} {
		for name, add := range map[string]func(){
			"AddHandler":      func() { NewRouter[int]().AddHandler(id, 1) },
			"AddHandlerMatch": func() { NewRouter[int]().AddHandlerMatch(id, func(protocol.ID) bool { return true }, 1) },
		} {
			func() {
				defer func() {
					err, _ := recover().(error)
					if !errors.Is(err, ErrInvalidProtocol) {
						t.Errorf("%s(%q) panicked with %v, want ErrInvalidProtocol", name, id, err)
					}
				}()
				add()
			}()
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AddHandlerMatch with a nil match function did not panic")
		}
	}()
	NewRouter[int]().AddHandlerMatch("/a", nil, 1)
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		proposal protocol.ID
		handler  string // "" for unsupported
	}{
		{"/ipfs/ping/1.0.0", "ping"},
		{"/echo/1.0.0", "echo-exact"}, // exact wins over the matchers
		{"/echo/1.5.0", "echo-match"}, // first registered matcher wins
		{"/echo/2.0.0", "echo-any"},
		{"/unknown/1.0.0", ""},
	}
	forEachConn(t, func(t *testing.T, ct connType) {
		for _, tt := range tests {
			t.Run(string(tt.proposal), func(t *testing.T) {
				d, l := ct.pair(t)
				rd, rl := record(d), record(l)
				res := negotiateAsync(testRouter(), rl)
				err := SelectProtoOrFail(tt.proposal, rd)

				if tt.handler == "" {
					var nse *NotSupportedError
					if !errors.Is(err, ErrNotSupported) || !errors.As(err, &nse) ||
						!slices.Equal(nse.Protocols, []protocol.ID{tt.proposal}) {
						t.Fatalf("SelectProtoOrFail error = %v, want not supported %q", err, tt.proposal)
					}
					d.Close()
					if r := <-res; r.err == nil {
						t.Errorf("Negotiate succeeded with %q after the dialer left", r.id)
					}
				} else {
					if err != nil {
						t.Fatalf("SelectProtoOrFail: %v", err)
					}
					r := <-res
					if r.err != nil || r.id != tt.proposal || r.h != tt.handler {
						t.Fatalf("Negotiate = %q, %q, %v; want %q, %q", r.id, r.h, r.err, tt.proposal, tt.handler)
					}
				}

				// One write each way: header and proposal, header and answer.
				if got, want := rd.Writes(), [][]byte{wire(ProtocolID, string(tt.proposal))}; !equalWrites(got, want) {
					t.Errorf("dialer wrote %q, want %q", got, want)
				}
				answer := string(tt.proposal)
				if tt.handler == "" {
					answer = "na"
				}
				if got, want := rl.Writes(), [][]byte{wire(ProtocolID, answer)}; !equalWrites(got, want) {
					t.Errorf("listener wrote %q, want %q", got, want)
				}
			})
		}
	})
}

func equalWrites(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

func TestNegotiateZeroRouter(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		var r Router[string]
		res := negotiateAsync(&r, l)
		if err := SelectProtoOrFail("/a", d); !errors.Is(err, ErrNotSupported) {
			t.Errorf("SelectProtoOrFail error = %v, want ErrNotSupported", err)
		}
		d.Close()
		if r := <-res; r.err == nil {
			t.Error("Negotiate succeeded after the dialer left")
		}
	})
}

func TestNegotiateList(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		r := testRouter()
		res := negotiateAsync(r, l)
		if _, err := d.Write(wire(ProtocolID, "ls")); err != nil {
			t.Fatal(err)
		}
		if got := readMsg(t, d); got != ProtocolID {
			t.Fatalf("header = %q", got)
		}
		// The answer is one message holding a message per protocol and a
		// final '\n'.
		var want []byte
		for _, id := range r.Protocols() {
			want = appendMessage(want, string(id))
		}
		if got := readMsg(t, d); got != string(want) {
			t.Fatalf("ls answer = %q, want %q", got, want)
		}

		// Negotiation goes on after "ls".
		if _, err := d.Write(wire("/echo/1.0.0")); err != nil {
			t.Fatal(err)
		}
		if got := readMsg(t, d); got != "/echo/1.0.0" {
			t.Fatalf("answer = %q, want the echo", got)
		}
		if r := <-res; r.err != nil || r.h != "echo-exact" {
			t.Fatalf("Negotiate = %q, %q, %v", r.id, r.h, r.err)
		}
	})
}

func TestNegotiateListEmpty(t *testing.T) {
	var r Router[int]
	out := r.appendList(nil)
	if want := []byte{0x01, '\n'}; !bytes.Equal(out, want) {
		t.Errorf("empty ls answer = %x, want %x", out, want)
	}
}

func TestNegotiateRefusesInvalidProposals(t *testing.T) {
	// Even a handler that accepts anything never sees a proposal that
	// could not be a protocol ID.
	proposals := []string{"na", ProtocolID, "", "/a\nb", "/bad\xff"}
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		var r Router[string]
		r.AddHandlerMatch("/any", func(id protocol.ID) bool { return true }, "any")
		res := negotiateAsync(&r, l)
		for i, p := range proposals {
			msgs := []string{p}
			if i == 0 {
				msgs = []string{ProtocolID, p}
			}
			if _, err := d.Write(wire(msgs...)); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				readMsg(t, d)
			}
			if got := readMsg(t, d); got != "na" {
				t.Fatalf("answer to %q = %q, want na", p, got)
			}
		}
		d.Close()
		if r := <-res; r.err == nil {
			t.Errorf("Negotiate accepted %q", r.id)
		}
	})
}

func TestNegotiateHeaderMismatch(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		rl := record(l)
		writeAsync(t, d, wire("/multistream/2.0.0", "/ipfs/ping/1.0.0"))
		_, _, err := testRouter().Negotiate(rl)
		if !errors.Is(err, ErrHeaderMismatch) {
			t.Fatalf("Negotiate error = %v, want ErrHeaderMismatch", err)
		}
		if w := rl.Writes(); len(w) != 0 {
			t.Errorf("listener wrote %q to a dialer with the wrong header", w)
		}
	})
}

func TestNegotiateBadInput(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		// A length of about 2^35: refused after two bytes, nothing
		// allocated for it.
		{"huge length", append(wire(ProtocolID), 0xff, 0xff, 0xff, 0xff, 0x7f), ErrTooLarge},
		{"one too large", append(wire(ProtocolID), 0x81, 0x08), ErrTooLarge},
		{"truncated header", wire(ProtocolID)[:8], io.ErrUnexpectedEOF},
		{"truncated proposal", wire(ProtocolID, "/ipfs/ping/1.0.0")[:30], io.ErrUnexpectedEOF},
		{"truncated length", append(wire(ProtocolID), 0x80), io.ErrUnexpectedEOF},
		{"no newline", append(wire(ProtocolID), "\x03abc"...), ErrMalformed},
		{"header without newline", []byte("\x03abc"), ErrMalformed},
		{"empty message", append(wire(ProtocolID), 0x00), ErrMalformed},
		{"non-minimal length", append(wire(ProtocolID), 0x83, 0x00), ErrMalformed},
		{"dialer leaves", nil, io.ErrUnexpectedEOF},
	}
	forEachConn(t, func(t *testing.T, ct connType) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, l := ct.pair(t)
				done := make(chan error, 1)
				go func() {
					_, err := d.Write(tt.in)
					if err == nil {
						err = closeWrite(d)
					}
					done <- err
				}()
				t.Cleanup(func() {
					l.Close()
					<-done
				})
				_, _, err := testRouter().Negotiate(l)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Negotiate error = %v, want %v", err, tt.wantErr)
				}
			})
		}
	})
}

func TestNegotiateTooManyRounds(t *testing.T) {
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		res := negotiateAsync(testRouter(), l)
		for i := range MaxRounds {
			msgs := []string{fmt.Sprintf("/nope/%d", i)}
			if i%2 == 1 {
				msgs[0] = "ls" // "ls" counts as a round too
			}
			if i == 0 {
				msgs = append([]string{ProtocolID}, msgs...)
			}
			if _, err := d.Write(wire(msgs...)); err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			if i == 0 {
				readMsg(t, d)
			}
			if got := readMsg(t, d); i%2 == 0 && got != "na" {
				t.Fatalf("round %d: answer %q, want na", i, got)
			}
		}
		r := <-res
		if !errors.Is(r.err, ErrTooManyRounds) {
			t.Fatalf("Negotiate = %q, %v; want ErrTooManyRounds", r.id, r.err)
		}
		// The listener answered nothing more: the dialer's next read sees
		// the stream end once the listener's owner closes it.
		l.Close()
		if _, err := d.Read(make([]byte, 1)); err == nil {
			t.Error("listener answered after giving up")
		}
	})
}

func TestNegotiateIgnoresEchoWriteError(t *testing.T) {
	// A dialer may propose, send data and close before the echo: the
	// handler still gets the stream.
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		res := negotiateAsync(testRouter(), l)
		if _, err := d.Write(wire(ProtocolID, "/ipfs/ping/1.0.0")); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if r := <-res; r.err != nil || r.h != "ping" {
			t.Fatalf("Negotiate = %q, %q, %v; want ping", r.id, r.h, r.err)
		}
	})
}

func TestNegotiateMatchMayUseRouter(t *testing.T) {
	// A match function runs without the Router's lock held.
	var r Router[string]
	r.AddHandlerMatch("/dyn", func(id protocol.ID) bool {
		r.AddHandler(id, "added") // would deadlock under the lock
		return strings.HasPrefix(string(id), "/dyn")
	}, "dyn")
	forEachConn(t, func(t *testing.T, ct connType) {
		d, l := ct.pair(t)
		res := negotiateAsync(&r, l)
		if err := SelectProtoOrFail("/dyn/"+protocol.ID(ct.name), d); err != nil {
			t.Fatal(err)
		}
		if r := <-res; r.err != nil || r.h != "dyn" {
			t.Fatalf("Negotiate = %q, %q, %v", r.id, r.h, r.err)
		}
	})
}

func TestRouterConcurrentUse(t *testing.T) {
	// Negotiations run while handlers come and go (for the race detector).
	r := testRouter()
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := protocol.ID(fmt.Sprintf("/tmp/%d", i%4))
			r.AddHandler(id, "tmp")
			r.AddHandlerMatch(id+"/m", func(protocol.ID) bool { return false }, "m")
			_ = r.Protocols()
			r.RemoveHandler(id)
		}
	})
	var negotiators sync.WaitGroup
	for range 4 {
		negotiators.Go(func() {
			for range 20 {
				d, l := net.Pipe()
				res := negotiateAsync(r, l)
				if err := SelectProtoOrFail("/echo/1.2.3", d); err != nil {
					t.Error(err)
				}
				if n := <-res; n.err != nil || n.h != "echo-match" {
					t.Errorf("Negotiate = %q, %q, %v", n.id, n.h, n.err)
				}
				d.Close()
				l.Close()
			}
		})
	}
	negotiators.Wait()
	close(stop)
	churn.Wait()
}

// lazyRW is an in-memory stream that tells Write and WriteLazy apart.
type lazyRW struct {
	in          io.Reader
	writes      [][]byte
	lazy        [][]byte
	failWriting bool
}

func (l *lazyRW) Read(b []byte) (int, error) { return l.in.Read(b) }

func (l *lazyRW) Write(b []byte) (int, error) {
	l.writes = append(l.writes, bytes.Clone(b))
	return len(b), nil
}

func (l *lazyRW) WriteLazy(b []byte) (int, error) {
	l.lazy = append(l.lazy, bytes.Clone(b))
	if l.failWriting {
		return 0, errors.New("stream reset")
	}
	return len(b), nil
}

func TestNegotiateEchoesLazily(t *testing.T) {
	// Refusals are written at once (the dialer waits for them); only the
	// echo of the accepted protocol, which the handler's reply can carry,
	// is written lazily. A failing lazy write is ignored like a failing
	// echo.
	for _, fail := range []bool{false, true} {
		rw := &lazyRW{
			in:          bytes.NewReader(wire(ProtocolID, "/unknown/1.0.0", "/ipfs/ping/1.0.0")),
			failWriting: fail,
		}
		id, h, err := testRouter().Negotiate(rw)
		if err != nil || id != "/ipfs/ping/1.0.0" || h != "ping" {
			t.Fatalf("Negotiate = %q, %q, %v", id, h, err)
		}
		if want := [][]byte{wire(ProtocolID, "na")}; !equalWrites(rw.writes, want) {
			t.Errorf("written at once: %q, want %q", rw.writes, want)
		}
		if want := [][]byte{wire("/ipfs/ping/1.0.0")}; !equalWrites(rw.lazy, want) {
			t.Errorf("written lazily: %q, want %q", rw.lazy, want)
		}
	}
}
