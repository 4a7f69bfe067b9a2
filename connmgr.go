package p2pnet

import (
	"fmt"

	"github.com/p2pnet/p2pnet/connmgr"
	"github.com/p2pnet/p2pnet/rcmgr"
)

// connMgrConfig is what ConnectionManager and NoConnectionManager set.
type connMgrConfig struct {
	set, disabled bool
	low, high     int
	opts          []connmgr.Option
}

// ConnectionManager sets the connection manager's watermarks: once more
// than high connections are open, the host closes those of its least
// valuable peers until low remain (see connmgr.Manager; opts set the
// grace and silence periods and the like). When the host's resource
// manager is an rcmgr.Manager, the connection manager also trims when
// that manager's connection or memory use reaches
// connmgr.DefaultPressureThreshold of its limits. Default:
// connmgr.DefaultLowWater (160) and connmgr.DefaultHighWater (192), a
// grace period of one minute and a silence period of 10 s.
func ConnectionManager(low, high int, opts ...connmgr.Option) Option {
	return func(c *config) error {
		if low < 0 || high <= 0 || low > high {
			return fmt.Errorf("p2pnet: ConnectionManager: need 0 <= low (%d) <= high (%d), high > 0", low, high)
		}
		c.connMgr = connMgrConfig{set: true, low: low, high: high, opts: opts}
		return nil
	}
}

// NoConnectionManager runs the host without a connection manager: no
// connection is ever closed to stay under a watermark, and
// Host.ConnManager returns nil.
func NoConnectionManager() Option {
	return func(c *config) error {
		c.connMgr = connMgrConfig{disabled: true}
		return nil
	}
}

// ConnectionGater makes the host ask g before each dial, each address
// dialed, each inbound connection before its handshake, each connection
// after its handshake and each connection once upgraded (see
// connmgr.ConnectionGater); connmgr.BlockList is a ready one. Default:
// none.
func ConnectionGater(g connmgr.ConnectionGater) Option {
	return func(c *config) error {
		if g == nil {
			return fmt.Errorf("p2pnet: ConnectionGater: nil gater")
		}
		c.gater = g
		return nil
	}
}

// ConnManager returns the host's connection manager, with which peers
// are tagged and protected; nil under NoConnectionManager.
func (h *Host) ConnManager() *connmgr.Manager { return h.cm }

// startConnManager builds the connection manager the configuration asks
// for and registers it with the swarm.
func (h *Host) startConnManager() error {
	cc := h.cfg.connMgr
	if cc.disabled {
		return nil
	}
	if !cc.set {
		cc.low, cc.high = connmgr.DefaultLowWater, connmgr.DefaultHighWater
	}
	var opts []connmgr.Option
	if m, ok := h.cfg.rcmgr.(*rcmgr.Manager); ok {
		opts = append(opts, connmgr.WithResourceUsage(rcmgrUsage{m}, 0))
	}
	cm, err := connmgr.New(cc.low, cc.high, append(opts, cc.opts...)...)
	if err != nil {
		return fmt.Errorf("p2pnet: connection manager: %w", err)
	}
	h.cm = cm
	h.swarm.Notify(cm.Notifee())
	return nil
}

// stopConnManager stops the connection manager's goroutine.
func (h *Host) stopConnManager() {
	if h.cm != nil {
		h.swarm.StopNotify(h.cm.Notifee())
		h.cm.Close()
	}
}

// rcmgrUsage is an rcmgr.Manager as the connection manager's
// connmgr.ResourceUsage: the use of its system scope against its limits.
type rcmgrUsage struct{ m *rcmgr.Manager }

func (u rcmgrUsage) ResourcePressure() (conns, memory float64) {
	top := u.m.Summary().Top
	if len(top) == 0 || top[0].Limit == nil {
		return 0, 0
	}
	sys := top[0]
	frac := func(r rcmgr.Resource) float64 {
		if sys.Limit.IsUnlimited(r) || sys.Limit.Get(r) <= 0 {
			return 0
		}
		return float64(rcmgr.Used(sys.Use, r)) / float64(sys.Limit.Get(r))
	}
	conns = max(frac(rcmgr.ResourceConns), frac(rcmgr.ResourceConnsInbound), frac(rcmgr.ResourceConnsOutbound))
	return conns, frac(rcmgr.ResourceMemory)
}
