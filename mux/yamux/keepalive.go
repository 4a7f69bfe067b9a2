package yamux

import "time"

// The keepalive: pings when the connection starts, to measure its RTT
// early (window growth depends on its minimum: rttSamples pings, each
// sent when the previous one is answered, so that one slowed by the
// connection's setup does not count alone), then one every
// KeepAliveInterval.
// One timer does it all; it is armed for PingTimeout while a ping is
// unanswered and for the next ping otherwise. No goroutine waits.

// rttSamples is how many pings a connection sends at its start.
const rttSamples = 4

func (c *Conn) startKeepAlive() {
	c.pingMu.Lock()
	c.pingTimer = time.AfterFunc(c.cfg.pingTimeout, c.keepAliveFired)
	c.pingMu.Unlock()
	c.sendPing()
}

func (c *Conn) stopKeepAlive() {
	c.pingMu.Lock()
	c.pingStopped = true
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	c.pingMu.Unlock()
}

// sendPing queues a ping and arms the timer for its timeout.
func (c *Conn) sendPing() {
	c.pingMu.Lock()
	if c.pingStopped {
		c.pingMu.Unlock()
		return
	}
	c.pingID++
	id := c.pingID
	c.pingSent = time.Now()
	c.pingOutstanding = true
	c.pingTimer.Reset(c.cfg.pingTimeout)
	c.pingMu.Unlock()
	_ = c.queueFrame(typePing, flagSYN, 0, id) // fails only when closing
}

// handlePong records the answer to the outstanding ping: the RTT sample is
// averaged with the previous estimate and kept if it is the smallest yet,
// and the next ping is scheduled KeepAliveInterval after this one was
// sent.
func (c *Conn) handlePong(id uint32) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingStopped || !c.pingOutstanding || id != c.pingID {
		return
	}
	c.pingOutstanding = false
	now := time.Now()
	rtt := now.Sub(c.pingSent)
	// The minimum is what window growth compares with: a ping queued
	// behind bulk data measures the queue, not the path. A sample of 0
	// (a clock that did not move) counts as 1 ns, so "measured" stays
	// distinguishable from "not yet".
	if m := c.minRTT.Load(); m == 0 || int64(rtt) < m {
		c.minRTT.Store(max(int64(rtt), 1))
	}
	if prev := time.Duration(c.rtt.Load()); prev > 0 {
		rtt = (prev + rtt) / 2
	}
	c.rtt.Store(int64(rtt))
	c.rttSamples++
	if c.rttSamples < rttSamples {
		// Another early sample, sent from the timer's goroutine, as
		// sendPing takes pingMu.
		c.pingTimer.Reset(0)
		return
	}
	if c.cfg.keepAliveInterval > 0 {
		c.pingTimer.Reset(c.pingSent.Add(c.cfg.keepAliveInterval).Sub(now))
	} else {
		c.pingTimer.Stop()
	}
}

// keepAliveFired runs on the timer: it closes the connection if the ping
// is still unanswered, and sends the next ping otherwise.
func (c *Conn) keepAliveFired() {
	c.pingMu.Lock()
	if c.pingStopped {
		c.pingMu.Unlock()
		return
	}
	since := time.Since(c.pingSent)
	if c.pingOutstanding {
		c.pingMu.Unlock()
		if since >= c.cfg.pingTimeout {
			c.closeWithError(ErrKeepAliveTimeout)
		}
		return
	}
	early := c.rttSamples < rttSamples
	c.pingMu.Unlock()
	if early || c.cfg.keepAliveInterval > 0 && since >= c.cfg.keepAliveInterval {
		c.sendPing()
	}
}
