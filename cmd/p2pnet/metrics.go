package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves a registry's metrics at /metrics over HTTP, and
// the Go profiler at /debug/pprof when asked.
type metricsServer struct {
	reg  *prometheus.Registry
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// startMetricsServer listens on addr (host:port; port 0 picks one) and
// serves a fresh registry holding the Go runtime's and the process's
// collectors, to which the host adds its own.
func startMetricsServer(addr string, withPprof bool, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s := &metricsServer{reg: reg, ln: ln, done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	attrs := []any{"url", "http://" + ln.Addr().String() + "/metrics"}
	if withPprof {
		attrs = append(attrs, "pprof", "http://"+ln.Addr().String()+"/debug/pprof/")
	}
	log.Info("serving metrics", attrs...)
	return s, nil
}

// close stops serving; nil-safe.
func (s *metricsServer) close() {
	if s == nil {
		return
	}
	s.srv.Close()
	<-s.done
}
