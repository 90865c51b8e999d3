package saga_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/xact-io/xact/internal/tracing/tracingtest"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// TestTraceOfSaga checks that a saga is one trace: a span per step under
// the global's span, with the step's registration inside it, and the
// compensations of a failed saga in the same trace.
func TestTraceOfSaga(t *testing.T) {
	rec := tracingtest.New(t)
	srv := tctest.Start(t)
	tmgr, err := tm.Dial(srv.Addr(), tm.WithTracerProvider(rec.TP))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tmgr.Close() })
	rmc, err := rm.Dial(srv.Addr(), rm.WithTracerProvider(rec.TP), rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmc.Close() })
	step := func(name string) saga.StepDef[Trip] {
		return saga.Step(name, func(_ context.Context, s Trip) (Trip, error) {
			if s.FailAt == name {
				return s, errStep
			}
			s.Done = append(s.Done, name)
			return s, nil
		}, func(context.Context, saga.Record[Trip]) error { return nil }, saga.WithRetry(saga.RetryPolicy{Attempts: 1}))
	}
	trip, err := saga.Define(tmgr, rmc, "trip", step("flight"), step("hotel"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := trip.Run(context.Background(), Trip{User: "ann", FailAt: "hotel"}); !errors.Is(err, errStep) {
		t.Fatalf("Run = %v, want %v", err, errStep)
	}
	spans := rec.Wait(t, "two compensations", func(s tracetest.SpanStubs) bool {
		return len(tracingtest.Named(s, "xact.phase_two.rollback")) == 2
	})
	t.Logf("spans:\n%s", tracingtest.Tree(spans))
	root := tracingtest.Find(spans, "xact.global trip")
	if root == nil {
		t.Fatal("no xact.global trip")
	}
	for _, s := range spans {
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("span %s in another trace", s.Name)
		}
	}
	for _, tt := range []struct {
		name   string
		failed bool
	}{{"xact.saga.step flight", false}, {"xact.saga.step hotel", true}} {
		s := tracingtest.Find(spans, tt.name)
		if s == nil {
			t.Errorf("no span %s", tt.name)
			continue
		}
		if p := tracingtest.ParentName(spans, *s); p != "xact.global trip" {
			t.Errorf("parent of %s = %q, want xact.global trip", tt.name, p)
		}
		if got := tracingtest.Attr(*s, "xact.mode"); got != "SAGA" || tracingtest.Attr(*s, "xact.branch_id") == "" {
			t.Errorf("%s attributes %v, want mode SAGA and a branch id", tt.name, s.Attributes)
		}
		if failed := s.Status.Code == codes.Error; failed != tt.failed {
			t.Errorf("%s status %v, want failed=%v", tt.name, s.Status, tt.failed)
		}
	}
	for _, s := range tracingtest.Named(spans, "xact.register_branch") {
		if p := tracingtest.ParentName(spans, s); p != "xact.saga.step flight" && p != "xact.saga.step hotel" {
			t.Errorf("parent of xact.register_branch = %q, want a step", p)
		}
	}
	if tracingtest.Find(spans, "xact.rollback") == nil {
		t.Error("no xact.rollback")
	}
}
