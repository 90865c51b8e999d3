package global

import (
	"context"
	"errors"
	"testing"

	"github.com/xact-io/xact/protocol/xactpb"
)

func TestXID(t *testing.T) {
	bg := context.Background()
	if x, ok := XID(bg); ok || x != "" || ExplicitlyWithout(bg) {
		t.Errorf("XID(Background) = %q, %v; ExplicitlyWithout = %v; want none", x, ok, ExplicitlyWithout(bg))
	}
	ctx := WithXID(bg, "n:1")
	if x, ok := XID(ctx); !ok || x != "n:1" {
		t.Errorf("XID(WithXID(n:1)) = %q, %v, want n:1, true", x, ok)
	}
	ctx = WithoutXID(ctx)
	if x, ok := XID(ctx); ok || !ExplicitlyWithout(ctx) {
		t.Errorf("XID(WithoutXID) = %q, %v; ExplicitlyWithout = %v; want none, explicitly", x, ok, ExplicitlyWithout(ctx))
	}
}

func TestValidateXID(t *testing.T) {
	for _, tt := range []struct {
		xid string
		ok  bool
	}{{"n:1", true}, {"", false}, {"a b", false}, {string(make([]byte, 129)), false}} {
		err := ValidateXID(tt.xid)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidXID)) {
			t.Errorf("ValidateXID(%q) = %v, want ok %v (else ErrInvalidXID)", tt.xid, err, tt.ok)
		}
	}
}

type lazy struct{ req *xactpb.BeginRequest }

func (l lazy) PendingBegin() (*xactpb.BeginRequest, func(), error) { return l.req, func() {}, nil }

func TestPendingBegin(t *testing.T) {
	req := &xactpb.BeginRequest{Xid: "n:1"}
	ctx := WithLazy(WithXID(context.Background(), "n:1"), "n:1", lazy{req})
	if got, begun, err := PendingBegin(ctx, "n:1"); got != req || begun == nil || err != nil {
		t.Errorf("PendingBegin(n:1) = %v, %v, %v; want the lazy transaction's Begin", got, begun != nil, err)
	}
	// Another XID (a nested transaction, or one set by hand) has none.
	if got, begun, err := PendingBegin(WithXID(ctx, "n:2"), "n:2"); got != nil || begun != nil || err != nil {
		t.Errorf("PendingBegin(n:2) = %v, %v, %v; want nothing", got, begun != nil, err)
	}
	if got, _, _ := PendingBegin(context.Background(), "n:1"); got != nil {
		t.Errorf("PendingBegin without a lazy transaction = %v, want nil", got)
	}
}

func TestReports(t *testing.T) {
	bg := context.Background()
	r := func(xid string, id int64) *xactpb.ReportBranchRequest {
		return &xactpb.ReportBranchRequest{Xid: xid, BranchId: id, Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE}
	}
	if DeferReport(bg, r("n:1", 1)) {
		t.Fatal("DeferReport without a queue = true")
	}
	if rs := TakeReports(bg, "n:1"); rs != nil {
		t.Fatalf("TakeReports without a queue = %v", rs)
	}
	ctx := WithReports(bg, "n:1")
	if DeferReport(ctx, r("n:2", 1)) {
		t.Fatal("DeferReport of another XID = true")
	}
	if !DeferReport(ctx, r("n:1", 1)) || !DeferReport(ctx, r("n:1", 2)) {
		t.Fatal("DeferReport = false")
	}
	if rs := TakeReports(ctx, "n:2"); rs != nil {
		t.Fatalf("TakeReports(other XID) = %v", rs)
	}
	rs := TakeReports(ctx, "n:1")
	if len(rs) != 2 || rs[0].GetBranchId() != 1 || rs[1].GetBranchId() != 2 {
		t.Fatalf("TakeReports = %v, want branches 1, 2", rs)
	}
	if again := TakeReports(ctx, "n:1"); again != nil {
		t.Fatalf("second TakeReports = %v, want none", again)
	}
	DeferReport(ctx, r("n:1", 3))
	ReturnReports(ctx, "n:1", rs)
	rs = TakeReports(ctx, "n:1")
	if len(rs) != 3 || rs[0].GetBranchId() != 1 || rs[1].GetBranchId() != 2 || rs[2].GetBranchId() != 3 {
		t.Fatalf("after ReturnReports: %v, want branches 1, 2, 3", rs)
	}
	inner := WithReports(ctx, "n:9")
	if DeferReport(inner, r("n:1", 4)) {
		t.Fatal("an inner transaction's context deferred the outer's report")
	}
}
