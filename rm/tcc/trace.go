package tcc

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
)

// scope is the instrumentation scope of the TCC spans, made from the
// rm.Client's tracer provider (rm.WithTracerProvider).
const scope = "github.com/xact-io/xact/rm/tcc"

// spanTry is the span of a Try: the branch's registration, the Try
// function and the report of its failure are inside it.
const spanTry = "xact.tcc.try"

func startTry(t tracing.Tracer, ctx context.Context, xid, resource string) (context.Context, trace.Span) {
	ctx, span := t.Start(ctx, spanTry)
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(xid), tracing.Resource(resource), tracing.Mode(xactpb.BranchType_BRANCH_TYPE_TCC))
	}
	return ctx, span
}

// setBranch names the branch of a Try's span once it is registered.
func setBranch(span trace.Span, id int64) {
	if span.IsRecording() {
		span.SetAttributes(tracing.BranchID(id))
	}
}
