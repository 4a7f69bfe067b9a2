// Package stacks builds the same scenario over p2pnet and over go-libp2p
// v0.51.0: hosts on loopback speaking one security protocol (or QUIC),
// a connected pair of them with the benchmark handlers, idle
// connections, a link with a real round-trip time, and the bare
// transports (TCP, crypto/tls, quic-go) that bound what either stack
// can reach. The interop module's benchmarks and cmd/versus share it.
//
// It may import p2pnet's packages, go-libp2p and quic-go; nothing in
// the main module imports it.
package stacks

import (
	"fmt"
	"io"

	"github.com/p2pnet/p2pnet"
	"github.com/p2pnet/p2pnet/rcmgr"
	"github.com/p2pnet/p2pnet/sec/noise"
	"github.com/p2pnet/p2pnet/sec/tls"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// The benchmark protocols every pair serves.
const (
	SinkID = "/bench/sink/1.0.0" // reads to EOF, then answers one byte
	EchoID = "/bench/echo/1.0.0" // echoes one byte and closes
)

// Stacks are the connection kinds a pair can be built over: TCP with
// Noise or TLS (and yamux), and QUIC.
var Stacks = []string{"noise", "tls", "quic"}

// Sink reads a stream to its end and answers one byte.
func Sink(s io.ReadWriteCloser) {
	io.Copy(io.Discard, s)
	s.Write([]byte{1})
	s.Close()
}

// EchoOne answers one byte with the same byte.
func EchoOne(s io.ReadWriteCloser) {
	b := make([]byte, 1)
	if _, err := io.ReadFull(s, b); err == nil {
		s.Write(b)
	}
	s.Close()
}

// Stream is what the scenarios need of a stream of either stack.
type Stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// RoundTrip sends one byte on s, waits for it to come back and closes s.
func RoundTrip(s Stream) error {
	if _, err := s.Write([]byte{7}); err != nil {
		s.Close()
		return err
	}
	_, err := io.ReadFull(s, make([]byte, 1))
	s.Close()
	return err
}

// closers closes what was opened, last first.
type closers []func()

func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// listenAddrs are the loopback addresses a host of the stack listens on.
func listenAddrs(stack string) ([]string, error) {
	switch stack {
	case "noise", "tls":
		return []string{"/ip4/127.0.0.1/tcp/0"}, nil
	case "quic":
		return []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, nil
	}
	return nil, fmt.Errorf("stacks: unknown stack %q", stack)
}

// OurHost is a p2pnet host on loopback for the stack (noise, tls or
// quic), without resource limits (go-libp2p's hosts here run with its
// null resource manager) and with the perf service. The function returned
// closes the host and its resource manager.
func OurHost(stack string) (*p2pnet.Host, func(), error) {
	listen, err := listenAddrs(stack)
	if err != nil {
		return nil, nil, err
	}
	rm, err := rcmgr.New(rcmgr.UnlimitedLimits())
	if err != nil {
		return nil, nil, err
	}
	opts := []p2pnet.Option{
		p2pnet.ListenAddrStrings(listen...),
		p2pnet.UserAgent("p2pnet-versus"),
		p2pnet.ResourceManager(rm),
		p2pnet.EnablePerf(),
	}
	switch stack {
	case "noise":
		opts = append(opts, p2pnet.Security(noise.ID))
	case "tls":
		opts = append(opts, p2pnet.Security(tls.ID))
	}
	h, err := p2pnet.New(opts...)
	if err != nil {
		rm.Close()
		return nil, nil, err
	}
	return h, func() { h.Close(); rm.Close() }, nil
}

// GoHost is a go-libp2p host on loopback for the stack (noise, tls or
// quic), with yamux and the null resource manager.
func GoHost(stack string) (lphost.Host, error) {
	listen, err := listenAddrs(stack)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(listen...),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		// go-libp2p's default limits allow 64 inbound streams per
		// protocol and peer; the scenarios run more.
		libp2p.ResourceManager(&lpnetwork.NullResourceManager{}),
	}
	switch stack {
	case "noise":
		opts = append(opts, libp2p.Transport(lptcp.NewTCPTransport), libp2p.Security(lpnoise.ID, lpnoise.New))
	case "tls":
		opts = append(opts, libp2p.Transport(lptcp.NewTCPTransport), libp2p.Security(lptls.ID, lptls.New))
	case "quic":
		opts = append(opts, libp2p.Transport(libp2pquic.NewTransport))
	}
	return libp2p.New(opts...)
}
