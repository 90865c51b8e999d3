package rm

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
)

// Defaults for the Client's options.
const (
	DefaultConcurrency   = 16
	DefaultRPCTimeout    = 5 * time.Second
	DefaultActionTimeout = 30 * time.Second
	DefaultRetryBudget   = 30 * time.Second
	DefaultBackoffBase   = 100 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	DefaultMaxBatch      = 256
	DefaultMaxQueued     = 1024
)

type config struct {
	log           *slog.Logger
	clientID      string
	backoff       backoff.Policy
	concurrency   int
	rpcTimeout    time.Duration
	actionTimeout time.Duration
	retryBudget   time.Duration
	maxBatch      int
	maxQueued     int
	// dialOpts and follow: the Client dials the coordinators of a cluster
	// with dialOpts and attaches to each (WithDialOptions, Dial).
	dialOpts []grpc.DialOption
	follow   bool
	// tracerProvider makes the Client's spans (WithTracerProvider).
	tracerProvider trace.TracerProvider
}

// peerDialOptions are the options a coordinator of a cluster (and Dial's
// connection) is dialed with: they carry the RPC spans and W3C trace
// context of the Client's calls (an otelgrpc stats handler).
func (c *config) peerDialOptions() []grpc.DialOption {
	tp := c.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	opts := append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(tracing.ClientHandler(tp)))
	return append(opts, c.dialOpts...)
}

// WithDialOptions gives the gRPC dial options (transport credentials,
// protocol.WithToken, ...) for the connections the Client makes itself:
// Dial's, and one to each coordinator of a cluster on a shared store,
// which the Client learns from the coordinators and attaches to, so that
// whichever drives a global can push its phase two. They come after
// protocol.DialOptions and a default of no transport security. A Client
// made with New and without this option attaches only over the
// connection it was given: enough for one coordinator, not for a
// cluster.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error {
		c.dialOpts = append(c.dialOpts, opts...)
		c.follow = true
		return nil
	}
}

func defaultConfig() config {
	host, _ := os.Hostname()
	if host == "" {
		host = "rm"
	}
	return config{
		log:           slog.New(slog.DiscardHandler),
		clientID:      host + "/" + strconv.Itoa(os.Getpid()),
		backoff:       backoff.Policy{Base: DefaultBackoffBase, Max: DefaultBackoffMax},
		concurrency:   DefaultConcurrency,
		rpcTimeout:    DefaultRPCTimeout,
		actionTimeout: DefaultActionTimeout,
		retryBudget:   DefaultRetryBudget,
		maxBatch:      DefaultMaxBatch,
		maxQueued:     DefaultMaxQueued,
		// The global provider delegates to the one the application sets,
		// even later.
		tracerProvider: otel.GetTracerProvider(),
	}
}

// Option configures a Client. An invalid option does not panic: New
// returns a Client whose every call fails with an error wrapping
// ErrInvalidOption (see (*Client).Err).
type Option func(*config) error

// WithLogger sets the logger (default: discard). Records about one branch
// carry the keys xid, branch_id and resource.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("WithLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithClientID sets the identity the RM declares in its Hello, shown in the
// TC's logs and admin views (default "hostname/pid").
func WithClientID(id string) Option {
	return func(c *config) error {
		if id == "" {
			return fmt.Errorf("WithClientID: empty id")
		}
		c.clientID = id
		return nil
	}
}

// WithBackoff sets the backoff between retries of ReportBranch and
// QueryLocks and between failed attempts to attach (the first re-attach
// after a stream that was up does not wait): about base at first, doubling
// up to max, with jitter (defaults DefaultBackoffBase, DefaultBackoffMax).
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) error {
		if base <= 0 || max < base {
			return fmt.Errorf("WithBackoff(%v, %v): want 0 < base <= max", base, max)
		}
		c.backoff = backoff.Policy{Base: base, Max: max}
		return nil
	}
}

// WithConcurrency sets how many phase-two actions run at once (default
// DefaultConcurrency). When all are busy, actions wait in a queue (see
// WithMaxQueued); the RM keeps reading its stream, so that it notices at
// once when the stream ends.
func WithConcurrency(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithConcurrency(%d): must be positive", n)
		}
		c.concurrency = n
		return nil
	}
}

// WithRPCTimeout sets the deadline of one phase-one RPC attempt when the
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

// WithActionTimeout sets the deadline of the context a Handler gets for one
// phase-two action (default DefaultActionTimeout). A handler that runs out
// of time should return its context's error: the outcome is UNKNOWN and the
// TC retries.
func WithActionTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithActionTimeout(%v): must be positive", d)
		}
		c.actionTimeout = d
		return nil
	}
}

// WithRetryBudget sets how long ReportBranch and QueryLocks, which are safe
// to repeat, keep retrying while the TC is unreachable (default
// DefaultRetryBudget; the caller's context may end them sooner).
func WithRetryBudget(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithRetryBudget(%v): must be positive", d)
		}
		c.retryBudget = d
		return nil
	}
}

// WithMaxQueued sets how many phase-two actions may wait for a worker
// (default DefaultMaxQueued). An action that arrives while the queue is
// full is dropped without an answer: the TC times it out, which is an
// UNKNOWN outcome, and delivers it again after its retry backoff. That is
// the RM's pushback on a TC that sends more than it can run (Status counts
// them in Dropped).
func WithMaxQueued(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxQueued(%d): must be positive", n)
		}
		c.maxQueued = n
		return nil
	}
}

// WithMaxBatch sets the most results sent in one Results message (default
// DefaultMaxBatch).
func WithMaxBatch(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxBatch(%d): must be positive", n)
		}
		c.maxBatch = n
		return nil
	}
}

// WithTracerProvider sets the OpenTelemetry tracer provider of the
// Client's spans (default otel.GetTracerProvider(), the application's;
// xact sets up no exporter of its own): "xact.register_branch" and
// "xact.report_branch" in phase one, "xact.phase_two.commit" and
// "xact.phase_two.rollback" around each phase-two action, and the spans of
// the modes built on the Client (datasource, rm/tcc, rm/saga; see Tracer).
// A phase-two span is a child of the span the TC sends with the action
// (the trace of the global's decision), or a root span carrying the XID
// when the TC has none for it (after a TC restart, for instance).
//
// RegisterBranch and ReportBranch carry their span's W3C trace context to
// the TC over any connection. The connections the Client dials (Dial's, a
// cluster's coordinators') also get an otelgrpc client stats handler with
// tp, for the RPCs' own spans; give a connection for New one too if you
// want those:
//
//	grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(propagation.TraceContext{})))
//
// The TC reads W3C trace context only. A noop provider
// (go.opentelemetry.io/otel/trace/noop) turns the Client's spans off.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) error {
		if tp == nil {
			return fmt.Errorf("WithTracerProvider: nil provider")
		}
		c.tracerProvider = tp
		return nil
	}
}
