package yamux

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// frames concatenates encoded frames for seeds.
func frames(fs ...[]byte) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f...)
	}
	return b
}

func hdr(typ frameType, flags uint16, id, length uint32, payload ...byte) []byte {
	return append(appendHeader(nil, typ, flags, id, length), payload...)
}

func FuzzFrameHeader(f *testing.F) {
	f.Add(hdr(typeData, flagSYN, 1, 5))
	f.Add(hdr(typeWindowUpdate, flagACK|flagFIN, 2, 1<<20))
	f.Add(hdr(typePing, flagSYN, 0, 0xdeadbeef))
	f.Add(hdr(typeGoAway, 0, 0, goAwayProtocolError))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var raw [headerSize]byte
		copy(raw[:], b)
		h, err := parseHeader(&raw)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			if raw[0] == protoVersion && raw[1] <= byte(typeGoAway) {
				t.Fatalf("valid header % x refused: %v", raw, err)
			}
			return
		}
		if raw[0] != protoVersion || raw[1] > byte(typeGoAway) {
			t.Fatalf("invalid header % x accepted", raw)
		}
		if re := appendHeader(nil, h.typ, h.flags, h.streamID, h.length); string(re) != string(raw[:]) {
			t.Fatalf("round trip: % x became % x", raw, re)
		}
	})
}

// FuzzConn feeds arbitrary bytes to a Conn as the remote side's frames. The
// Conn must neither panic nor leak, end once the remote closes, and release
// every reservation.
func FuzzConn(f *testing.F) {
	f.Add(frames(
		hdr(typeWindowUpdate, flagSYN, 1, 0),
		hdr(typeData, 0, 1, 5, []byte("hello")...),
		hdr(typeWindowUpdate, flagFIN, 1, 0),
	), true)
	f.Add(frames(
		hdr(typeData, flagSYN|flagFIN, 2, 3, 'a', 'b', 'c'),
		hdr(typeWindowUpdate, flagACK, 1, 1<<20),
		hdr(typePing, flagSYN, 0, 7),
		hdr(typePing, flagACK, 0, 1),
		hdr(typeData, flagSYN, 4, 1, 'x'),
		hdr(typeWindowUpdate, flagRST, 4, 0),
	), false)
	f.Add(frames(
		hdr(typeWindowUpdate, flagSYN, 1, 0),
		hdr(typeWindowUpdate, flagSYN, 3, 1<<30),
		hdr(typeData, 0, 3, 2, 'h', 'i'),
		hdr(typeWindowUpdate, flagRST, 1, 0),
		hdr(typeGoAway, 0, 0, goAwayNormal),
	), true)
	f.Add(hdr(typeData, flagSYN, 1, initialWindow+1), true)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, true)
	f.Add(hdr(typeData, 0, 9, 4, 1, 2, 3, 4), true)
	f.Add(hdr(typeWindowUpdate, flagSYN, 2, 0), true)
	f.Fuzz(func(t *testing.T, data []byte, isServer bool) {
		a, b := net.Pipe()
		scope := &fakeScope{}
		c, err := DefaultTransport.Wrap(a, isServer, scope)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, b) })
		wg.Go(func() {
			for {
				s, err := c.Accept()
				if err != nil {
					return
				}
				wg.Go(func() {
					// Echo a little, then close.
					io.Copy(s, io.LimitReader(s, 1<<10))
					s.Close()
				})
			}
		})
		b.Write(data) // fails once the Conn gave up on the input
		b.Close()
		wg.Wait()
		c.Close()
		if !c.IsClosed() {
			t.Fatal("Conn not closed")
		}
		if reserved, spans := scope.state(); reserved != 0 || spans != 0 {
			t.Fatalf("%d bytes reserved and %d spans open after Close", reserved, spans)
		}
	})
}
