package tc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/ledger"
	"github.com/xact-io/xact/tc/tctest"
)

type client struct {
	t     *testing.T
	coord xactpb.CoordinatorClient
	admin xactpb.AdminClient
}

func newClient(t *testing.T, srv *tctest.Server) *client {
	conn := srv.Conn(t)
	return &client{t: t, coord: xactpb.NewCoordinatorClient(conn), admin: xactpb.NewAdminClient(conn)}
}

func (c *client) begin(timeout time.Duration) string {
	c.t.Helper()
	resp, err := c.coord.Begin(context.Background(), &xactpb.BeginRequest{Name: "test", TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		c.t.Fatalf("Begin: %v", err)
	}
	return resp.GetXid()
}

func (c *client) register(xid, resource string, keys ...string) (int64, error) {
	resp, err := c.coord.RegisterBranch(context.Background(), &xactpb.RegisterBranchRequest{
		Xid: xid, ResourceId: resource, BranchType: xactpb.BranchType_BRANCH_TYPE_AT, LockKeys: keys,
	})
	return resp.GetBranchId(), protocol.FromStatus(err)
}

func (c *client) mustRegister(xid, resource string, keys ...string) int64 {
	c.t.Helper()
	id, err := c.register(xid, resource, keys...)
	if err != nil {
		c.t.Fatalf("RegisterBranch(%s, %v): %v", xid, keys, err)
	}
	return id
}

func (c *client) commit(xid string) (xactpb.GlobalStatus, error) {
	resp, err := c.coord.Commit(context.Background(), &xactpb.CommitRequest{Xid: xid})
	return resp.GetStatus(), protocol.FromStatus(err)
}

func (c *client) rollback(xid string) (xactpb.GlobalStatus, error) {
	resp, err := c.coord.Rollback(context.Background(), &xactpb.RollbackRequest{Xid: xid})
	return resp.GetStatus(), protocol.FromStatus(err)
}

func (c *client) status(xid string) xactpb.GlobalStatus {
	c.t.Helper()
	resp, err := c.coord.GetStatus(context.Background(), &xactpb.GetStatusRequest{Xid: xid})
	if err != nil {
		c.t.Fatalf("GetStatus(%s): %v", xid, protocol.FromStatus(err))
	}
	return resp.GetStatus()
}

func (c *client) show(xid string) *xactpb.ShowGlobalResponse {
	c.t.Helper()
	resp, err := c.admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
	if err != nil {
		c.t.Fatalf("ShowGlobal(%s): %v", xid, err)
	}
	return resp
}

func (c *client) locks() []*xactpb.RowLock {
	c.t.Helper()
	resp, err := c.admin.ListLocks(context.Background(), &xactpb.ListLocksRequest{})
	if err != nil {
		c.t.Fatalf("ListLocks: %v", err)
	}
	return resp.GetLocks()
}

// eventually polls cond until it holds or the time is up.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const (
	committed          = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	rollbacked         = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED
	timeoutRollbacked  = xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED
	commitRetrying     = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING
	outcomeDone        = xactpb.Outcome_OUTCOME_DONE
	outcomeFailed      = xactpb.Outcome_OUTCOME_FAILED
	outcomeUnknown     = xactpb.Outcome_OUTCOME_UNKNOWN
	actionCommitKind   = xactpb.ActionKind_ACTION_KIND_COMMIT
	actionRollbackKind = xactpb.ActionKind_ACTION_KIND_ROLLBACK
)

func TestCommitWithoutBranches(t *testing.T) {
	c := newClient(t, tctest.Start(t))
	xid := c.begin(time.Minute)
	if got, err := c.commit(xid); err != nil || got != committed {
		t.Fatalf("Commit = %v, %v; want %v, nil", got, err, committed)
	}
	if got := c.status(xid); got != committed {
		t.Errorf("GetStatus after commit = %v, want %v", got, committed)
	}
}

// waitAT makes Commit wait for phase two of AT-only globals, for tests that
// watch phase two through Commit's answer.
var waitAT = tctest.WithConfig(func(c *tc.Config) { c.WaitATCommit = true })

func TestCommitDeliversPhaseTwoAndReleasesLocks(t *testing.T) {
	for _, name := range []string{"memory", "badger"} {
		t.Run(name, func(t *testing.T) {
			var opts []tctest.Option
			if name == "badger" {
				opts = append(opts, tctest.WithBadger())
			}
			srv := tctest.Start(t, append(opts, waitAT)...)
			c := newClient(t, srv)
			rm := attachRM(t, srv.Conn(t), "db1", "db2")
			xid := c.begin(time.Minute)
			b1 := c.mustRegister(xid, "db1", "t:1", "t:2")
			b2 := c.mustRegister(xid, "db2", "t:1")
			if b1 != 1 || b2 != 2 {
				t.Errorf("branch ids = %d, %d; want 1, 2", b1, b2)
			}
			if n := len(c.locks()); n != 3 {
				t.Errorf("locks before commit = %d, want 3", n)
			}
			if got, err := c.commit(xid); err != nil || got != committed {
				t.Fatalf("Commit = %v, %v; want %v", got, err, committed)
			}
			if n := len(c.locks()); n != 0 {
				t.Errorf("locks after commit = %d, want 0", n)
			}
			want := map[string]int{"ACTION_KIND_COMMIT/" + xid + "/1": 1, "ACTION_KIND_COMMIT/" + xid + "/2": 1}
			if got := rm.effectCounts(); !mapsEqual(got, want) {
				t.Errorf("effects = %v, want %v", got, want)
			}
			if got, err := c.commit(xid); err != nil || got != committed {
				t.Errorf("second Commit = %v, %v; want %v, nil (safe to repeat)", got, err, committed)
			}
			if _, err := c.rollback(xid); !errors.Is(err, protocol.ErrCommitted) {
				t.Errorf("Rollback after commit: err = %v, want ErrCommitted", err)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRollbackInReverseOrder(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1", "db2")
	xid := c.begin(time.Minute)
	for i := 0; i < 4; i++ {
		c.mustRegister(xid, []string{"db1", "db2"}[i%2], fmt.Sprintf("t:%d", i))
	}
	if got, err := c.rollback(xid); err != nil || got != rollbacked {
		t.Fatalf("Rollback = %v, %v; want %v", got, err, rollbacked)
	}
	var order []int64
	for _, a := range rm.actions() {
		if a.GetKind() != actionRollbackKind {
			t.Errorf("action kind = %v, want rollback", a.GetKind())
		}
		order = append(order, a.GetBranchId())
	}
	if want := []int64{4, 3, 2, 1}; !slices.Equal(order, want) {
		t.Errorf("rollback order = %v, want %v (I9)", order, want)
	}
	if _, err := c.commit(xid); !errors.Is(err, protocol.ErrRolledBack) {
		t.Errorf("Commit after rollback: err = %v, want ErrRolledBack", err)
	}
	if got, err := c.rollback(xid); err != nil || got != rollbacked {
		t.Errorf("second Rollback = %v, %v; want %v, nil", got, err, rollbacked)
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks after rollback = %d, want 0", n)
	}
}

func TestLockConflict(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	attachRM(t, srv.Conn(t), "db1")
	x1 := c.begin(time.Minute)
	x2 := c.begin(time.Minute)
	c.mustRegister(x1, "db1", "t:1", "t:2")
	_, err := c.register(x2, "db1", "t:3", "t:2")
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc.Holder != x1 || lc.Key != "t:2" || lc.Resource != "db1" {
		t.Fatalf("conflicting RegisterBranch: err = %#v, want LockConflictError on t:2 held by %s", err, x1)
	}
	if !errors.Is(err, protocol.ErrLockConflict) {
		t.Errorf("errors.Is(%v, ErrLockConflict) = false", err)
	}
	// All or nothing: t:3 must not have been taken by x2.
	for _, l := range c.locks() {
		if l.GetXid() == x2 {
			t.Errorf("lock %v taken by the refused registration", l)
		}
	}
	// The same key in another resource is another row.
	c.mustRegister(x2, "db2", "t:2")
	// QueryLocks sees the holder, and not the caller's own locks.
	resp, err := xactpb.NewCoordinatorClient(srv.Conn(t)).QueryLocks(context.Background(), &xactpb.QueryLocksRequest{Xid: x2, ResourceId: "db1", LockKeys: []string{"t:1"}})
	if err != nil || resp.GetFree() || resp.GetHolderXid() != x1 {
		t.Errorf("QueryLocks = %v, %v; want held by %s", resp, err, x1)
	}
	resp, err = xactpb.NewCoordinatorClient(srv.Conn(t)).QueryLocks(context.Background(), &xactpb.QueryLocksRequest{Xid: x1, ResourceId: "db1", LockKeys: []string{"t:1"}})
	if err != nil || !resp.GetFree() {
		t.Errorf("QueryLocks by the holder = %v, %v; want free", resp, err)
	}
	if _, err := c.commit(x1); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	c.mustRegister(x2, "db1", "t:3", "t:2")
}

func TestRegisterRefused(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	attachRM(t, srv.Conn(t), "db1")

	committedXID := c.begin(time.Minute)
	c.mustRegister(committedXID, "db1", "a")
	c.commit(committedXID)
	rolledBackXID := c.begin(time.Minute)
	c.rollback(rolledBackXID)
	pendingXID := c.begin(time.Minute)
	c.mustRegister(pendingXID, "db1", "b")
	tests := []struct {
		name string
		xid  string
		want error
	}{
		{"unknown", "tc1:nope:1", protocol.ErrNotFound},
		{"committed", committedXID, protocol.ErrNotBegin},
		{"rolled back", rolledBackXID, protocol.ErrNotBegin},
	}
	for _, tt := range tests {
		if _, err := c.register(tt.xid, "db1", "z"); !errors.Is(err, tt.want) {
			t.Errorf("%s: RegisterBranch err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := c.register(committedXID, "db1", "zz"); err == nil {
		t.Fatal("registered into a finished global")
	}
	for _, l := range c.locks() {
		if l.GetKey() == "z" || l.GetKey() == "zz" {
			t.Errorf("refused registration left lock %v", l)
		}
	}
}

func TestTimeoutRollsBackAndRefusesLateBranch(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	xid := c.begin(150 * time.Millisecond)
	c.mustRegister(xid, "db1", "k1")
	eventually(t, "timeout rollback", func() bool { return c.status(xid) == timeoutRollbacked })
	if _, err := c.register(xid, "db1", "k2"); !errors.Is(err, protocol.ErrNotBegin) && !errors.Is(err, protocol.ErrTimedOut) {
		t.Errorf("late RegisterBranch: err = %v, want ErrNotBegin or ErrTimedOut", err)
	}
	if _, err := c.commit(xid); !errors.Is(err, protocol.ErrTimedOut) {
		t.Errorf("Commit after timeout: err = %v, want ErrTimedOut", err)
	}
	if got := rm.effectCounts()["ACTION_KIND_ROLLBACK/"+xid+"/1"]; got != 1 {
		t.Errorf("rollback effects = %d, want 1", got)
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks = %d, want 0 (I5)", n)
	}
}

func TestCommitAfterDeadlineBeforeScanIsRefused(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.ScanInterval = time.Hour }))
	c := newClient(t, srv)
	attachRM(t, srv.Conn(t), "db1")
	xid := c.begin(50 * time.Millisecond)
	c.mustRegister(xid, "db1", "k1")
	time.Sleep(100 * time.Millisecond)
	if _, err := c.register(xid, "db1", "k2"); !errors.Is(err, protocol.ErrTimedOut) {
		t.Errorf("RegisterBranch past deadline: err = %v, want ErrTimedOut", err)
	}
	if _, err := c.commit(xid); !errors.Is(err, protocol.ErrTimedOut) {
		t.Fatalf("Commit past deadline: err = %v, want ErrTimedOut", err)
	}
	eventually(t, "rollback", func() bool { return c.status(xid) == timeoutRollbacked })
}

func TestPhaseOneFailureForcesRollback(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	b2 := c.mustRegister(xid, "db1", "k2")
	if _, err := c.coord.ReportBranch(context.Background(), &xactpb.ReportBranchRequest{Xid: xid, BranchId: b2, Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED}); err != nil {
		t.Fatalf("ReportBranch: %v", err)
	}
	if _, err := c.commit(xid); !errors.Is(err, protocol.ErrRolledBack) {
		t.Fatalf("Commit with a failed branch: err = %v, want ErrRolledBack (I3)", err)
	}
	eventually(t, "rollback", func() bool { return c.status(xid) == rollbacked })
	for _, a := range rm.actions() {
		if a.GetKind() == actionCommitKind {
			t.Errorf("a branch got commit: %v", a)
		}
	}
}

func TestRMAttachesLate(t *testing.T) {
	srv := tctest.Start(t, waitAT)
	c := newClient(t, srv)
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	got, err := c.commit(xid)
	if err != nil || got != commitRetrying {
		t.Fatalf("Commit with no RM = %v, %v; want %v (decided, phase two pending)", got, err, commitRetrying)
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks after commit decision = %d, want 0", n)
	}
	rm := attachRM(t, srv.Conn(t), "db1")
	eventually(t, "commit after attach", func() bool { return c.status(xid) == committed })
	if got := rm.effectCounts()["ACTION_KIND_COMMIT/"+xid+"/1"]; got != 1 {
		t.Errorf("commit effects = %d, want 1 (I7)", got)
	}
}

func TestUnknownOutcomeRetriedThenParked(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.RetryBudget = 3 }))
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeUnknown, "database unreachable" })
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	c.mustRegister(xid, "db1", "k2")
	if _, err := c.rollback(xid); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	eventually(t, "parked", func() bool { return c.show(xid).GetGlobal().GetParked() })
	g := c.show(xid)
	if got, want := g.GetGlobal().GetStatus(), xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRY_TIMEOUT; got != want {
		t.Errorf("parked status = %v, want %v", got, want)
	}
	if got := g.GetGlobal().GetAttempts(); got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	if len(g.GetLocks()) != 2 {
		t.Errorf("parked rollback holds %d locks, want 2 (I5: visible while parked)", len(g.GetLocks()))
	}
	list, err := c.admin.ListGlobals(context.Background(), &xactpb.ListGlobalsRequest{ParkedOnly: true})
	if err != nil || len(list.GetGlobals()) != 1 || list.GetGlobals()[0].GetXid() != xid {
		t.Errorf("ListGlobals(parked) = %v, %v; want %s", list, err, xid)
	}
	// Only the last branch was tried: rollback stops at the first UNKNOWN.
	for _, a := range rm.actions() {
		if a.GetBranchId() != 2 {
			t.Errorf("action for branch %d before branch 2 was undone", a.GetBranchId())
		}
	}
	// The operator fixes the cause and resumes.
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeDone, "" })
	if _, err := c.admin.ForceCommit(context.Background(), &xactpb.ForceRequest{Xid: xid}); !errors.Is(protocol.FromStatus(err), protocol.ErrRolledBack) {
		t.Errorf("ForceCommit of a rollback: err = %v, want ErrRolledBack (I2)", err)
	}
	resp, err := c.admin.ForceRollback(context.Background(), &xactpb.ForceRequest{Xid: xid})
	if err != nil || resp.GetStatus() != rollbacked {
		t.Fatalf("ForceRollback = %v, %v; want %v", resp, err, rollbacked)
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks = %d, want 0", n)
	}
}

func TestFailedOutcomeParksAtOnce(t *testing.T) {
	srv := tctest.Start(t, waitAT)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeFailed, "dirty row" })
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	got, err := c.commit(xid)
	if err != nil || got != xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED {
		t.Fatalf("Commit = %v, %v; want COMMIT_FAILED (parked)", got, err)
	}
	g := c.show(xid)
	if !g.GetGlobal().GetParked() || g.GetBranches()[0].GetReason() != "dirty row" {
		t.Errorf("show = %v; want parked with the branch's reason", g)
	}
	if n := len(rm.actions()); n != 1 {
		t.Errorf("FAILED was retried: %d actions, want 1", n)
	}
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeDone, "" })
	resp, err := c.admin.ForceCommit(context.Background(), &xactpb.ForceRequest{Xid: xid})
	if err != nil || resp.GetStatus() != committed {
		t.Fatalf("ForceCommit = %v, %v; want %v", resp, err, committed)
	}
}

func TestRestartResumesPhaseTwo(t *testing.T) {
	srv := tctest.Start(t, tctest.WithBadger(), waitAT)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeUnknown, "not yet" })
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	c.mustRegister(xid, "db1", "k2")
	if got, err := c.commit(xid); err != nil || got != commitRetrying {
		t.Fatalf("Commit = %v, %v; want %v", got, err, commitRetrying)
	}
	rm.close()
	srv.Restart()
	c = newClient(t, srv)
	if got := c.status(xid); got != commitRetrying {
		t.Fatalf("status after restart = %v, want %v (I2)", got, commitRetrying)
	}
	rm2 := attachRM(t, srv.Conn(t), "db1")
	eventually(t, "commit after restart", func() bool { return c.status(xid) == committed })
	for k, v := range rm2.effectCounts() {
		if v != 1 {
			t.Errorf("effect %s happened %d times, want 1", k, v)
		}
	}
	if n := len(rm2.effectCounts()); n != 2 {
		t.Errorf("effects after restart = %d, want 2", n)
	}
}

func TestMalformedRequests(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.MaxLockKeys = 3; c.MaxAppDataBytes = 8 }))
	c := newClient(t, srv)
	xid := c.begin(time.Minute)
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"empty xid", func() error {
			_, err := c.coord.Commit(ctx, &xactpb.CommitRequest{})
			return err
		}, codes.InvalidArgument},
		{"negative timeout", func() error {
			_, err := c.coord.Begin(ctx, &xactpb.BeginRequest{TimeoutMs: -1})
			return err
		}, codes.InvalidArgument},
		{"timeout over max", func() error {
			_, err := c.coord.Begin(ctx, &xactpb.BeginRequest{TimeoutMs: int64(48 * time.Hour / time.Millisecond)})
			return err
		}, codes.InvalidArgument},
		{"too many keys", func() error {
			_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "r", LockKeys: []string{"a", "b", "c", "d"}})
			return err
		}, codes.ResourceExhausted},
		{"empty key", func() error {
			_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "r", LockKeys: []string{""}})
			return err
		}, codes.InvalidArgument},
		{"no resource", func() error {
			_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, LockKeys: []string{"a"}})
			return err
		}, codes.InvalidArgument},
		{"unknown branch type", func() error {
			_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "r", BranchType: 99})
			return err
		}, codes.InvalidArgument},
		{"app data too large", func() error {
			_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "r", ApplicationData: make([]byte, 9)})
			return err
		}, codes.ResourceExhausted},
		{"report phase two status", func() error {
			_, err := c.coord.ReportBranch(ctx, &xactpb.ReportBranchRequest{Xid: xid, BranchId: 1, Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_COMMITTED})
			return err
		}, codes.InvalidArgument},
		{"report unknown branch", func() error {
			_, err := c.coord.ReportBranch(ctx, &xactpb.ReportBranchRequest{Xid: xid, BranchId: 7, Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE})
			return err
		}, codes.NotFound},
		{"unknown xid", func() error {
			_, err := c.coord.Rollback(ctx, &xactpb.RollbackRequest{Xid: "tc1:x:1"})
			return err
		}, codes.NotFound},
	}
	for _, tt := range tests {
		if got := status.Code(tt.call()); got != tt.want {
			t.Errorf("%s: code = %v, want %v", tt.name, got, tt.want)
		}
	}
	g := c.show(xid)
	if g.GetGlobal().GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN || len(g.GetBranches()) != 0 || len(g.GetLocks()) != 0 {
		t.Errorf("malformed requests changed the global: %v", g)
	}
}

func TestToken(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.Token = "s3cret" }))
	c := newClient(t, srv)
	_, err := c.coord.Begin(context.Background(), &xactpb.BeginRequest{})
	if !errors.Is(protocol.FromStatus(err), protocol.ErrUnauthenticated) {
		t.Errorf("Begin without token: err = %v, want ErrUnauthenticated", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*tc.Config)
	}{
		{"empty addr", func(c *tc.Config) { c.ListenAddr = "" }},
		{"bad node id", func(c *tc.Config) { c.NodeID = "a:b" }},
		{"zero scan", func(c *tc.Config) { c.ScanInterval = 0 }},
		{"budget", func(c *tc.Config) { c.RetryBudget = 0 }},
		{"base over max", func(c *tc.Config) { c.RetryBase = time.Hour }},
		{"no store", func(c *tc.Config) { c.DataDir = "" }},
		{"keepalive under 1s", func(c *tc.Config) { c.KeepaliveTime = 500 * time.Millisecond }},
		{"zero keepalive timeout", func(c *tc.Config) { c.KeepaliveTimeout = 0 }},
	}
	for _, tt := range tests {
		cfg := tc.DefaultConfig()
		tt.mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", tt.name)
		}
		if _, err := tc.New(cfg); err == nil {
			t.Errorf("%s: New() = nil error, want one", tt.name)
		}
	}
	def := tc.DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestGracefulShutdownAnswersInFlightCommit(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	release := make(chan struct{})
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) {
		<-release
		return outcomeDone, ""
	})
	defer close(release)
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "k1")
	type answer struct {
		st  xactpb.GlobalStatus
		err error
	}
	got := make(chan answer, 1)
	go func() {
		st, err := c.commit(xid)
		got <- answer{st, err}
	}()
	eventually(t, "phase two in flight", func() bool { return len(rm.actions()) == 1 })
	srv.Stop()
	a := <-got
	if a.err != nil || a.st != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING {
		t.Fatalf("in-flight Commit during shutdown = %v, %v; want COMMITTING, nil (decided, durable)", a.st, a.err)
	}
	srv.Restart()
	c = newClient(t, srv)
	attachRM(t, srv.Conn(t), "db1")
	eventually(t, "commit after restart", func() bool { return c.status(xid) == committed })
}

func TestLazyBegin(t *testing.T) {
	srv := tctest.Start(t, waitAT)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	ctx := context.Background()
	res, err := c.coord.Reserve(ctx, &xactpb.ReserveRequest{})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	prefix := res.GetXidPrefix()
	other, _ := c.coord.Reserve(ctx, &xactpb.ReserveRequest{})
	if other.GetXidPrefix() == prefix {
		t.Fatalf("two Reserve calls gave the same namespace %q", prefix)
	}
	begin := &xactpb.BeginRequest{Name: "lazy", TimeoutMs: 60000}

	// The first registration begins the global.
	xid := prefix + "1"
	r, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "db1", LockKeys: []string{"k1"}, Begin: begin})
	if err != nil || r.GetBranchId() != 1 {
		t.Fatalf("RegisterBranch with begin = %v, %v; want branch 1", r, err)
	}
	// A second registration carrying begin too (a concurrent one) joins.
	r, err = c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "db1", LockKeys: []string{"k2"}, Begin: begin})
	if err != nil || r.GetBranchId() != 2 {
		t.Fatalf("second RegisterBranch with begin = %v, %v; want branch 2", r, err)
	}
	if g := c.show(xid).GetGlobal(); g.GetName() != "lazy" || g.GetTimeoutMs() != 60000 {
		t.Errorf("lazily begun global = %v; want name lazy, timeout 60s", g)
	}
	if st, err := c.commit(xid); err != nil || st != committed {
		t.Fatalf("Commit = %v, %v", st, err)
	}
	if got := len(rm.effectCounts()); got != 2 {
		t.Errorf("commit effects = %d, want 2", got)
	}

	// A first registration that is refused begins nothing: the TC does not
	// know the XID afterwards, and the TM's decision begins it.
	holder := c.begin(time.Minute)
	c.mustRegister(holder, "db1", "hot")
	refused := prefix + "f"
	_, err = c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: refused, ResourceId: "db1", LockKeys: []string{"hot"}, Begin: begin})
	if !errors.Is(protocol.FromStatus(err), protocol.ErrLockConflict) {
		t.Fatalf("first RegisterBranch on a held key = %v, want a lock conflict", err)
	}
	if _, err := c.coord.GetStatus(ctx, &xactpb.GetStatusRequest{Xid: refused}); !errors.Is(protocol.FromStatus(err), protocol.ErrNotFound) {
		t.Errorf("GetStatus after a refused first registration = %v, want ErrNotFound", err)
	}
	if resp, err := c.coord.Rollback(ctx, &xactpb.RollbackRequest{Xid: refused, Begin: begin}); err != nil || resp.GetStatus() != rollbacked {
		t.Errorf("Rollback(with begin) after a refused first registration = %v, %v; want %v", resp, err, rollbacked)
	}
	if st, err := c.rollback(holder); err != nil || st != rollbacked {
		t.Fatalf("Rollback(holder) = %v, %v", st, err)
	}

	// Deciding a lazily begun global the TC never saw: final at once, and a
	// late registration is refused by its tombstone.
	for _, commit := range []bool{true, false} {
		xid := prefix + map[bool]string{true: "c", false: "r"}[commit]
		var st xactpb.GlobalStatus
		var err error
		if commit {
			resp, e := c.coord.Commit(ctx, &xactpb.CommitRequest{Xid: xid, Begin: begin})
			st, err = resp.GetStatus(), e
		} else {
			resp, e := c.coord.Rollback(ctx, &xactpb.RollbackRequest{Xid: xid, Begin: begin})
			st, err = resp.GetStatus(), e
		}
		want := map[bool]xactpb.GlobalStatus{true: committed, false: rollbacked}[commit]
		if err != nil || st != want {
			t.Errorf("decide unseen lazy %s = %v, %v; want %v", xid, st, err, want)
		}
		_, err = c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "db1", LockKeys: []string{"late"}, Begin: begin})
		if !errors.Is(protocol.FromStatus(err), protocol.ErrNotBegin) {
			t.Errorf("late RegisterBranch after the decision: err = %v, want ErrNotBegin", err)
		}
	}

	// Explicit Begin of a reserved XID is safe to repeat while in Begin.
	xid = prefix + "e"
	for i := 0; i < 2; i++ {
		if _, err := c.coord.Begin(ctx, &xactpb.BeginRequest{Name: "lazy", Xid: xid}); err != nil {
			t.Fatalf("Begin(%s) #%d: %v", xid, i+1, err)
		}
	}
	c.commit(xid)
	if _, err := c.coord.Begin(ctx, &xactpb.BeginRequest{Xid: xid}); !errors.Is(protocol.FromStatus(err), protocol.ErrNotBegin) {
		t.Errorf("Begin after commit: err = %v, want ErrNotBegin", err)
	}

	// Only XIDs of a reserved namespace of this node may be begun lazily.
	for _, bad := range []string{"tc1:abc:7", "other:abc:r1.5", "tc1:abc:r1", "tc1:abc:r1.", "tc1:abc:rZ.1"} {
		_, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: bad, ResourceId: "db1", LockKeys: []string{"x"}, Begin: begin})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("RegisterBranch(%q) with begin: code %v, want InvalidArgument", bad, status.Code(err))
		}
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks left: %d", n)
	}
}

// holdRM makes rm's handler wait until the returned release is called
// (which the test's cleanup does too), then answer DONE.
func holdRM(t *testing.T, rm *testRM) (release func()) {
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release) // before rm's own cleanup, which waits for the handler
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) {
		<-hold
		return outcomeDone, ""
	})
	return release
}

// TestLocksReleasedAtCommitDecision: a global's locks are free as soon as
// its commit decision is durable, while its phase two is still running
// (I5); a rollback keeps them until its branch is undone.
func TestLocksReleasedAtCommitDecision(t *testing.T) {
	for _, name := range []string{"memory", "badger"} {
		t.Run(name, func(t *testing.T) {
			var opts []tctest.Option
			if name == "badger" {
				opts = append(opts, tctest.WithBadger())
			}
			srv := tctest.Start(t, append(opts, waitAT)...)
			c := newClient(t, srv)
			// One RM per resource: each holds its action in its handler.
			rm := attachRM(t, srv.Conn(t), "db1")
			rm2 := attachRM(t, srv.Conn(t), "db2")
			releaseA, releaseR := holdRM(t, rm), holdRM(t, rm2)
			type answer struct {
				st  xactpb.GlobalStatus
				err error
			}

			a := c.begin(time.Minute)
			c.mustRegister(a, "db1", "k")
			committedA := make(chan answer, 1)
			go func() {
				st, err := c.commit(a)
				committedA <- answer{st, err}
			}()
			eventually(t, "A's commit at the RM", func() bool { return len(rm.actions()) == 1 })
			// A's phase two is held at the RM; its decision is durable.
			if got := c.status(a); got != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING {
				t.Fatalf("A's status while its phase two is held = %v, want COMMITTING", got)
			}
			for _, l := range c.locks() {
				t.Errorf("lock %v held after A's commit decision", l)
			}
			if g, err := srv.Store().GetGlobal(context.Background(), a); err != nil || !g.LocksReleased {
				t.Errorf("stored A = %+v, %v; want LocksReleased with the decision", g, err)
			}
			b := c.begin(time.Minute)
			if _, err := c.register(b, "db1", "k"); err != nil {
				t.Fatalf("B's RegisterBranch(k) while A's phase two runs = %v, want nil (A's commit decision is durable)", err)
			}

			r := c.begin(time.Minute)
			c.mustRegister(r, "db2", "m")
			rolledBackR := make(chan answer, 1)
			go func() {
				st, err := c.rollback(r)
				rolledBackR <- answer{st, err}
			}()
			eventually(t, "R's rollback at the RM", func() bool { return len(rm2.actions()) == 1 })
			other := c.begin(time.Minute)
			_, err := c.register(other, "db2", "m")
			var lc *protocol.LockConflictError
			if !errors.As(err, &lc) || lc.Holder != r {
				t.Errorf("RegisterBranch(m) while R's rollback is not done = %v, want a conflict held by %s (I5)", err, r)
			}

			releaseA()
			releaseR()
			if got := <-committedA; got.err != nil || got.st != committed {
				t.Errorf("Commit(A) = %v, %v; want %v", got.st, got.err, committed)
			}
			if got := <-rolledBackR; got.err != nil || got.st != rollbacked {
				t.Errorf("Rollback(R) = %v, %v; want %v", got.st, got.err, rollbacked)
			}
			c.mustRegister(other, "db2", "m")
		})
	}
}

// TestCommitDecisionReleaseSurvivesRestart: the TC stops while a committed
// global's phase two is in flight, and its store is reopened: the locks
// released with the decision do not come back.
func TestCommitDecisionReleaseSurvivesRestart(t *testing.T) {
	srv := tctest.Start(t, tctest.WithBadger())
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	holdRM(t, rm)
	a := c.begin(time.Minute)
	c.mustRegister(a, "db1", "k1", "k2")
	go c.commit(a) // answered COMMITTING, or cut off by the stop
	eventually(t, "A's commit at the RM", func() bool { return len(rm.actions()) == 1 })
	srv.ReopenStore()
	ctx := context.Background()
	lg, err := ledger.Open(ctx, srv.Store()) // the lock table as the restarted server rebuilds it
	if err != nil {
		t.Fatal(err)
	}
	if locks, err := lg.Locks(ctx, "", 0); err != nil || len(locks) != 0 {
		t.Errorf("locks after reopening the store = %+v, %v; want none (A's commit decision released them)", locks, err)
	}
	if g, err := srv.Store().GetGlobal(ctx, a); err != nil || g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING || !g.LocksReleased {
		t.Errorf("A after reopening the store = %+v, %v; want COMMITTING with its locks released", g, err)
	}
	srv.Restart()
	c = newClient(t, srv)
	b := c.begin(time.Minute)
	c.mustRegister(b, "db1", "k1")
	attachRM(t, srv.Conn(t), "db1")
	eventually(t, "A committed after the restart", func() bool { return c.status(a) == committed })
}

// TestRecoveryReleasesLocksOfCommitDecided: a global whose commit was
// decided without releasing its locks (as an older xact did until the end
// of the first phase-two round) gets them released when the TC starts.
func TestRecoveryReleasesLocksOfCommitDecided(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	a := c.begin(time.Minute)
	c.mustRegister(a, "db1", "k1")
	r := c.begin(time.Minute)
	c.mustRegister(r, "db1", "k2")
	srv.Stop()
	ctx := context.Background()
	for xid, st := range map[string]xactpb.GlobalStatus{a: commitRetrying, r: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING} {
		// Parked: no phase-two round runs for them, only recovery.
		if _, err := srv.Store().UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			g.Status, g.Parked, g.NextAt = st, true, time.Time{}
			return nil
		}, storage.Durable); err != nil {
			t.Fatal(err)
		}
	}
	srv.Restart()
	c = newClient(t, srv)
	var got []string
	for _, l := range c.locks() {
		got = append(got, l.GetXid()+"/"+l.GetKey())
	}
	if want := []string{r + "/k2"}; !slices.Equal(got, want) {
		t.Errorf("locks after recovery = %v, want %v (the commit-decided global's released, the rollback's kept)", got, want)
	}
}

// TestRollbackReleasesEachBranchAfterItsUndo: a rollback frees a branch's
// rows once its undo is done, and keeps those of the branches still to be
// undone (I5, I9).
func TestRollbackReleasesEachBranchAfterItsUndo(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm1 := attachRM(t, srv.Conn(t), "db1")
	rm2 := attachRM(t, srv.Conn(t), "db2")
	release := holdRM(t, rm1)
	r := c.begin(time.Minute)
	c.mustRegister(r, "db1", "k1") // branch 1: undone last, held at rm1
	c.mustRegister(r, "db2", "k2") // branch 2: undone first
	done := make(chan error, 1)
	go func() {
		_, err := c.rollback(r)
		done <- err
	}()
	eventually(t, "branch 1's rollback at rm1", func() bool { return len(rm1.actions()) == 1 })
	if n := len(rm2.actions()); n != 1 {
		t.Fatalf("rm2 got %d actions, want branch 2's rollback", n)
	}
	other := c.begin(time.Minute)
	if _, err := c.register(other, "db2", "k2"); err != nil {
		t.Errorf("RegisterBranch(k2) after branch 2 was undone = %v, want nil", err)
	}
	_, err := c.register(other, "db1", "k1")
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc.Holder != r {
		t.Errorf("RegisterBranch(k1) while branch 1's undo is pending = %v, want a conflict held by %s", err, r)
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("Rollback = %v", err)
	}
	eventually(t, "rollback done", func() bool { return c.status(r) == rollbacked })
	c.mustRegister(other, "db1", "k1")
}

// TestATCommitAnswersAtDecision: Commit of a global whose branches are
// all AT answers once the decision is durable, while its phase two (the
// undo-log deletion) is still held at the RM; phase two then finishes on
// its own. DecisionWait is an hour: an answer that waited for phase two
// would not come before the release.
func TestATCommitAnswersAtDecision(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.DecisionWait = time.Hour }))
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	release := holdRM(t, rm)
	a := c.begin(time.Minute)
	c.mustRegister(a, "db1", "k")
	c.mustRegister(a, "db1", "l")
	answered := make(chan xactpb.GlobalStatus, 1)
	go func() {
		st, err := c.commit(a)
		if err != nil {
			t.Errorf("Commit = %v", err)
		}
		answered <- st
	}()
	select {
	case st := <-answered:
		if st != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING {
			t.Errorf("Commit = %v, want COMMITTING (decided, phase two running)", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Commit of an AT-only global did not answer while its phase two was held")
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("%d locks held after the commit decision, want 0", n)
	}
	release()
	eventually(t, "A committed", func() bool { return c.status(a) == committed })
}

// TestMixedCommitWaits: a global with a TCC branch beside its AT branch
// still waits for phase two (a confirm runs business code): its answer,
// given after the held RM is released, is COMMITTED.
func TestMixedCommitWaits(t *testing.T) {
	srv := tctest.Start(t, tctest.WithConfig(func(c *tc.Config) { c.DecisionWait = time.Hour }))
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1", "svc")
	release := holdRM(t, rm)
	a := c.begin(time.Minute)
	c.mustRegister(a, "db1", "k")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.coord.RegisterBranch(ctx, &xactpb.RegisterBranchRequest{Xid: a, ResourceId: "svc", BranchType: xactpb.BranchType_BRANCH_TYPE_TCC}); err != nil {
		t.Fatalf("RegisterBranch(TCC) = %v", err)
	}
	answered := make(chan xactpb.GlobalStatus, 1)
	go func() {
		st, err := c.commit(a)
		if err != nil {
			t.Errorf("Commit = %v", err)
		}
		answered <- st
	}()
	eventually(t, "a commit at the RM", func() bool { return len(rm.actions()) >= 1 })
	release()
	if st := <-answered; st != committed {
		t.Errorf("Commit = %v, want %v (it waits for phase two)", st, committed)
	}
}

// lateBranchStore registers a branch into xid right after the decision
// has read xid's branches (and found none), once: the window between that
// read and the decision's write. It adds the branch to the store as a
// registration does, admitted only while the global is in Begin (its row
// is not in the lock table: this test is about the decision).
type lateBranchStore struct {
	storage.Store
	once sync.Once
	xid  string
	id   chan int64
}

func (s *lateBranchStore) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	bs, err := s.Store.Branches(ctx, xid)
	if err == nil && xid == s.xid && len(bs) == 0 {
		s.once.Do(func() {
			b := &storage.Branch{XID: xid, Resource: "db1", Type: xactpb.BranchType_BRANCH_TYPE_AT, LockKeys: []string{"k"}}
			id, _, err := s.Store.AddBranch(ctx, b, nil, func(g *storage.Global) error {
				if g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
					return protocol.ErrNotBegin
				}
				return nil
			}, storage.Durable)
			if err != nil {
				panic(err)
			}
			s.id <- id
		})
	}
	return bs, err
}

// TestRollbackSeesBranchRegisteredDuringDecision: a branch registers
// between the decision's read of the branches (none) and its write. The
// global must not be finished without it: the branch is rolled back at
// its RM and the global ends ROLLBACKED with it.
func TestRollbackSeesBranchRegisteredDuringDecision(t *testing.T) {
	late := &lateBranchStore{id: make(chan int64, 1)}
	srv := tctest.Start(t, tctest.WithStoreWrapper(func(s storage.Store) storage.Store { late.Store = s; return late }))
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1")
	xid := c.begin(time.Minute)
	late.xid = xid
	if st, err := c.rollback(xid); err != nil || st != rollbacked {
		t.Fatalf("Rollback = %v, %v; want %v", st, err, rollbacked)
	}
	id := <-late.id
	var undone bool
	for _, a := range rm.actions() {
		if a.GetXid() == xid && a.GetBranchId() == id && a.GetKind() == xactpb.ActionKind_ACTION_KIND_ROLLBACK {
			undone = true
		}
	}
	if !undone {
		t.Errorf("branch %d, registered while the rollback was decided, was never rolled back (actions %v)", id, rm.actions())
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("%d locks left", n)
	}
}

// TestRollbackContinuesPastFailedBranch: one branch's unretryable failure
// parks the global, but the other branches are still rolled back and free
// their rows; only the failed branch keeps its locks.
func TestRollbackContinuesPastFailedBranch(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1", "db2")
	xid := c.begin(time.Minute)
	b1 := c.mustRegister(xid, "db1", "t:1")
	b2 := c.mustRegister(xid, "db2", "t:2")
	rm.setAnswer(func(a *xactpb.BranchAction) (xactpb.Outcome, string) {
		if a.GetBranchId() == b2 {
			return outcomeFailed, "undo_log table missing"
		}
		return outcomeDone, ""
	})
	got, err := c.rollback(xid)
	if err != nil || got != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED {
		t.Fatalf("Rollback = %v, %v; want ROLLBACK_FAILED (parked)", got, err)
	}
	var rolled []int64
	for _, a := range rm.actions() {
		rolled = append(rolled, a.GetBranchId())
	}
	if want := []int64{b2, b1}; !slices.Equal(rolled, want) {
		t.Errorf("rollback actions = %v, want %v: the failed branch must not stop the others", rolled, want)
	}
	show := c.show(xid)
	if !show.GetGlobal().GetParked() {
		t.Errorf("global not parked: %v", show.GetGlobal())
	}
	for _, b := range show.GetBranches() {
		want := xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACKED
		if b.GetBranchId() == b2 {
			want = xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE
		}
		if b.GetStatus() != want {
			t.Errorf("branch %d status = %v, want %v", b.GetBranchId(), b.GetStatus(), want)
		}
	}
	locks := c.locks()
	if len(locks) != 1 || locks[0].GetBranchId() != b2 {
		t.Errorf("locks = %v, want only the failed branch's t:2", locks)
	}
	// The operator fixes the participant and resumes: the failed branch
	// is sent again and the global finishes.
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeDone, "" })
	if _, err := c.admin.ForceRollback(context.Background(), &xactpb.ForceRequest{Xid: xid}); err != nil {
		t.Fatalf("ForceRollback: %v", err)
	}
	eventually(t, "rolled back after resume", func() bool { return c.status(xid) == rollbacked })
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks after resume = %d, want 0", n)
	}
}

// TestPhaseOneFailedATBranchIsDropped: an AT branch that reports
// PHASE_ONE_FAILED committed nothing. Its rows are free at once, the
// global can only roll back, and phase two sends it nothing (its database
// may be the broken one). PHASE_ONE_TIMEOUT (the commit may have
// happened) keeps the branch for phase two.
func TestPhaseOneFailedATBranchIsDropped(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1", "db2")
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "t:1")
	b2 := c.mustRegister(xid, "db2", "t:2")
	b3 := c.mustRegister(xid, "db2", "t:3")
	report := func(id int64, nothing bool) {
		t.Helper()
		if _, err := c.coord.ReportBranch(context.Background(), &xactpb.ReportBranchRequest{Xid: xid, BranchId: id,
			Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED, NothingCommitted: nothing}); err != nil {
			t.Fatalf("ReportBranch(%d): %v", id, err)
		}
	}
	report(b2, true)
	report(b3, false)
	held := map[int64]bool{}
	for _, l := range c.locks() {
		held[l.GetBranchId()] = true
	}
	if held[b2] || !held[b3] {
		t.Errorf("locks held by branches %v, want b3's (its commit may have happened) and not b2's", held)
	}
	x2 := c.begin(time.Minute)
	c.mustRegister(x2, "db2", "t:2") // free now
	if _, err := c.commit(xid); !errors.Is(err, protocol.ErrRolledBack) {
		t.Fatalf("Commit = %v, want ErrRolledBack", err)
	}
	eventually(t, "rolled back", func() bool { return c.status(xid) == rollbacked })
	for _, a := range rm.actions() {
		if a.GetXid() == xid && a.GetBranchId() == b2 {
			t.Errorf("phase two sent %v to the branch that committed nothing", a.GetKind())
		}
	}
	var sent []int64
	for _, a := range rm.actions() {
		if a.GetXid() == xid {
			sent = append(sent, a.GetBranchId())
		}
	}
	if want := []int64{b3, 1}; !slices.Equal(sent, want) {
		t.Errorf("rollback actions = %v, want %v", sent, want)
	}
}

// TestRollbackHoldsBackSharedRows: after a branch FAILED, an earlier AT
// branch that shares one of its rows is not sent (its dirty check could
// take the row for already undone), nor is a TCC branch (its rows are
// unknown); an earlier AT branch on other rows is rolled back. An
// operator's resume sends the rest, in order.
func TestRollbackHoldsBackSharedRows(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1", "db2", "tcc")
	xid := c.begin(time.Minute)
	b1 := c.mustRegister(xid, "db1", "t:1") // shares t:1 with b4: held back
	b2 := c.mustRegister(xid, "db2", "t:2") // independent: rolled back
	b3, err := c.coord.RegisterBranch(context.Background(), &xactpb.RegisterBranchRequest{
		Xid: xid, ResourceId: "tcc", BranchType: xactpb.BranchType_BRANCH_TYPE_TCC,
	})
	if err != nil {
		t.Fatal(err)
	}
	b4 := c.mustRegister(xid, "db1", "t:1", "t:5") // fails
	rm.setAnswer(func(a *xactpb.BranchAction) (xactpb.Outcome, string) {
		if a.GetBranchId() == b4 {
			return outcomeFailed, "dirty row t:5"
		}
		return outcomeDone, ""
	})
	if got, err := c.rollback(xid); err != nil || got != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED {
		t.Fatalf("Rollback = %v, %v; want ROLLBACK_FAILED (parked)", got, err)
	}
	var sent []int64
	for _, a := range rm.actions() {
		sent = append(sent, a.GetBranchId())
	}
	if want := []int64{b4, b2}; !slices.Equal(sent, want) {
		t.Errorf("rollback actions = %v, want %v (b3 is TCC and b1 shares t:1 with the failed b4)", sent, want)
	}
	rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) { return outcomeDone, "" })
	if _, err := c.admin.ForceRollback(context.Background(), &xactpb.ForceRequest{Xid: xid}); err != nil {
		t.Fatalf("ForceRollback: %v", err)
	}
	eventually(t, "rolled back after resume", func() bool { return c.status(xid) == rollbacked })
	sent = sent[:0]
	for _, a := range rm.actions()[2:] {
		sent = append(sent, a.GetBranchId())
	}
	if want := []int64{b4, b3.GetBranchId(), b1}; !slices.Equal(sent, want) {
		t.Errorf("actions after resume = %v, want %v", sent, want)
	}
}

// TestLateNothingCommittedReportDropsBranch: the global was decided
// (rollback) while an AT branch's undo insert was failing; the branch's
// late report that it committed nothing is accepted, and phase two stops
// sending it the rollback its broken database cannot answer.
func TestLateNothingCommittedReportDropsBranch(t *testing.T) {
	srv := tctest.Start(t)
	c := newClient(t, srv)
	rm := attachRM(t, srv.Conn(t), "db1", "db2")
	xid := c.begin(time.Minute)
	c.mustRegister(xid, "db1", "t:1")
	b2 := c.mustRegister(xid, "db2", "t:2")
	rm.setAnswer(func(a *xactpb.BranchAction) (xactpb.Outcome, string) {
		if a.GetBranchId() == b2 {
			return outcomeUnknown, "undo_log: Error 1146"
		}
		return outcomeDone, ""
	})
	if _, err := c.rollback(xid); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	eventually(t, "b2 answered at least once", func() bool { return len(rm.actions()) > 0 })
	_, err := c.coord.ReportBranch(context.Background(), &xactpb.ReportBranchRequest{Xid: xid, BranchId: b2,
		Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED, NothingCommitted: true})
	if err != nil {
		t.Fatalf("late ReportBranch(nothing committed) = %v, want it accepted", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.status(xid) != rollbacked {
		if time.Now().After(deadline) {
			t.Fatalf("not rolled back: %v", c.show(xid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(c.locks()); n != 0 {
		t.Errorf("locks after rollback = %d, want 0", n)
	}
	// A late report without the flag still changes nothing.
	x2 := c.begin(time.Minute)
	b := c.mustRegister(x2, "db2", "t:9")
	if _, err := c.rollback(x2); err != nil {
		t.Fatal(err)
	}
	_, err = c.coord.ReportBranch(context.Background(), &xactpb.ReportBranchRequest{Xid: x2, BranchId: b,
		Status: xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED})
	if !errors.Is(protocol.FromStatus(err), protocol.ErrNotBegin) {
		t.Errorf("late report without nothing_committed = %v, want ErrNotBegin", err)
	}
}
