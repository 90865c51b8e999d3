package tc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/internal/hub"
)

// Tracing.
//
// The TC's RPC spans come from otelgrpc's server stats handler with the
// global tracer provider (otel.GetTracerProvider: the embedding
// application's, set before tc.New; `xact server` sets one from the
// OTEL_* environment), and join the callers' traces through the W3C trace
// context in the metadata.
//
// Phase two runs long after the TM's RPCs, on the TC's own goroutines, so
// the trace context must travel with the global. The TC keeps it in
// memory, not in the store: it wraps otelgrpc's handler (traces), and when
// a request naming a global arrives (Begin's answer, RegisterBranch, or a
// decision, which replaces what an earlier request left) with a valid span
// context, it remembers that span context for the global's XID. Each
// phase-two action carries it to the RM (BranchAction.trace_context),
// whose span is its child; a push that is not DONE also gets a span here
// (see phaseTwo). A global driven after a restart, by another coordinator
// of a cluster, or after its entry was evicted has none: its action
// carries nothing, and the RM's span is a root carrying the XID.
//
// The memory is bounded: two generations of at most traceGeneration
// entries each; the older one is dropped when the newer one is full or
// older than traceGenerationAge. A decision answered with a final status
// forgets its global at once. Without tracing (no valid span context in
// any request) nothing is kept.
//
// While no tracer provider is set when the server is made (tracing.Off),
// there is no stats handler at all: an interceptor only reads the W3C
// trace context of the requests that name a global, to pass it on, and a
// request without one costs a metadata lookup (see traceOption).

const (
	traceGeneration    = 1 << 15
	traceGenerationAge = 5 * time.Minute
)

// Span names of the TC.
const (
	spanPhaseTwoCommit   = "xact.tc.phase_two.commit"
	spanPhaseTwoRollback = "xact.tc.phase_two.rollback"
)

// traces is the TC's stats handler (otelgrpc's, wrapped) and the memory of
// the globals' trace contexts.
type traces struct {
	tp     trace.TracerProvider
	inner  stats.Handler
	tracer tracing.Tracer
	size   atomic.Int64 // entries in mu.cur and mu.old, for a lock-free miss
	mu     struct {
		sync.Mutex
		cur, old map[string]trace.SpanContext
		since    time.Time // when cur began
	}
}

var _ stats.Handler = (*traces)(nil)

func newTraces(tp trace.TracerProvider) *traces {
	t := &traces{tp: tp, inner: tracing.ServerHandler(tp), tracer: tracing.NewTracer(tp, "github.com/xact-io/xact/tc")}
	t.mu.cur = map[string]trace.SpanContext{}
	t.mu.since = time.Now()
	return t
}

// traceOption makes the server's traces and returns how the gRPC server
// uses them: as its stats handler (otelgrpc's RPC spans, wrapped) when a
// tracer provider is set, and otherwise as a unary interceptor that only
// keeps the trace context the requests carry, so that a TC without
// tracing of its own costs next to nothing and still passes its callers'
// traces on to phase two. (A provider set after New therefore gets no RPC
// spans: set it first, as `xact server` does.)
func (s *Server) traceOption() grpc.ServerOption {
	s.traces = newTraces(otel.GetTracerProvider())
	if tracing.Off(s.traces.tp) {
		return grpc.ChainUnaryInterceptor(s.traces.unary)
	}
	return grpc.StatsHandler(s.traces)
}

// TagConn implements stats.Handler.
func (t *traces) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return t.inner.TagConn(ctx, info)
}

// HandleConn implements stats.Handler.
func (t *traces) HandleConn(ctx context.Context, s stats.ConnStats) { t.inner.HandleConn(ctx, s) }

// decisionKey marks the context of a traced Commit or Rollback with the
// XID it names, so that its answer can forget it.
type decisionKey struct{}

type decision struct{ xid string }

// TagRPC implements stats.Handler.
func (t *traces) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	ctx = t.inner.TagRPC(ctx, info)
	switch info.FullMethodName {
	case xactpb.Coordinator_Commit_FullMethodName, xactpb.Coordinator_Rollback_FullMethodName:
		if trace.SpanContextFromContext(ctx).IsValid() {
			ctx = context.WithValue(ctx, decisionKey{}, &decision{})
		}
	}
	return ctx
}

// unary is the interceptor of a TC without a tracer provider: it keeps the
// W3C trace context of the requests that name a global, and forgets it at
// a final answer, as HandleRPC does. A request without one costs a type
// switch and a metadata lookup.
func (t *traces) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var xid string
	decision := false
	switch m := req.(type) {
	case *xactpb.RegisterBranchRequest:
		xid = m.GetXid()
	case *xactpb.CommitRequest:
		xid, decision = m.GetXid(), true
	case *xactpb.RollbackRequest:
		xid, decision = m.GetXid(), true
	case *xactpb.BeginRequest:
		xid = m.GetXid() // lazy Begin names it; an eager one learns it from the answer
	default:
		return handler(ctx, req)
	}
	parent := metadata.ValueFromIncomingContext(ctx, "traceparent")
	if len(parent) == 0 {
		return handler(ctx, req)
	}
	carrier := propagation.MapCarrier{"traceparent": parent[0]}
	if state := metadata.ValueFromIncomingContext(ctx, "tracestate"); len(state) > 0 {
		carrier["tracestate"] = state[0]
	}
	tctx := tracing.Propagator.Extract(ctx, carrier)
	t.remember(tctx, xid, decision)
	resp, err := handler(ctx, req)
	switch r := resp.(type) {
	case *xactpb.BeginResponse:
		t.remember(tctx, r.GetXid(), false)
	case *xactpb.CommitResponse:
		t.forgetFinal(xid, r.GetStatus())
	case *xactpb.RollbackResponse:
		t.forgetFinal(xid, r.GetStatus())
	}
	return resp, err
}

// HandleRPC implements stats.Handler. A request's payload is reported
// before its handler runs, so a decision's context is remembered before
// the decision can start phase two.
func (t *traces) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	t.inner.HandleRPC(ctx, rs)
	switch rs := rs.(type) {
	case *stats.InPayload:
		switch m := rs.Payload.(type) {
		case *xactpb.RegisterBranchRequest:
			t.remember(ctx, m.GetXid(), false)
		case *xactpb.CommitRequest:
			t.decided(ctx, m.GetXid())
		case *xactpb.RollbackRequest:
			t.decided(ctx, m.GetXid())
		}
	case *stats.OutPayload:
		switch m := rs.Payload.(type) {
		case *xactpb.BeginResponse:
			t.remember(ctx, m.GetXid(), false)
		case *xactpb.CommitResponse:
			t.answered(ctx, m.GetStatus())
		case *xactpb.RollbackResponse:
			t.answered(ctx, m.GetStatus())
		}
	}
}

func (t *traces) decided(ctx context.Context, xid string) {
	if d, ok := ctx.Value(decisionKey{}).(*decision); ok {
		d.xid = xid
	}
	t.remember(ctx, xid, true)
}

// answered forgets a decided global whose phase two is over.
func (t *traces) answered(ctx context.Context, st xactpb.GlobalStatus) {
	if d, ok := ctx.Value(decisionKey{}).(*decision); ok {
		t.forgetFinal(d.xid, st)
	}
}

// forgetFinal forgets xid if st is final.
func (t *traces) forgetFinal(xid string, st xactpb.GlobalStatus) {
	if xid == "" || !final(st) {
		return
	}
	t.mu.Lock()
	delete(t.mu.cur, xid)
	if t.mu.old != nil {
		delete(t.mu.old, xid)
	}
	t.size.Store(int64(len(t.mu.cur) + len(t.mu.old)))
	t.mu.Unlock()
}

// final reports a status after which no phase-two action is sent.
func final(st xactpb.GlobalStatus) bool {
	switch st {
	case stCommitted, stRollbacked, stTimeoutRollbacked:
		return true
	}
	return false
}

// remember keeps the span context of ctx for xid: always for a decision,
// otherwise only if nothing is kept for it yet.
func (t *traces) remember(ctx context.Context, xid string, replace bool) {
	sc := trace.SpanContextFromContext(ctx)
	if xid == "" || !sc.IsValid() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !replace {
		if _, ok := t.mu.cur[xid]; ok {
			return
		}
		if _, ok := t.mu.old[xid]; ok {
			return
		}
	}
	if len(t.mu.cur) >= traceGeneration || time.Since(t.mu.since) > traceGenerationAge {
		t.mu.old, t.mu.cur, t.mu.since = t.mu.cur, make(map[string]trace.SpanContext), time.Now()
	}
	t.mu.cur[xid] = sc
	if replace && t.mu.old != nil {
		delete(t.mu.old, xid)
	}
	t.size.Store(int64(len(t.mu.cur) + len(t.mu.old)))
}

func (t *traces) lookup(xid string) (trace.SpanContext, bool) {
	if t.size.Load() == 0 {
		return trace.SpanContext{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if sc, ok := t.mu.cur[xid]; ok {
		return sc, true
	}
	sc, ok := t.mu.old[xid]
	return sc, ok
}

// phaseTwo returns the W3C trace context to send with a phase-two action
// of b (nil if the TC knows none), and the function to call with the
// action's result. A push that is not DONE gets a span of its own here,
// "xact.tc.phase_two.commit" or ".rollback", a sibling of the RM's span in
// the global's trace (or a root carrying the XID), so that retries and an
// RM that never answered show in the trace; a DONE push is the RM's span
// alone, which spares the TC a span per action.
func (t *traces) phaseTwo(ctx context.Context, kind xactpb.ActionKind, b *storage.Branch) (map[string]string, func(hub.Result)) {
	sc, ok := t.lookup(b.XID)
	if !ok && tracing.Off(t.tp) {
		return nil, endNothing
	}
	var tc map[string]string
	if ok {
		tc = tracing.Inject(trace.ContextWithRemoteSpanContext(ctx, sc))
	}
	start := time.Now()
	return tc, func(r hub.Result) {
		if r.Outcome == xactpb.Outcome_OUTCOME_DONE {
			return
		}
		name := spanPhaseTwoRollback
		if kind == xactpb.ActionKind_ACTION_KIND_COMMIT {
			name = spanPhaseTwoCommit
		}
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(start)}
		pctx := ctx
		if ok {
			pctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		} else {
			opts = append(opts, trace.WithNewRoot())
		}
		_, span := t.tracer.Start(pctx, name, opts...)
		if span.IsRecording() {
			span.SetAttributes(tracing.XID(b.XID), tracing.BranchID(b.ID), tracing.Resource(b.Resource), tracing.Mode(b.Type),
				tracing.KeyOutcome.String(r.Outcome.String()))
			span.SetStatus(codes.Error, r.Reason)
		}
		span.End()
	}
}

func endNothing(hub.Result) {}
