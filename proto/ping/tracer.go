package ping

import "time"

// Tracer observes the pings a Service answers, for metrics (package
// metrics implements it). Its methods run on the handlers' goroutines and
// must not block.
type Tracer interface {
	// Served follows each ping stream the service served: echoes is the
	// number of payloads echoed, err nil when the dialer ended the
	// stream cleanly.
	Served(echoes int, err error)

	// RoundTrip follows each round trip the Service's Ping and PingOnce
	// made: its time, or why it failed (rtt is zero then).
	RoundTrip(rtt time.Duration, err error)
}

// Option configures a Service.
type Option func(*Service)

// WithTracer makes the service report to t. Default: none.
func WithTracer(t Tracer) Option {
	return func(s *Service) { s.tracer = t }
}
