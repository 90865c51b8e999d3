package tm

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/backoff"
)

// Defaults for the Manager's options.
const (
	DefaultRPCTimeout      = 5 * time.Second
	DefaultDecisionTimeout = 30 * time.Second
	DefaultDecisionAttempt = 10 * time.Second
	DefaultBackoffBase     = 50 * time.Millisecond
	DefaultBackoffMax      = 2 * time.Second
)

type config struct {
	log             *slog.Logger
	defaultTimeout  time.Duration
	rpcTimeout      time.Duration
	decisionTimeout time.Duration
	decisionAttempt time.Duration
	backoff         backoff.Policy
	dialOpts        []grpc.DialOption
	tracerProvider  trace.TracerProvider
}

func defaultConfig() config {
	return config{
		log:             slog.New(slog.DiscardHandler),
		rpcTimeout:      DefaultRPCTimeout,
		decisionTimeout: DefaultDecisionTimeout,
		decisionAttempt: DefaultDecisionAttempt,
		backoff:         backoff.Policy{Base: DefaultBackoffBase, Max: DefaultBackoffMax},
		tracerProvider:  otel.GetTracerProvider(),
	}
}

// Option configures a Manager. An invalid option does not panic: New
// returns a Manager whose every call fails with an error wrapping
// ErrInvalidOption (see (*Manager).Err).
type Option func(*config) error

// WithLogger sets the logger (default: discard). Records carry the key xid.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("WithLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithDefaultTimeout sets the global transaction timeout used when Begin or
// Do is given 0. The default, 0, lets the TC choose.
func WithDefaultTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WithDefaultTimeout(%v): negative", d)
		}
		c.defaultTimeout = d
		return nil
	}
}

// WithRPCTimeout sets the deadline of one Begin or Status attempt when the
// caller's context has no earlier one (default DefaultRPCTimeout).
func WithRPCTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithRPCTimeout(%v): must be positive", d)
		}
		c.rpcTimeout = d
		return nil
	}
}

// WithDecisionTimeout sets how long Commit and Rollback keep retrying while
// the outcome is unknown before they give up with ErrUnknownOutcome
// (default DefaultDecisionTimeout). It is independent of the caller's
// context: a cancelled caller must not leave a decision half asked.
func WithDecisionTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithDecisionTimeout(%v): must be positive", d)
		}
		c.decisionTimeout = d
		return nil
	}
}

// WithDecisionAttemptTimeout sets the deadline of one Commit or Rollback
// attempt (default DefaultDecisionAttempt; the decision timeout caps it).
// The TC holds a decision request until phase two ends, DecisionWait (5s
// by default) passes, or just before this deadline, and then answers with
// the decision's current status.
func WithDecisionAttemptTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithDecisionAttemptTimeout(%v): must be positive", d)
		}
		c.decisionAttempt = d
		return nil
	}
}

// WithBackoff sets the retry backoff of Commit and Rollback: the first
// wait is about base, doubling up to max, with jitter (defaults
// DefaultBackoffBase, DefaultBackoffMax).
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) error {
		if base <= 0 || max < base {
			return fmt.Errorf("WithBackoff(%v, %v): want 0 < base <= max", base, max)
		}
		c.backoff = backoff.Policy{Base: base, Max: max}
		return nil
	}
}

// WithDialOptions adds gRPC dial options used by Dial (transport
// credentials, protocol.WithToken, interceptors, ...). New ignores them.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error {
		c.dialOpts = append(c.dialOpts, opts...)
		return nil
	}
}

// WithTracerProvider sets the OpenTelemetry tracer provider of the
// Manager's spans (default otel.GetTracerProvider(), the application's;
// xact sets up no exporter of its own). The requests that name a global
// (Begin, Commit, Rollback) carry their span's W3C trace context, which
// the TC keeps for the global's phase two. Dial's connection also gets an
// otelgrpc client stats handler with tp, for the RPCs' own spans; give a
// connection for New one too if you want those:
//
//	grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(propagation.TraceContext{})))
//
// The TC reads W3C trace context only. A noop provider
// (go.opentelemetry.io/otel/trace/noop) turns the Manager's spans off.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) error {
		if tp == nil {
			return fmt.Errorf("WithTracerProvider: nil provider")
		}
		c.tracerProvider = tp
		return nil
	}
}
