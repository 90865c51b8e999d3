package tm_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/xact-io/xact/internal/tracing/tracingtest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

func TestTraceOfDoAndBegin(t *testing.T) {
	rec := tracingtest.New(t)
	srv := tctest.Start(t)
	m, err := tm.Dial(srv.Addr(), tm.WithTracerProvider(rec.TP))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })

	// A failed fn: the global's span records the error, and the rollback
	// is its child (the TC heard of the global through EnsureBegun, whose
	// Begin RPC has an otelgrpc span).
	errFn := errors.New("fn failed")
	var xid string
	err = m.Do(context.Background(), tm.Options{Name: "pay"}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		if err := tm.EnsureBegun(ctx); err != nil {
			return err
		}
		return errFn
	})
	if !errors.Is(err, errFn) {
		t.Fatalf("Do = %v, want %v", err, errFn)
	}
	spans := rec.Spans()
	t.Logf("spans:\n%s", tracingtest.Tree(spans))
	root := tracingtest.Find(spans, "xact.global pay")
	if root == nil || root.Parent.IsValid() || root.Status.Code != codes.Error || tracingtest.Attr(*root, "xact.xid") != xid {
		t.Fatalf("xact.global pay = %+v, want a root with an error status and xact.xid %s", root, xid)
	}
	rb := tracingtest.Find(spans, "xact.rollback")
	if rb == nil || tracingtest.ParentName(spans, *rb) != "xact.global pay" || tracingtest.Attr(*rb, "xact.xid") != xid {
		t.Errorf("xact.rollback = %+v, want a child of xact.global pay naming %s", rb, xid)
	}
	for _, rpc := range []string{"xact.v1.Coordinator/Begin"} {
		if s := tracingtest.Find(spans, rpc); s == nil || s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("no RPC span %s in the global's trace", rpc)
		}
	}

	// Begin's span covers Begin; the context it returns carries it.
	rec.Reset()
	ctx, xid, err := m.Begin(context.Background(), "manual", 0)
	if err != nil {
		t.Fatal(err)
	}
	begin := rec.WaitSpan(t, "xact.global manual")
	if got := trace.SpanContextFromContext(ctx); got.SpanID() != begin.SpanContext.SpanID() {
		t.Errorf("Begin's context carries span %v, want its own %v", got.SpanID(), begin.SpanContext.SpanID())
	}
	if _, err := m.Commit(ctx, xid); err != nil {
		t.Fatal(err)
	}
	commit := rec.WaitSpan(t, "xact.commit")
	if commit.Parent.SpanID() != begin.SpanContext.SpanID() {
		t.Errorf("xact.commit's parent %v, want Begin's span %v", commit.Parent.SpanID(), begin.SpanContext.SpanID())
	}
}

type noopHandler struct{}

func (noopHandler) Commit(context.Context, rm.Action) error   { return nil }
func (noopHandler) Rollback(context.Context, rm.Action) error { return nil }

// TestTraceOverAPlainConnection checks that a connection without otelgrpc's
// handler still carries the trace to the TC and on to phase two: the TM's
// and RM's requests that name a global send their span's W3C context
// themselves.
func TestTraceOverAPlainConnection(t *testing.T) {
	rec := tracingtest.New(t)
	srv := tctest.Start(t)
	conn := srv.Conn(t)
	m := tm.New(conn, tm.WithTracerProvider(rec.TP))
	rmc := rm.New(conn, rm.WithTracerProvider(rec.TP))
	t.Cleanup(func() { rmc.Close() })
	if err := rmc.Serve("res", xactpb.BranchType_BRANCH_TYPE_TCC, noopHandler{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	err := m.Do(ctx, tm.Options{Name: "plain"}, func(ctx context.Context) error {
		xid, _ := tm.XID(ctx)
		_, err := rmc.RegisterBranch(ctx, xid, "res", xactpb.BranchType_BRANCH_TYPE_TCC, nil, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p2 := rec.WaitSpan(t, "xact.phase_two.commit")
	spans := rec.Spans()
	t.Logf("spans:\n%s", tracingtest.Tree(spans))
	if p := tracingtest.ParentName(spans, p2); p != "xact.commit" {
		t.Errorf("parent of xact.phase_two.commit = %q, want xact.commit", p)
	}
}

// TestTraceContextBesideTheXID checks that the propagation helpers carry
// the W3C trace context of the caller's span beside the XID, and put it
// into the callee's context when no otel handler did.
func TestTraceContextBesideTheXID(t *testing.T) {
	rec := tracingtest.New(t)
	ctx, span := rec.TP.Tracer("test").Start(tm.WithXID(context.Background(), "tc1:abc:1"), "caller")
	defer span.End()
	want := span.SpanContext()
	check := func(t *testing.T, got context.Context) {
		t.Helper()
		sc := trace.SpanContextFromContext(got)
		if sc.TraceID() != want.TraceID() || sc.SpanID() != want.SpanID() || !sc.IsRemote() {
			t.Errorf("callee's span context = %v/%v (remote %v), want the caller's %v/%v", sc.TraceID(), sc.SpanID(), sc.IsRemote(), want.TraceID(), want.SpanID())
		}
		if xid, _ := tm.XID(got); xid != "tc1:abc:1" {
			t.Errorf("callee's XID = %q", xid)
		}
	}

	t.Run("grpc", func(t *testing.T) {
		var md metadata.MD
		invoker := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
			md, _ = metadata.FromOutgoingContext(ctx)
			return nil
		}
		if err := tm.UnaryClientInterceptor()(ctx, "/svc/M", nil, nil, nil, invoker); err != nil {
			t.Fatal(err)
		}
		if len(md.Get("traceparent")) != 1 {
			t.Fatalf("metadata %v: want one traceparent", md)
		}
		in := metadata.NewIncomingContext(context.Background(), md)
		_, err := tm.UnaryServerInterceptor()(in, nil, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
			check(t, ctx)
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http", func(t *testing.T) {
		done := false
		srv := httptest.NewServer(tm.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			check(t, r.Context())
			done = true
		})))
		defer srv.Close()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := (&http.Client{Transport: tm.Transport(nil)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !done || req.Header.Get("traceparent") != "" {
			t.Errorf("handler ran: %v; caller's request modified: %v", done, req.Header)
		}
	})
}
