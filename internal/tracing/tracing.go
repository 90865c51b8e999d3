// Package tracing holds what xact's packages share to put a global
// transaction into one OpenTelemetry trace: the attribute keys every span
// carries, the carrier of the W3C trace context on xact's own hops, and
// the otelgrpc stats handlers of the connections xact makes.
//
// xact's hops (a TM or RM to the TC, the TC's phase-two actions to an RM,
// and the XID helpers of tm between services) always carry W3C trace
// context (propagation.TraceContext): the TC reads nothing else, and the
// global default propagator is a no-op until an application sets one.
//
//	ctx, span := tracer.Start(ctx, "xact.register_branch", trace.WithAttributes(tracing.XID(xid)))
//	defer tracing.End(span, err)
package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/xact-io/xact/protocol/xactpb"
)

// Attribute keys of xact's spans.
const (
	KeyXID      = attribute.Key("xact.xid")
	KeyBranchID = attribute.Key("xact.branch_id")
	KeyResource = attribute.Key("xact.resource")
	KeyMode     = attribute.Key("xact.mode")
	KeyName     = attribute.Key("xact.name")      // a global transaction's name
	KeyStatus   = attribute.Key("xact.status")    // the global status a decision answered
	KeyOutcome  = attribute.Key("xact.outcome")   // a phase-two action's outcome
	KeyLockKeys = attribute.Key("xact.lock_keys") // how many row keys a branch locks
)

// XID is the attribute naming a span's global transaction.
func XID(xid string) attribute.KeyValue { return KeyXID.String(xid) }

// BranchID is the attribute naming a span's branch.
func BranchID(id int64) attribute.KeyValue { return KeyBranchID.Int64(id) }

// Resource is the attribute naming a branch's resource.
func Resource(r string) attribute.KeyValue { return KeyResource.String(r) }

// Mode is the attribute naming a branch's mode: AT, TCC, SAGA or XA.
func Mode(t xactpb.BranchType) attribute.KeyValue {
	return KeyMode.String(strings.TrimPrefix(t.String(), "BRANCH_TYPE_"))
}

// Propagator is the propagator of xact's hops: W3C trace context.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// defaultProvider is the global tracer provider before an application
// sets one: it records nothing until then.
var defaultProvider = otel.GetTracerProvider()

// Off reports whether tp surely records nothing and forwards no trace
// context: it is the global provider and the application has set none
// (yet). Spans are then not even started, so that xact costs next to
// nothing without tracing. It is two pointer comparisons.
func Off(tp trace.TracerProvider) bool {
	return tp == defaultProvider && otel.GetTracerProvider() == defaultProvider
}

// Tracer makes the spans of one package from a tracer provider.
type Tracer struct {
	tp trace.TracerProvider
	t  trace.Tracer
}

// NewTracer returns the Tracer of the package named scope (its import
// path) from tp.
func NewTracer(tp trace.TracerProvider, scope string) Tracer {
	return Tracer{tp: tp, t: tp.Tracer(scope)}
}

// Start starts a span as trace.Tracer.Start does, unless the provider is
// Off (or t is the zero Tracer), or ctx's span is a valid one that was not
// sampled: then it returns ctx, whose trace context goes on as it is, and
// a no-op span. (A trace sampled out at its root is not recorded further
// down either, as with the usual parent-based samplers, at no cost.) Set
// attributes after Start, when span.IsRecording(), so that nothing is
// built for a span that records nothing.
func (t Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t.t == nil || Off(t.tp) {
		return ctx, noop.Span{}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !sc.IsSampled() && !newRoot(opts) {
		return ctx, noop.Span{}
	}
	return t.t.Start(ctx, name, opts...)
}

// newRoot reports whether opts ask for a new root span.
func newRoot(opts []trace.SpanStartOption) bool {
	if len(opts) == 0 {
		return false
	}
	c := trace.NewSpanStartConfig(opts...)
	return c.NewRoot()
}

// End ends span, recording err (if any) as its status.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Inject returns the W3C trace context of ctx's span as a map to send
// along (BranchAction.trace_context), or nil if ctx has no valid span.
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := propagation.MapCarrier{}
	Propagator.Inject(ctx, m)
	return m
}

// Extract returns ctx with the remote span context carried by m (see
// Inject), and whether m carried a valid one.
func Extract(ctx context.Context, m map[string]string) (context.Context, bool) {
	if len(m) == 0 {
		return ctx, false
	}
	ctx = Propagator.Extract(ctx, propagation.MapCarrier(m))
	return ctx, trace.SpanContextFromContext(ctx).IsValid()
}

// Outgoing returns ctx with the W3C trace context of its span in the
// outgoing gRPC metadata (replacing any there), or ctx itself without a
// valid span. The TM's and RM's requests that name a global go out with
// it, so that the TC can send the trace context with phase two even over
// a connection without otelgrpc's handler; with the handler, its client
// span's context replaces it.
func Outgoing(ctx context.Context) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	md, ok := metadata.FromOutgoingContext(ctx) // a copy
	if !ok {
		md = make(metadata.MD, 2)
	}
	Propagator.Inject(ctx, MetadataCarrier(md))
	return metadata.NewOutgoingContext(ctx, md)
}

// MetadataCarrier is gRPC metadata as a propagation.TextMapCarrier.
type MetadataCarrier metadata.MD

func (c MetadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c MetadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// attachMethod is the RM's Attach stream: it lives as long as the RM and
// belongs to no global transaction, so no span is made for it.
const attachMethod = "/xact.v1.Coordinator/Attach"

// spannedByXact are the RPCs whose client span xact makes itself
// (xact.register_branch, xact.report_branch, xact.commit, xact.rollback,
// each injecting its context with Outgoing): a second span from otelgrpc
// would only double their cost.
var spannedByXact = map[string]bool{
	attachMethod:                          true,
	"/xact.v1.Coordinator/RegisterBranch": true,
	"/xact.v1.Coordinator/ReportBranch":   true,
	"/xact.v1.Coordinator/Commit":         true,
	"/xact.v1.Coordinator/Rollback":       true,
}

// ClientHandler returns the otelgrpc stats handler of a connection xact
// dials for a TM or RM (tm.Dial, rm.Dial and the connections to a
// cluster's coordinators): RPC spans from tp for the calls xact makes no
// span of its own for (Reserve, Begin, GetStatus, QueryLocks, the Admin
// service), none for the Attach stream, W3C trace context in the metadata,
// and no metrics (xact's options give a tracer provider only).
func ClientHandler(tp trace.TracerProvider) stats.Handler {
	return selective{
		inner: otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(Propagator),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		),
		skip: func(method string) bool { return spannedByXact[method] },
	}
}

// ServerHandler returns the otelgrpc stats handler of the TC: RPC spans
// from tp that join the callers' traces (W3C trace context), none for the
// Attach streams and the health checks, and no metrics (the TC has its
// own).
func ServerHandler(tp trace.TracerProvider) stats.Handler {
	return selective{
		inner: otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(Propagator),
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		),
		skip: func(method string) bool {
			return method == attachMethod || strings.HasPrefix(method, "/grpc.health.")
		},
	}
}

// selective hands inner only the calls it does not skip, and of those only
// the events otelgrpc records something for (Begin, the headers, End).
// otelgrpc's own filter still parses the method, builds attributes,
// injects or extracts the trace context and sees every event of a call it
// filtered out, and every message of a stream; a skipped call costs a
// lookup here and a context lookup per event but its messages'.
type selective struct {
	inner stats.Handler
	skip  func(method string) bool
}

var _ stats.Handler = selective{}

// passedKey marks the context of a call handed to inner.
type passedKey struct{}

func (h selective) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if h.skip(info.FullMethodName) {
		return ctx
	}
	return context.WithValue(h.inner.TagRPC(ctx, info), passedKey{}, true)
}

func (h selective) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	switch rs.(type) {
	case *stats.InPayload, *stats.OutPayload, *stats.InTrailer, *stats.OutTrailer:
		// otelgrpc records nothing for these (no message events): spare
		// its context lookups, and ours, for every message.
		return
	}
	if ctx.Value(passedKey{}) != nil {
		h.inner.HandleRPC(ctx, rs)
	}
}

func (h selective) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return h.inner.TagConn(ctx, info)
}

func (h selective) HandleConn(ctx context.Context, s stats.ConnStats) { h.inner.HandleConn(ctx, s) }
