package yamux

import (
	"context"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/p2pnet/p2pnet/network"
)

// goAwayOf waits for the GoAway frame the Conn sends before closing.
func goAwayOf(t *testing.T, p *rawPeer) uint32 {
	t.Helper()
	for {
		f, ok := p.next()
		if !ok {
			t.Fatal("connection closed without a GoAway")
		}
		if f.typ == typeGoAway {
			return f.length
		}
	}
}

func TestProtocolErrors(t *testing.T) {
	window := make([]byte, initialWindow)
	tests := []struct {
		name string
		send func(p *rawPeer)
		want error
	}{
		{"version", func(p *rawPeer) {
			p.nc.Write([]byte{1, byte(typeData), 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
		}, ErrInvalidVersion},
		{"type", func(p *rawPeer) {
			p.nc.Write([]byte{0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		}, ErrInvalidType},
		{"window exceeded at once", func(p *rawPeer) {
			p.write(typeData, flagSYN, 1, initialWindow+1, append(window, 0))
		}, ErrRecvWindowExceeded},
		{"window exceeded later", func(p *rawPeer) {
			p.write(typeData, flagSYN, 1, initialWindow, window)
			p.write(typeData, 0, 1, 1, []byte{0})
		}, ErrRecvWindowExceeded},
		{"duplicate stream", func(p *rawPeer) {
			p.write(typeWindowUpdate, flagSYN, 1, 0, nil)
			p.write(typeWindowUpdate, flagSYN, 1, 0, nil)
		}, ErrDuplicateStream},
		{"wrong parity", func(p *rawPeer) {
			p.write(typeWindowUpdate, flagSYN, 2, 0, nil)
		}, ErrStreamIDParity},
		{"unknown stream", func(p *rawPeer) {
			p.write(typeData, 0, 7, 3, []byte("abc"))
		}, ErrUnknownStream},
		{"stream frame on ID 0", func(p *rawPeer) {
			p.write(typeWindowUpdate, flagSYN, 0, 0, nil)
		}, ErrUnknownStream},
		{"send window overflow", func(p *rawPeer) {
			p.write(typeWindowUpdate, flagSYN, 1, math.MaxUint32-initialWindow, nil)
			p.write(typeWindowUpdate, 0, 1, 1, nil)
		}, ErrSendWindowOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := newRawPeer(t, nil, true, nil, true)
			go tt.send(p)
			if code := goAwayOf(t, p); code != goAwayProtocolError {
				t.Fatalf("GoAway code %d, want %d", code, goAwayProtocolError)
			}
			// Accept may first return a stream opened before the error.
			var err error
			for err == nil {
				_, err = c.Accept()
			}
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrConnClosed) {
				t.Fatalf("Accept = %v, want %v", err, tt.want)
			}
			if _, ok := p.next(); ok {
				t.Fatal("frames after the GoAway")
			}
		})
	}
}

func TestRemoteGoAway(t *testing.T) {
	c, p := newRawPeer(t, nil, true, nil, true)
	p.mustWrite(typeGoAway, 0, 0, goAwayInternalError, nil)
	_, err := c.Accept()
	var ga *GoAwayError
	if !errors.As(err, &ga) || ga.Code != goAwayInternalError || !errors.Is(err, ErrConnClosed) {
		t.Fatalf("Accept = %v, want GoAway code 2", err)
	}
}

func TestCloseSendsGoAway(t *testing.T) {
	c, p := newRawPeer(t, nil, true, nil, true)
	c.Close()
	if code := goAwayOf(t, p); code != goAwayNormal {
		t.Fatalf("GoAway code %d, want 0", code)
	}
}

func TestPingAnswered(t *testing.T) {
	_, p := newRawPeer(t, nil, true, nil, true)
	p.mustWrite(typePing, flagSYN, 0, 0xdeadbeef, nil)
	for f := range p.frames {
		if f.typ == typePing && f.flags == flagACK {
			if f.length != 0xdeadbeef || f.streamID != 0 {
				t.Fatalf("ping answered with stream %d, value %#x", f.streamID, f.length)
			}
			return
		}
	}
	t.Fatal("ping not answered")
}

func TestOpenAndAcceptFrames(t *testing.T) {
	// Outbound: the first frame is a WindowUpdate with SYN and no credit
	// beyond the initial window; data follows without flags.
	c, p := newRawPeer(t, nil, false, nil, true)
	s, err := c.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagSYN, 1)
	go s.Write([]byte("hi"))
	if f := p.expect(typeData, 0, 1); string(f.payload) != "hi" {
		t.Fatalf("payload %q", f.payload)
	}
	s.CloseWrite()
	p.expect(typeWindowUpdate, flagFIN, 1)
	s2, err := c.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagSYN, 3)
	s2.Reset()
	p.expect(typeWindowUpdate, flagRST, 3)

	// Inbound: the ACK goes out when the stream is accepted.
	p.mustWrite(typeData, flagSYN, 2, 5, []byte("hello"))
	ss, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if f := p.expect(typeWindowUpdate, flagACK, 2); f.length != 0 {
		t.Fatalf("ACK carries %d bytes of credit", f.length)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(ss, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// A bigger initial window is announced with the SYN.
	c2, p2 := newRawPeer(t, &Transport{InitialStreamWindow: 1 << 20}, false, nil, true)
	if _, err := c2.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f := p2.expect(typeWindowUpdate, flagSYN, 1); f.length != 1<<20-initialWindow {
		t.Fatalf("SYN carries %d bytes of credit, want %d", f.length, 1<<20-initialWindow)
	}
}

func TestWindowUpdates(t *testing.T) {
	// The receiver returns credit once half the window is read, in one
	// WindowUpdate. (The window must not grow for this test.)
	c, p := newRawPeer(t, &Transport{MaxStreamWindow: initialWindow}, true, nil, true)
	p.mustWrite(typeData, flagSYN, 1, initialWindow, make([]byte, initialWindow))
	s, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagACK, 1)
	if _, err := io.ReadFull(s, make([]byte, initialWindow/2-1)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if f := p.expect(typeWindowUpdate, 0, 1); f.length != initialWindow/2 {
		t.Fatalf("WindowUpdate of %d, want %d", f.length, initialWindow/2)
	}
	// The sender uses exactly the credit it gets.
	p.mustWrite(typeData, 0, 1, initialWindow/2, make([]byte, initialWindow/2))
	go s.Write(make([]byte, initialWindow+100))
	for sent := 0; sent < initialWindow; {
		f := p.expect(typeData, 0, 1)
		sent += len(f.payload)
		if len(f.payload) > maxFramePayload {
			t.Fatalf("frame of %d bytes", len(f.payload))
		}
	}
	p.mustWrite(typeWindowUpdate, 0, 1, 60, nil)
	if f := p.expect(typeData, 0, 1); len(f.payload) != 60 {
		t.Fatalf("sent %d bytes with 60 bytes of credit", len(f.payload))
	}
	p.mustWrite(typeWindowUpdate, 0, 1, 1000, nil)
	if f := p.expect(typeData, 0, 1); len(f.payload) != 40 {
		t.Fatalf("sent %d bytes, want the last 40", len(f.payload))
	}
}

func TestAcceptBacklog(t *testing.T) {
	c, p := newRawPeer(t, nil, true, nil, true)
	// 256 streams wait for Accept; the 257th is reset.
	for i := range DefaultAcceptBacklog + 1 {
		p.mustWrite(typeWindowUpdate, flagSYN, uint32(2*i+1), 0, nil)
	}
	p.expect(typeWindowUpdate, flagRST, 2*DefaultAcceptBacklog+1)
	// Data for the refused stream is ignored.
	p.mustWrite(typeData, 0, 2*DefaultAcceptBacklog+1, 3, []byte("abc"))
	s, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 1 {
		t.Fatalf("accepted stream %d, want 1", s.ID())
	}
	p.expect(typeWindowUpdate, flagACK, 1)
	// Accepting made room for one more.
	p.mustWrite(typeWindowUpdate, flagSYN, 2*DefaultAcceptBacklog+3, 0, nil)
	// The SYN may not be processed yet: a ping round trip orders it.
	p.mustWrite(typePing, flagSYN, 0, 77, nil)
	for f := range p.frames {
		if f.typ == typePing && f.length == 77 {
			break
		}
	}
	if n := c.NumStreams(); n != DefaultAcceptBacklog+1 {
		t.Fatalf("%d streams, want %d", n, DefaultAcceptBacklog+1)
	}
}

func TestAcceptSkipsResetStreams(t *testing.T) {
	c, p := newRawPeer(t, nil, true, nil, true)
	p.mustWrite(typeWindowUpdate, flagSYN, 1, 0, nil)
	p.mustWrite(typeWindowUpdate, flagRST, 1, 0, nil)
	p.mustWrite(typeWindowUpdate, flagSYN, 3, 0, nil)
	s, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != 3 {
		t.Fatalf("accepted stream %d, want 3", s.ID())
	}
}

func TestMaxIncomingStreams(t *testing.T) {
	c, p := newRawPeer(t, &Transport{MaxIncomingStreams: 2}, true, nil, true)
	for _, id := range []uint32{1, 3, 5} {
		p.mustWrite(typeWindowUpdate, flagSYN, id, 0, nil)
	}
	p.expect(typeWindowUpdate, flagRST, 5)
	s, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Reset()
	p.expect(typeWindowUpdate, flagACK, 1)
	p.expect(typeWindowUpdate, flagRST, 1)
	// A stream ended: there is room for another.
	p.mustWrite(typeWindowUpdate, flagSYN, 7, 0, nil)
	if _, err := c.Accept(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Accept(); err != nil || s.ID() != 7 {
		t.Fatalf("Accept = stream %v, %v; want stream 7", s, err)
	}
}

func TestOpenWaitsForAcks(t *testing.T) {
	c, p := newRawPeer(t, &Transport{AcceptBacklog: 2}, false, nil, true)
	for range 2 {
		if _, err := c.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	opened := make(chan error, 1)
	go func() {
		_, err := c.Open(ctx)
		opened <- err
	}()
	p.expect(typeWindowUpdate, flagSYN, 1)
	p.expect(typeWindowUpdate, flagSYN, 3)
	// An ACK lets the third Open through.
	p.mustWrite(typeWindowUpdate, flagACK, 1, 0, nil)
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagSYN, 5)
	go func() {
		_, err := c.Open(ctx)
		opened <- err
	}()
	cancel()
	if err := <-opened; !errors.Is(err, context.Canceled) {
		t.Fatalf("Open = %v, want context.Canceled", err)
	}
	// A RST also frees a slot.
	p.mustWrite(typeWindowUpdate, flagRST, 3, 0, nil)
	if _, err := c.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestRefusedInboundReservation(t *testing.T) {
	scope := &fakeScope{refuse: func(size int, prio uint8) bool { return prio == network.ReservationPriorityAlways }}
	c, p := newRawPeer(t, nil, true, scope, true)
	p.mustWrite(typeData, flagSYN, 1, 3, []byte("abc"))
	p.expect(typeWindowUpdate, flagRST, 1)
	scope.setRefuse(nil)
	p.mustWrite(typeWindowUpdate, flagSYN, 3, 0, nil)
	if s, err := c.Accept(); err != nil || s.ID() != 3 {
		t.Fatalf("Accept = %v, %v; want stream 3", s, err)
	}
}

func TestRefusedOutboundReservation(t *testing.T) {
	scope := &fakeScope{refuse: func(size int, prio uint8) bool { return true }}
	client, _ := newPair(t, pipeDialer, nil, scope, nil)
	if _, err := client.Open(context.Background()); !errors.Is(err, errRefused) {
		t.Fatalf("Open = %v, want the scope's error", err)
	}
	if reserved, _ := scope.state(); reserved != 0 {
		t.Fatalf("%d bytes reserved", reserved)
	}
}

func TestFrameHeader(t *testing.T) {
	b := appendHeader([]byte{0xff}, typeWindowUpdate, flagSYN|flagACK|flagFIN|flagRST, 0x01020304, 0x05060708)
	want := []byte{0xff, 0, 1, 0, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8}
	if string(b) != string(want) {
		t.Fatalf("appendHeader = % x, want % x", b, want)
	}
	h, err := parseHeader((*[headerSize]byte)(b[1:]))
	if err != nil {
		t.Fatal(err)
	}
	if h != (header{typeWindowUpdate, 0x0f, 0x01020304, 0x05060708}) {
		t.Fatalf("parseHeader = %+v", h)
	}
}

func TestInboundSYNWindow(t *testing.T) {
	// A SYN carrying a WindowUpdate grants credit beyond the initial
	// window, as go-yamux peers configured with larger windows send.
	c, p := newRawPeer(t, nil, true, nil, true)
	const extra = 1 << 20
	p.mustWrite(typeWindowUpdate, flagSYN, 1, extra, nil)
	s, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p.expect(typeWindowUpdate, flagACK, 1)
	go s.Write(make([]byte, initialWindow+extra+1))
	sent := 0
	for sent < initialWindow+extra {
		sent += len(p.expect(typeData, 0, 1).payload)
	}
	if sent != initialWindow+extra {
		t.Fatalf("sent %d bytes, window %d", sent, initialWindow+extra)
	}
	s.Reset()
	p.expect(typeWindowUpdate, flagRST, 1)
}
