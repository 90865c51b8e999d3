package tcc

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/xact-io/xact/internal/tracing/tracingtest"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// TestTraceOfTry checks that a Try and its Confirm or Cancel are in the
// trace of tm.Do: xact.tcc.try under the global's span with the
// registration inside it, and the phase-two span in the same trace.
func TestTraceOfTry(t *testing.T) {
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
	errTry := errors.New("out of stock")
	res, err := Register(rmc, "stock", Funcs[string]{
		Try: func(ctx context.Context, sku string) error {
			if sku == "none" {
				return errTry
			}
			return nil
		},
		Confirm: func(context.Context, string) error { return nil },
		Cancel:  func(context.Context, string, TryOutcome) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, rmc)

	for _, tt := range []struct {
		sku, phaseTwo string
		reports       int
	}{
		{"apple", "xact.phase_two.commit", 0},
		{"none", "xact.phase_two.rollback", 1}, // the failed Try is reported at once
	} {
		t.Run(tt.sku, func(t *testing.T) {
			rec.Reset()
			err := tmgr.Do(context.Background(), tm.Options{Name: "order"}, func(ctx context.Context) error {
				return res.Try(ctx, tt.sku)
			})
			if (tt.sku == "none") != errors.Is(err, errTry) {
				t.Fatalf("Do = %v", err)
			}
			spans := rec.Wait(t, tt.phaseTwo, func(s tracetest.SpanStubs) bool { return tracingtest.Find(s, tt.phaseTwo) != nil })
			t.Logf("spans:\n%s", tracingtest.Tree(spans))
			root := tracingtest.Find(spans, "xact.global order")
			try := tracingtest.Find(spans, "xact.tcc.try")
			if root == nil || try == nil {
				t.Fatalf("no xact.global order or xact.tcc.try")
			}
			for _, s := range spans {
				if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
					t.Errorf("span %s in another trace", s.Name)
				}
			}
			if p := tracingtest.ParentName(spans, *try); p != "xact.global order" {
				t.Errorf("parent of xact.tcc.try = %q, want xact.global order", p)
			}
			if got := tracingtest.Attr(*try, "xact.mode"); got != "TCC" || tracingtest.Attr(*try, "xact.branch_id") == "" {
				t.Errorf("xact.tcc.try attributes %v, want mode TCC and a branch id", try.Attributes)
			}
			if failed := try.Status.Code == codes.Error; failed != (tt.sku == "none") {
				t.Errorf("xact.tcc.try status %v", try.Status)
			}
			for _, name := range []string{"xact.register_branch", "xact.report_branch"} {
				n := 0
				for _, s := range tracingtest.Named(spans, name) {
					n++
					if p := tracingtest.ParentName(spans, s); p != "xact.tcc.try" {
						t.Errorf("parent of %s = %q, want xact.tcc.try", name, p)
					}
				}
				if want := map[string]int{"xact.register_branch": 1, "xact.report_branch": tt.reports}[name]; n != want {
					t.Errorf("%d spans %s, want %d", n, name, want)
				}
			}
			if got := tracingtest.Attr(*tracingtest.Find(spans, tt.phaseTwo), "xact.mode"); got != "TCC" {
				t.Errorf("%s: xact.mode = %q, want TCC", tt.phaseTwo, got)
			}
		})
	}
}
