package noise

import (
	"context"
	"io"
	"net"
	"testing"

	ic "github.com/p2pnet/p2pnet/crypto"
)

func BenchmarkHandshake(b *testing.B) {
	initiator := newTransport(b, ic.Ed25519, yamux)
	responder := newTransport(b, ic.Ed25519, yamux)
	b.ReportAllocs()
	for b.Loop() {
		client, server := net.Pipe()
		r := runHandshake(context.Background(), client, server, initiator, responder, responder.localID, "")
		if r.outErr != nil || r.inErr != nil {
			b.Fatalf("outbound %v, inbound %v", r.outErr, r.inErr)
		}
		r.out.Close()
		r.in.Close()
	}
}

// BenchmarkThroughput writes 1 MiB per operation over loopback TCP while
// another goroutine reads.
func BenchmarkThroughput(b *testing.B) {
	out, in := securePair(b, connPair{"tcp", tcpPair}, newTransport(b, ic.Ed25519), newTransport(b, ic.Ed25519))
	const size = 1 << 20
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		_, err := io.CopyBuffer(io.Discard, onlyReader{in}, buf)
		done <- err
	}()
	data := make([]byte, size)
	// Warm up the pools.
	if _, err := out.Write(data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := out.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	out.Close()
	<-done
}

// onlyReader hides every method but Read, so that io.CopyBuffer uses the
// buffer it is given.
type onlyReader struct{ r io.Reader }

func (r onlyReader) Read(p []byte) (int, error) { return r.r.Read(p) }
