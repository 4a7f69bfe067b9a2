package main

import (
	"encoding/binary"
	"net"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var stunRequest = []byte{0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 3, 0, 4, 0, 0, 0, 6}

// TestSTUNAnswer: a Binding request gets a success response with its
// transaction and the sender's address XORed as RFC 5389 says; anything
// else gets nothing.
func TestSTUNAnswer(t *testing.T) {
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 12), Port: 45437}
	resp, ok := stunAnswer(stunRequest, from)
	if !ok || len(resp) != 32 || binary.BigEndian.Uint16(resp) != 0x0101 || string(resp[4:20]) != string(stunRequest[4:20]) {
		t.Fatalf("answer % x", resp)
	}
	if port := binary.BigEndian.Uint16(resp[26:28]) ^ 0x2112; port != 45437 {
		t.Errorf("port %d", port)
	}
	if ip := binary.BigEndian.Uint32(resp[28:32]) ^ stunMagic; ip != 198<<24|51<<16|100<<8|12 {
		t.Errorf("address %x", ip)
	}
	for _, bad := range [][]byte{nil, stunRequest[:19], append([]byte{1, 1}, stunRequest[2:]...)} {
		if _, ok := stunAnswer(bad, from); ok {
			t.Errorf("answered % x", bad)
		}
	}
}

func FuzzSTUNAnswer(f *testing.F) {
	f.Add(stunRequest)
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, ok := stunAnswer(b, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1})
		if ok && (len(resp) != 32 || string(resp[8:20]) != string(b[8:20])) {
			t.Fatalf("answer % x to % x", resp, b)
		}
	})
}
