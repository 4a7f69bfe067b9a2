package stacks

import (
	"net"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// DelayProxy forwards TCP connections to a target, delaying every byte
// by a one-way delay in each direction, so a round trip costs twice that:
// a link with a real round-trip time, on loopback. (The TCP handshake
// itself is not delayed: the proxy accepts at once.)
type DelayProxy struct {
	l      net.Listener
	target string
	oneWay time.Duration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// NewDelayProxy listens on loopback and forwards to target with the
// one-way delay; it returns the proxy and the address to dial.
func NewDelayProxy(target ma.Multiaddr, oneWay time.Duration) (*DelayProxy, ma.Multiaddr, error) {
	_, hostport, err := manet.DialArgs(target)
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	p := &DelayProxy{l: l, target: hostport, oneWay: oneWay}
	p.wg.Add(1)
	go p.serve()
	addr, err := manet.FromNetAddr(l.Addr())
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, addr, nil
}

func (p *DelayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		t, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, t)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(c, t)
		go p.pump(t, c)
	}
}

// pump copies src to dst, each chunk oneWay after it was read.
func (p *DelayProxy) pump(src, dst net.Conn) {
	defer p.wg.Done()
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			// Simulated link latency: this sleep is the thing measured,
			// not a stand-in for synchronisation.
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				// Drain, so the reader never blocks on a full queue.
				for range q {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{buf[:n], time.Now().Add(p.oneWay)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}

// Close stops the proxy, closes its connections and waits for its
// goroutines.
func (p *DelayProxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
