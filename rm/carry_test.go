package rm

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/internal/global"
	"github.com/xact-io/xact/protocol/xactpb"
)

// TestReportDoneCarried: with a queue in ctx (tm.Do's), ReportDone lets the
// report wait and RegisterBranch carries it; a registration that fails
// puts it back for the next request. Without a queue it is sent at once.
func TestReportDoneCarried(t *testing.T) {
	f := newFakeTC()
	f.register = func(n int) (int64, error) {
		if n == 2 {
			return 0, status.Error(codes.Unavailable, "down")
		}
		return int64(n), nil
	}
	f.report = func(int) error { return nil }
	c := started(t, f, nil)
	const xid = "n:1"
	ctx := global.WithReports(global.WithXID(context.Background(), xid), xid)
	bg := context.Background()

	if err := c.ReportDone(ctx, xid, 1, []byte("out1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterBranch(ctx, xid, "r", tcc, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportDone(ctx, xid, 2, []byte("out2")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterBranch(ctx, xid, "r", tcc, nil, nil); err == nil {
		t.Fatal("second RegisterBranch succeeded, want the fake's failure")
	}
	if _, err := c.RegisterBranch(ctx, xid, "r", tcc, nil, nil); err != nil {
		t.Fatal(err)
	}
	if f.Calls("report") != 0 {
		t.Errorf("%d ReportBranch calls with a queue in ctx, want 0", f.Calls("report"))
	}
	// Without a queue (another XID's, or none) the report is sent at once.
	if err := c.ReportDone(bg, xid, 3, []byte("out3")); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportDone(ctx, "n:2", 1, nil); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var carried []string
	for _, r := range f.registers {
		var s []string
		for _, rep := range r.GetReports() {
			s = append(s, fmt.Sprintf("%d:%s", rep.GetBranchId(), rep.GetApplicationData()))
		}
		carried = append(carried, fmt.Sprint(s))
	}
	if got, want := fmt.Sprint(carried), "[[1:out1] [2:out2] [2:out2]]"; got != want {
		t.Errorf("registrations carried %s, want %s", got, want)
	}
	if len(f.reports) != 2 || f.reports[0].GetBranchId() != 3 || f.reports[0].GetStatus() != xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE ||
		!f.reports[0].GetUpdateApplicationData() || f.reports[1].GetXid() != "n:2" || f.reports[1].GetUpdateApplicationData() {
		t.Errorf("ReportBranch requests = %v", f.reports)
	}
}
