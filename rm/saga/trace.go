package saga

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
)

// scope is the instrumentation scope of the saga spans, made from the
// rm.Client's tracer provider (rm.WithTracerProvider).
const scope = "github.com/xact-io/xact/rm/saga"

// startStep opens the span of one step, "xact.saga.step NAME": the
// branch's registration, the action's attempts (its context carries the
// span) and the step's report are inside it.
func startStep(t tracing.Tracer, ctx context.Context, xid, resource, step string) (context.Context, trace.Span) {
	ctx, span := t.Start(ctx, "xact.saga.step "+step)
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(xid), tracing.Resource(resource), tracing.Mode(xactpb.BranchType_BRANCH_TYPE_SAGA))
	}
	return ctx, span
}

// setBranch names the branch of a step's span once it is registered.
func setBranch(span trace.Span, id int64) {
	if span.IsRecording() {
		span.SetAttributes(tracing.BranchID(id))
	}
}
