package datasource

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/xact-io/xact/internal/tracing/tracingtest"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// TestTraceOfATTransfer checks that an AT transfer over two databases is
// one trace: tm.Do's span is the root; the before images, the local
// commits (with the registration and the undo insert inside) and the
// decision are its descendants; and the RM's phase-two spans, which run
// after Do returned on the TC's push, join the same trace as children of
// the decision. (xact's own spans are the client spans of the RPCs that
// name a global: otelgrpc makes none for them.)
func TestTraceOfATTransfer(t *testing.T) {
	leakCheck(t)
	rec := tracingtest.New(t)
	srv := tctest.Start(t, tctest.WithBadger())
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
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmc.Start(sctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, tm: tmgr, rm: rmc}
	a := e.newDB(t, nil)
	b := e.newDB(t, nil)
	a.accounts(1)
	b.accounts(1)

	for _, tt := range []struct {
		name, decision, phaseTwo string
		fail                     bool
	}{
		{"commit", "xact.commit", "xact.phase_two.commit", false},
		{"rollback", "xact.rollback", "xact.phase_two.rollback", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec.Reset()
			var xid string
			err := tmgr.Do(context.Background(), tm.Options{Name: "transfer", Timeout: 10 * time.Second}, func(ctx context.Context) error {
				xid, _ = tm.XID(ctx)
				if err := transfer(ctx, a.db, b.db, 30); err != nil {
					return err
				}
				if tt.fail {
					return errRollback
				}
				return nil
			})
			if tt.fail != errors.Is(err, errRollback) || !tt.fail && err != nil {
				t.Fatalf("Do = %v, want fail=%v", err, tt.fail)
			}
			// Phase two is asynchronous: wait for both branches' spans.
			spans := rec.Wait(t, "two "+tt.phaseTwo+" spans", func(s tracetest.SpanStubs) bool {
				return len(tracingtest.Named(s, tt.phaseTwo)) == 2
			})
			t.Logf("spans:\n%s", tracingtest.Tree(spans))

			root := one(t, spans, "xact.global transfer")
			if root.Parent.IsValid() {
				t.Errorf("xact.global has parent %v, want none", root.Parent.SpanID())
			}
			traceID := root.SpanContext.TraceID()
			for _, s := range spans {
				if s.SpanContext.TraceID() != traceID {
					t.Errorf("span %s is in trace %v, want %v", s.Name, s.SpanContext.TraceID(), traceID)
				}
				if strings.HasPrefix(s.Name, "xact.") && !strings.HasPrefix(s.Name, "xact.v1.") { // xact's, not otelgrpc's
					if got := tracingtest.Attr(s, "xact.xid"); got != xid {
						t.Errorf("span %s: xact.xid = %q, want %q", s.Name, got, xid)
					}
				}
			}
			byID := map[[8]byte]tracetest.SpanStub{}
			for _, s := range spans {
				byID[s.SpanContext.SpanID()] = s
			}
			parentName := func(s tracetest.SpanStub) string {
				p, ok := byID[s.Parent.SpanID()]
				if !ok {
					return "<none>"
				}
				return p.Name
			}
			wantParent := func(name, parent string, n int) []tracetest.SpanStub {
				t.Helper()
				got := tracingtest.Named(spans, name)
				if len(got) != n {
					t.Errorf("%d spans %s, want %d", len(got), name, n)
				}
				for _, s := range got {
					if p := parentName(s); p != parent {
						t.Errorf("parent of %s = %s, want %s", name, p, parent)
					}
				}
				return got
			}
			wantParent("xact.at.before_image", "xact.global transfer", 2)
			commits := wantParent("xact.at.local_commit", "xact.global transfer", 2)
			wantParent("xact.register_branch", "xact.at.local_commit", 2)
			wantParent("xact.at.undo_insert", "xact.at.local_commit", 2)
			wantParent(tt.decision, "xact.global transfer", 1)
			// The TC records no spans here (no provider is set), so the
			// RM's spans are children of the decision's span, whose
			// context it kept.
			for _, s := range wantParent(tt.phaseTwo, tt.decision, 2) {
				if s.Parent.IsRemote() != true {
					t.Errorf("%s: parent not remote", s.Name)
				}
				if tracingtest.Attr(s, "xact.mode") != "AT" || tracingtest.Attr(s, "xact.branch_id") == "" {
					t.Errorf("%s: attributes %v, want mode AT and a branch id", s.Name, s.Attributes)
				}
			}
			for _, c := range commits {
				if tracingtest.Attr(c, "xact.branch_id") == "" || tracingtest.Attr(c, "xact.resource") == "" {
					t.Errorf("xact.at.local_commit: attributes %v, want branch_id and resource", c.Attributes)
				}
			}
		})
	}
}

// one returns the only span named name, failing the test if there is not
// exactly one.
func one(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := tracingtest.Named(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans %s, want 1; spans:\n%s", len(got), name, tracingtest.Tree(spans))
	}
	return got[0]
}
