package tc

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/xact-io/xact/internal/tracing/tracingtest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/internal/hub"
)

// rpc runs one request through t as gRPC would: TagRPC, the request's
// payload, the answer's (nil: none), the end.
func rpc(t *traces, ctx context.Context, method string, req, resp any) {
	ctx = t.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
	t.HandleRPC(ctx, &stats.InPayload{Payload: req})
	if resp != nil {
		t.HandleRPC(ctx, &stats.OutPayload{Payload: resp})
	}
	t.HandleRPC(ctx, &stats.End{})
}

// traceparentOf returns the trace and span ids of a W3C traceparent.
func traceparentOf(t *testing.T, tc map[string]string) (traceID, spanID string) {
	t.Helper()
	parts := strings.Split(tc["traceparent"], "-")
	if len(parts) != 4 {
		t.Fatalf("trace context %v: no traceparent", tc)
	}
	return parts[1], parts[2]
}

func TestTracesPhaseTwoJoinsTheGlobalsTrace(t *testing.T) {
	rec := tracingtest.New(t)
	client := rec.TP.Tracer("client")
	tr := newTraces(rec.TP)
	branch := &storage.Branch{XID: "tc1:x:1", ID: 7, Resource: "db", Type: xactpb.BranchType_BRANCH_TYPE_AT}

	// A registration's context is kept for the global's phase two...
	regCtx, reg := client.Start(context.Background(), "register")
	rpc(tr, regCtx, xactpb.Coordinator_RegisterBranch_FullMethodName, &xactpb.RegisterBranchRequest{Xid: branch.XID}, nil)
	reg.End()
	// ... until a decision names the global: its context replaces it.
	decCtx, dec := client.Start(context.Background(), "commit")
	rpc(tr, decCtx, xactpb.Coordinator_Commit_FullMethodName, &xactpb.CommitRequest{Xid: branch.XID},
		&xactpb.CommitResponse{Status: xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING})
	dec.End()
	// A later registration does not replace it.
	late, lateSpan := client.Start(context.Background(), "late")
	rpc(tr, late, xactpb.Coordinator_RegisterBranch_FullMethodName, &xactpb.RegisterBranchRequest{Xid: branch.XID}, nil)
	lateSpan.End()

	// The action carries the context of the decision's server span, which
	// otelgrpc made as a child of the client's span.
	tcx, end := tr.phaseTwo(context.Background(), xactpb.ActionKind_ACTION_KIND_COMMIT, branch)
	end(hub.Result{Outcome: xactpb.Outcome_OUTCOME_DONE})
	server := rec.WaitSpan(t, "xact.v1.Coordinator/Commit")
	if server.Parent.SpanID() != dec.SpanContext().SpanID() {
		t.Errorf("Commit server span's parent %v, want the client's %v", server.Parent.SpanID(), dec.SpanContext().SpanID())
	}
	traceID, spanID := traceparentOf(t, tcx)
	if traceID != dec.SpanContext().TraceID().String() || spanID != server.SpanContext.SpanID().String() {
		t.Errorf("trace context sent %v, want the Commit server span's %v/%v", tcx, server.SpanContext.TraceID(), server.SpanContext.SpanID())
	}
	if s := tracingtest.Find(rec.Spans(), spanPhaseTwoCommit); s != nil {
		t.Errorf("a DONE push made a TC span %s", s.Name)
	}

	// A push that is not DONE shows in the trace.
	_, end = tr.phaseTwo(context.Background(), xactpb.ActionKind_ACTION_KIND_COMMIT, branch)
	end(hub.Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN, Reason: "no RM attached"})
	s := rec.WaitSpan(t, spanPhaseTwoCommit)
	if s.Parent.SpanID() != server.SpanContext.SpanID() || s.Status.Code != codes.Error || s.Status.Description != "no RM attached" {
		t.Errorf("TC span: parent %v, status %v; want the Commit server span %v, an error", s.Parent.SpanID(), s.Status, server.SpanContext.SpanID())
	}
	for _, kv := range []struct{ k, want string }{{"xact.xid", branch.XID}, {"xact.branch_id", "7"}, {"xact.mode", "AT"}, {"xact.outcome", "OUTCOME_UNKNOWN"}} {
		if got := tracingtest.Attr(s, kv.k); got != kv.want {
			t.Errorf("%s = %q, want %q", kv.k, got, kv.want)
		}
	}
}

func TestTracesForgetAtAFinalAnswer(t *testing.T) {
	rec := tracingtest.New(t)
	tr := newTraces(rec.TP)
	for _, tt := range []struct {
		status xactpb.GlobalStatus
		kept   bool
	}{
		{xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, false},
		{xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, false},
		{xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING, true},
		{xactpb.GlobalStatus_GLOBAL_STATUS_ASYNC_COMMITTING, true},
	} {
		xid := "tc1:x:" + tt.status.String()
		ctx, span := rec.TP.Tracer("client").Start(context.Background(), "decide")
		rpc(tr, ctx, xactpb.Coordinator_Rollback_FullMethodName, &xactpb.RollbackRequest{Xid: xid}, &xactpb.RollbackResponse{Status: tt.status})
		span.End()
		if _, kept := tr.lookup(xid); kept != tt.kept {
			t.Errorf("after an answer %v: kept = %v, want %v", tt.status, kept, tt.kept)
		}
	}
}

// unaryCall runs one request through t's interceptor (the TC without a
// tracer provider), with a handler that answers resp.
func unaryCall(t *traces, ctx context.Context, req, resp any) {
	t.unary(ctx, req, &grpc.UnaryServerInfo{}, func(context.Context, any) (any, error) { return resp, nil })
}

func TestTracesWithoutTracing(t *testing.T) {
	for _, tt := range []struct {
		name string
		tp   trace.TracerProvider
		call func(tr *traces, ctx context.Context, req, resp any)
	}{
		// tracing.Off: no stats handler, the interceptor keeps the contexts.
		{"no provider set", otel.GetTracerProvider(), unaryCall},
		{"noop provider", noop.NewTracerProvider(), func(tr *traces, ctx context.Context, req, resp any) {
			method := xactpb.Coordinator_Commit_FullMethodName
			if _, ok := req.(*xactpb.RegisterBranchRequest); ok {
				method = xactpb.Coordinator_RegisterBranch_FullMethodName
			}
			rpc(tr, ctx, method, req, resp)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTraces(tt.tp)
			b := &storage.Branch{XID: "tc1:x:1", ID: 1}
			// No trace context in the request: nothing is kept, nothing is sent.
			tt.call(tr, context.Background(), &xactpb.CommitRequest{Xid: b.XID}, nil)
			if _, ok := tr.lookup(b.XID); ok {
				t.Errorf("kept a trace context for a request without one")
			}
			tcx, end := tr.phaseTwo(context.Background(), xactpb.ActionKind_ACTION_KIND_ROLLBACK, b)
			end(hub.Result{Outcome: xactpb.Outcome_OUTCOME_UNKNOWN})
			if tcx != nil {
				t.Errorf("trace context = %v, want none", tcx)
			}
			// A caller's trace context passes through a TC that records
			// nothing: the registration's, then the decision's.
			const reg = "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"
			const dec = "00-0102030405060708090a0b0c0d0e0f10-1112131415161718-01"
			in := func(parent string) context.Context {
				return metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", parent))
			}
			for _, step := range []struct {
				parent string
				req    any
			}{{reg, &xactpb.RegisterBranchRequest{Xid: b.XID}}, {dec, &xactpb.CommitRequest{Xid: b.XID}}} {
				tt.call(tr, in(step.parent), step.req, nil)
				tcx, end = tr.phaseTwo(context.Background(), xactpb.ActionKind_ACTION_KIND_COMMIT, b)
				end(hub.Result{Outcome: xactpb.Outcome_OUTCOME_DONE})
				if got := tcx["traceparent"]; got != step.parent {
					t.Errorf("after %T: traceparent sent = %q, want the caller's %q", step.req, got, step.parent)
				}
			}
			// A final answer forgets it.
			tt.call(tr, in(dec), &xactpb.CommitRequest{Xid: b.XID}, &xactpb.CommitResponse{Status: xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED})
			if _, ok := tr.lookup(b.XID); ok {
				t.Errorf("kept the trace context of a global answered COMMITTED")
			}
		})
	}
}

func TestTracesMemoryIsBounded(t *testing.T) {
	tr := newTraces(noop.NewTracerProvider())
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	n := 2*traceGeneration + 10
	for i := range n {
		tr.remember(ctx, "tc1:x:"+strconv.Itoa(i), false)
	}
	tr.mu.Lock()
	size := len(tr.mu.cur) + len(tr.mu.old)
	tr.mu.Unlock()
	if size > 2*traceGeneration {
		t.Errorf("%d trace contexts kept, want at most %d", size, 2*traceGeneration)
	}
}
