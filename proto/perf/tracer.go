package perf

// Tracer observes the perf runs a Service serves, for metrics (package
// metrics implements it). Its methods run on the handlers' goroutines and
// must not block.
type Tracer interface {
	// Served follows each run served: received is what the client
	// uploaded, sent what we sent it, err nil when the run completed.
	Served(received, sent uint64, err error)
}

// Option configures a Service.
type Option func(*Service)

// WithTracer makes the service report to t. Default: none.
func WithTracer(t Tracer) Option {
	return func(s *Service) { s.tracer = t }
}
