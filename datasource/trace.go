package datasource

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol/xactpb"
)

// Tracing. The spans come from the tracer provider of the rm.Client
// (rm.WithTracerProvider), so a data source needs no option of its own:
//
//   - "xact.at.before_image", for each DML statement of a branch, around
//     the read of its before image (SELECT … FOR UPDATE), a child of the
//     statement's context: it runs when the statement does, before the
//     commit;
//   - "xact.at.local_commit", for the commit of a branch's local
//     transaction, a child of the context the transaction was begun
//     with: the registration ("xact.register_branch", from rm), the
//     insert of the undo log ("xact.at.undo_insert") and the database's
//     commit are inside it.
//
// Phase two runs in rm's "xact.phase_two.*" span (the handler's context).

// traceScope is the instrumentation scope of the data source's spans.
const traceScope = "github.com/xact-io/xact/datasource"

// Span names of the data source.
const (
	spanBeforeImage = "xact.at.before_image"
	spanLocalCommit = "xact.at.local_commit"
	spanUndoInsert  = "xact.at.undo_insert"
)

var modeAT = tracing.Mode(xactpb.BranchType_BRANCH_TYPE_AT)

// startBeforeImage opens the span of a statement's before image in the
// branch xid.
func (c *Connector) startBeforeImage(ctx context.Context, xid string, p *mysqldialect.Plan) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, spanBeforeImage)
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(xid), tracing.Resource(c.cfg.resource), modeAT, attribute.String("xact.statement", p.Kind().String()))
	}
	return ctx, span
}

// startLocalCommit opens the span of a branch's local commit.
func (c *Connector) startLocalCommit(ctx context.Context, ts *txState) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, spanLocalCommit)
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(ts.scope.xid), tracing.Resource(c.cfg.resource), modeAT,
			attribute.Int("xact.undo_records", len(ts.records)), tracing.KeyLockKeys.Int(len(ts.keys)))
	}
	return ctx, span
}

// startUndoInsert opens the span of the insert of a branch's undo log.
func (c *Connector) startUndoInsert(ctx context.Context, xid string, branchID int64, size int) (context.Context, trace.Span) {
	ctx, span := c.tracer.Start(ctx, spanUndoInsert)
	if span.IsRecording() {
		span.SetAttributes(tracing.XID(xid), tracing.BranchID(branchID), tracing.Resource(c.cfg.resource), modeAT,
			attribute.Int("xact.undo_bytes", size))
	}
	return ctx, span
}

// setBranch names the branch of span once it is registered.
func setBranch(span trace.Span, id int64) {
	if span.IsRecording() {
		span.SetAttributes(tracing.BranchID(id))
	}
}
