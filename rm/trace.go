package rm

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Tracing (see WithTracerProvider). Phase one's spans are children of the
// caller's context, which tm.Do's span is above; a phase-two span is a
// child of the trace context the TC sends with the action
// (BranchAction.trace_context), so that it joins the global's trace
// although it runs long after, and maybe in another process.

// scope is the instrumentation scope of the RM core's spans.
const scope = "github.com/xact-io/xact/rm"

// Span names of the RM core.
const (
	spanRegister         = "xact.register_branch"
	spanReport           = "xact.report_branch"
	spanPhaseTwoCommit   = "xact.phase_two.commit"
	spanPhaseTwoRollback = "xact.phase_two.rollback"
)

// TracerProvider returns the tracer provider of the Client's spans
// (WithTracerProvider), from which the modes built on the Client
// (datasource, rm/tcc, rm/saga) make theirs; a noop provider for a Client
// not made by New.
func (c *Client) TracerProvider() trace.TracerProvider {
	if c == nil || c.cfg.tracerProvider == nil {
		return noop.NewTracerProvider()
	}
	return c.cfg.tracerProvider
}

// The spans' attributes are set in one call, at their end: each call of
// SetAttributes that outgrows the span's attribute slice reallocates it.

func (c *Client) startRegister(ctx context.Context) (context.Context, trace.Span) {
	return c.tracer.Start(ctx, spanRegister, trace.WithSpanKind(trace.SpanKindClient))
}

func endRegister(span trace.Span, xid, resource string, typ xactpb.BranchType, keys int, id int64, err error) {
	if span.IsRecording() {
		attrs := [...]attribute.KeyValue{tracing.XID(xid), tracing.Resource(resource), tracing.Mode(typ), tracing.KeyLockKeys.Int(keys), tracing.BranchID(id)}
		n := len(attrs)
		if err != nil {
			n-- // no branch ID
		}
		span.SetAttributes(attrs[:n]...)
	}
	tracing.End(span, err)
}

func (c *Client) startReport(ctx context.Context, req *xactpb.ReportBranchRequest) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, spanReport, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(req.GetXid()), tracing.BranchID(req.GetBranchId()), tracing.KeyStatus.String(req.GetStatus().String()))
	}
	return ctx, span
}

// startPhaseTwo opens the span of one phase-two action: a child of the
// trace context the TC sent with it, or a new root when it sent none (root
// may carry a span of the caller of Start, which the action is no part
// of).
func (c *Client) startPhaseTwo(root context.Context, a *xactpb.BranchAction) (context.Context, trace.Span) {
	name := spanPhaseTwoRollback
	if a.GetKind() == xactpb.ActionKind_ACTION_KIND_COMMIT {
		name = spanPhaseTwoCommit
	}
	ctx, ok := tracing.Extract(root, a.GetTraceContext())
	kind := trace.WithSpanKind(trace.SpanKindConsumer)
	var span trace.Span
	if ok {
		ctx, span = c.tracer.Start(ctx, name, kind)
	} else {
		ctx, span = c.tracer.Start(ctx, name, kind, trace.WithNewRoot())
	}
	return ctx, span
}

// endPhaseTwo ends the phase-two span of a with the action's outcome.
func endPhaseTwo(span trace.Span, a *xactpb.BranchAction, o xactpb.Outcome, reason string) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(tracing.XID(a.GetXid()), tracing.BranchID(a.GetBranchId()), tracing.Resource(a.GetResourceId()), tracing.Mode(a.GetBranchType()),
		tracing.KeyOutcome.String(o.String()))
	if o != xactpb.Outcome_OUTCOME_DONE {
		span.SetStatus(codes.Error, reason)
	}
	span.End()
}
