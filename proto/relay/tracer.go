package relay

import "time"

// Tracer observes a relay Service, for metrics (package metrics
// implements it). Its methods run on the service's goroutines and must
// not block.
type Tracer interface {
	// ReservationGranted follows each reservation granted (a renewal
	// too).
	ReservationGranted()
	// Refused follows each hop request answered with a status other than
	// OK.
	Refused(status Status)
	// CircuitOpened follows the start of a circuit.
	CircuitOpened()
	// CircuitClosed follows its end: relayed is the bytes it carried in
	// both directions, open how long it lasted.
	CircuitClosed(relayed int64, open time.Duration)
}

// WithTracer makes the service report to t. Default: none.
func WithTracer(t Tracer) Option {
	return func(s *Service) error {
		s.tracer = t
		return nil
	}
}
