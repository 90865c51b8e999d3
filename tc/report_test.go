package tc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
)

// Phase-one reports carried by RegisterBranch, Commit and Rollback (a saga
// step's PHASE_ONE_DONE with the next request of its global).

const (
	brRegistered = xactpb.BranchStatus_BRANCH_STATUS_REGISTERED
	brDone       = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE
	brFailed     = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED
	sagaType     = xactpb.BranchType_BRANCH_TYPE_SAGA
)

func done(xid string, id int64, data string) *xactpb.ReportBranchRequest {
	return &xactpb.ReportBranchRequest{Xid: xid, BranchId: id, Status: brDone, ApplicationData: []byte(data), UpdateApplicationData: true}
}

func (c *client) registerSaga(xid, resource, data string, reports ...*xactpb.ReportBranchRequest) (int64, error) {
	resp, err := c.coord.RegisterBranch(context.Background(), &xactpb.RegisterBranchRequest{
		Xid: xid, ResourceId: resource, BranchType: sagaType, ApplicationData: []byte(data), Reports: reports,
	})
	return resp.GetBranchId(), protocol.FromStatus(err)
}

// branchesOf returns "id:status:data" of xid's branches, in order.
func (c *client) branchesOf(xid string) string {
	c.t.Helper()
	var s string
	for _, b := range c.show(xid).GetBranches() {
		s += fmt.Sprintf("%d:%v:%s ", b.GetBranchId(), b.GetStatus(), b.GetApplicationData())
	}
	return s
}

// actionData returns the application data phase two sent with kind for
// branch id of xid.
func actionData(rm *testRM, kind xactpb.ActionKind, xid string, id int64) (string, bool) {
	for _, a := range rm.actions() {
		if a.GetKind() == kind && a.GetXid() == xid && a.GetBranchId() == id {
			return string(a.GetApplicationData()), true
		}
	}
	return "", false
}

func TestCarriedReportsRecorded(t *testing.T) {
	srv := tctest.Start(t, tctest.WithBadger())
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "s/a", "s/b")
	xid := c.begin(time.Minute)
	b1, err := c.registerSaga(xid, "s/a", "in1")
	if err != nil {
		t.Fatal(err)
	}
	b2, err := c.registerSaga(xid, "s/b", "in2", done(xid, b1, "out1"))
	if err != nil {
		t.Fatalf("RegisterBranch carrying a report: %v", err)
	}
	want := fmt.Sprintf("%d:%v:out1 %d:%v:in2 ", b1, brDone, b2, brRegistered)
	if got := c.branchesOf(xid); got != want {
		t.Errorf("after RegisterBranch carrying b1's report: branches %q, want %q", got, want)
	}
	// The report is durable with the registration (the store restarts).
	srv.Restart()
	c = newClient(t, srv)
	if got := c.branchesOf(xid); got != want {
		t.Errorf("after a restart: branches %q, want %q", got, want)
	}
	rm = attachRM(t, srv.Conn(t), "s/a", "s/b")

	resp, err := c.coord.Commit(context.Background(), &xactpb.CommitRequest{Xid: xid, Reports: []*xactpb.ReportBranchRequest{done(xid, b2, "out2")}})
	if err != nil || resp.GetStatus() != committed {
		t.Fatalf("Commit carrying a report = %v, %v; want COMMITTED", resp.GetStatus(), err)
	}
	for id, want := range map[int64]string{b1: "out1", b2: "out2"} {
		if got, ok := actionData(rm, actionCommitKind, xid, id); !ok || got != want {
			t.Errorf("phase-two commit of branch %d carried %q (sent %v), want %q", id, got, ok, want)
		}
	}
	// A repeated Commit carrying reports is answered with the status.
	resp, err = c.coord.Commit(context.Background(), &xactpb.CommitRequest{Xid: xid, Reports: []*xactpb.ReportBranchRequest{done(xid, b2, "late")}})
	if err != nil || resp.GetStatus() != committed {
		t.Errorf("repeated Commit carrying a report = %v, %v; want COMMITTED", resp.GetStatus(), err)
	}
}

func TestCarriedFailureTurnsCommitIntoRollback(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "s/a", "s/b")
	xid := c.begin(time.Minute)
	b1, _ := c.registerSaga(xid, "s/a", "in1")
	b2, err := c.registerSaga(xid, "s/b", "in2", done(xid, b1, "out1"))
	if err != nil {
		t.Fatal(err)
	}
	failed := &xactpb.ReportBranchRequest{Xid: xid, BranchId: b2, Status: brFailed, ApplicationData: []byte("err2"), UpdateApplicationData: true}
	_, err = c.coord.Commit(context.Background(), &xactpb.CommitRequest{Xid: xid, Reports: []*xactpb.ReportBranchRequest{failed}})
	if !errors.Is(protocol.FromStatus(err), protocol.ErrRolledBack) {
		t.Fatalf("Commit carrying PHASE_ONE_FAILED: err = %v, want ErrRolledBack (I3)", err)
	}
	eventually(t, "rollback", func() bool { return c.status(xid) == rollbacked })
	for _, a := range rm.actions() {
		if a.GetKind() == actionCommitKind {
			t.Errorf("a branch got commit: %v", a)
		}
	}
	for id, want := range map[int64]string{b1: "out1", b2: "err2"} {
		if got, ok := actionData(rm, actionRollbackKind, xid, id); !ok || got != want {
			t.Errorf("rollback of branch %d carried %q (sent %v), want %q", id, got, ok, want)
		}
	}
}

func TestCarriedReportsOnRollback(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "s/a")
	xid := c.begin(time.Minute)
	b1, _ := c.registerSaga(xid, "s/a", "in1")
	resp, err := c.coord.Rollback(context.Background(), &xactpb.RollbackRequest{Xid: xid, Reports: []*xactpb.ReportBranchRequest{done(xid, b1, "out1")}})
	if err != nil || !protocol.DecidedRollback(resp.GetStatus()) {
		t.Fatalf("Rollback carrying a report = %v, %v", resp.GetStatus(), err)
	}
	eventually(t, "rollback", func() bool { return c.status(xid) == rollbacked })
	if got, ok := actionData(rm, actionRollbackKind, xid, b1); !ok || got != "out1" {
		t.Errorf("rollback carried %q (sent %v), want out1", got, ok)
	}
	// Late: the global is decided; the report changes nothing and the
	// repeated Rollback is answered.
	if _, err := c.coord.Rollback(context.Background(), &xactpb.RollbackRequest{Xid: xid, Reports: []*xactpb.ReportBranchRequest{done(xid, b1, "late")}}); err != nil {
		t.Errorf("repeated Rollback carrying a report: %v", err)
	}
	if _, err := c.commit(xid); !errors.Is(err, protocol.ErrRolledBack) {
		t.Errorf("Commit after rollback: %v, want ErrRolledBack", err)
	}
}

func TestCarriedReportAfterDecisionChangesNothing(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "s/a")
	hold := holdRM(t, rm)
	xid := c.begin(time.Minute)
	b1, _ := c.registerSaga(xid, "s/a", "in1")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// Decided; phase two waits for the RM.
	c.coord.Rollback(ctx, &xactpb.RollbackRequest{Xid: xid})
	failed := &xactpb.ReportBranchRequest{Xid: xid, BranchId: b1, Status: brFailed, ApplicationData: []byte("late"), UpdateApplicationData: true}
	_, err := c.coord.Rollback(context.Background(), &xactpb.RollbackRequest{Xid: xid, Reports: []*xactpb.ReportBranchRequest{failed}})
	if err != nil {
		t.Errorf("Rollback carrying a late report: %v", err)
	}
	if bs := c.show(xid).GetBranches(); len(bs) != 1 || bs[0].GetStatus() == brFailed || string(bs[0].GetApplicationData()) != "in1" {
		t.Errorf("a late carried report changed the branch: %v", bs)
	}
	hold()
	eventually(t, "rollback", func() bool { return c.status(xid) == rollbacked })
}

func TestInvalidCarriedReportsRefused(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.MaxAppDataBytes = 8 }))
	c := newClient(t, srv)
	ctx := context.Background()
	xid := c.begin(time.Minute)
	other := c.begin(time.Minute)
	b1, _ := c.registerSaga(xid, "s/a", "in1")
	o1, _ := c.registerSaga(other, "s/a", "in1")
	before := c.branchesOf(xid)
	beforeOther := c.branchesOf(other)
	bad := []struct {
		name    string
		reports []*xactpb.ReportBranchRequest
		want    codes.Code
	}{
		{"other xid", []*xactpb.ReportBranchRequest{done(xid, b1, "x"), done(other, o1, "x")}, codes.InvalidArgument},
		{"phase-two status", []*xactpb.ReportBranchRequest{done(xid, b1, "x"),
			{Xid: xid, BranchId: b1, Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_COMMITTED}}, codes.InvalidArgument},
		{"registered status", []*xactpb.ReportBranchRequest{{Xid: xid, BranchId: b1, Status: brRegistered}}, codes.InvalidArgument},
		{"too large", []*xactpb.ReportBranchRequest{done(xid, b1, "x"), done(xid, b1, "123456789")}, codes.ResourceExhausted},
		{"unknown branch", []*xactpb.ReportBranchRequest{done(xid, b1, "x"), done(xid, 9, "x")}, codes.NotFound},
	}
	for _, tt := range bad {
		for _, call := range []struct {
			name string
			do   func() error
		}{
			{"RegisterBranch", func() error {
				_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "s/b", BranchType: sagaType, Reports: tt.reports})
				return err
			}},
			{"Commit", func() error {
				_, err := c.coord.Commit(ctx, &xactpb.CommitRequest{Xid: xid, Reports: tt.reports})
				return err
			}},
			{"Rollback", func() error {
				_, err := c.coord.Rollback(ctx, &xactpb.RollbackRequest{Xid: xid, Reports: tt.reports})
				return err
			}},
		} {
			if got := status.Code(call.do()); got != tt.want {
				t.Errorf("%s carrying %s: code %v, want %v", call.name, tt.name, got, tt.want)
			}
		}
	}
	if got := c.status(xid); got != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
		t.Errorf("refused requests decided the global: %v", got)
	}
	if got := c.branchesOf(xid); got != before {
		t.Errorf("refused requests changed the branches: %q, want %q", got, before)
	}
	if got := c.branchesOf(other); got != beforeOther {
		t.Errorf("refused requests changed the other global's branches: %q, want %q", got, beforeOther)
	}

	// A lazily begun global has no branch to report on: the registration
	// that would begin it is refused, and creates nothing.
	res, err := c.coord.Reserve(ctx, &xactpb.ReserveRequest{})
	if err != nil || !res.GetCarriesReports() {
		t.Fatalf("Reserve = %v, %v; want a namespace that carries reports", res, err)
	}
	lazy := res.GetXidPrefix() + "1"
	begin := &xactpb.BeginRequest{Name: "lazy", TimeoutMs: 60000}
	_, err = c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: lazy, ResourceId: "s/a", BranchType: sagaType, Begin: begin,
		Reports: []*xactpb.ReportBranchRequest{done(lazy, 1, "x")}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("lazy RegisterBranch carrying a report: %v, want NotFound", err)
	}
	_, err = c.coord.Commit(ctx, &xactpb.CommitRequest{Xid: lazy, Begin: begin, Reports: []*xactpb.ReportBranchRequest{done(lazy, 1, "x")}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("lazy Commit carrying a report: %v, want NotFound", err)
	}
	if _, err := c.coord.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: lazy}); status.Code(err) != codes.NotFound {
		t.Errorf("refused lazy requests created the global: %v", err)
	}
}
