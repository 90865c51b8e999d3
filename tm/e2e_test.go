package tm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// These tests run the Manager against a real in-process TC (tctest).

func newManager(t *testing.T, srv *tctest.Server) *tm.Manager {
	t.Helper()
	return tm.New(srv.Conn(t), tm.WithBackoff(5*time.Millisecond, 50*time.Millisecond), tm.WithDecisionTimeout(10*time.Second))
}

// status reads a global's status through the admin service (it also sees
// tombstones of finished globals).
func status(t *testing.T, srv *tctest.Server, xid string) xactpb.GlobalStatus {
	t.Helper()
	resp, err := xactpb.NewAdminClient(srv.Conn(t)).ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
	if err != nil {
		t.Fatalf("ShowGlobal(%s) = %v", xid, protocol.FromStatus(err))
	}
	return resp.GetGlobal().GetStatus()
}

// join registers a branch (with no RM behind it: phase two will wait) under
// ctx's global, so that the TC hears of a lazily begun transaction.
func join(t *testing.T, srv *tctest.Server, ctx context.Context) {
	t.Helper()
	xid, _ := tm.XID(ctx)
	begin, begun, err := tm.PendingBegin(ctx, xid)
	if err != nil {
		t.Fatalf("PendingBegin(%s): %v", xid, err)
	}
	_, err = xactpb.NewCoordinatorClient(srv.Conn(t)).RegisterBranch(ctx, &xactpb.RegisterBranchRequest{
		Xid: xid, ResourceId: "tm-test", BranchType: xactpb.BranchType_BRANCH_TYPE_SAGA, Begin: begin,
	})
	if err != nil {
		t.Fatalf("RegisterBranch(%s): %v", xid, err)
	}
	if begun != nil {
		begun()
	}
}

// TestE2ELazyBegin: a Do whose function registers nothing and sends its XID
// nowhere never reaches the TC; one that registers begins the global with
// its name and timeout; one that sends its XID over gRPC begins it first.
func TestE2ELazyBegin(t *testing.T) {
	srv := tctest.Start(t)
	m := newManager(t, srv)
	ctx := context.Background()
	var quiet string
	if err := m.Do(ctx, tm.Options{Name: "quiet"}, func(ctx context.Context) error {
		quiet, _ = tm.XID(ctx)
		return nil
	}); err != nil {
		t.Fatalf("Do() = %v", err)
	}
	if _, err := m.Status(ctx, quiet); !errors.Is(err, protocol.ErrNotFound) {
		t.Errorf("Status of a transaction that told the TC nothing: err = %v, want ErrNotFound", err)
	}
	err := m.Do(ctx, tm.Options{Name: "told", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		if err := tm.EnsureBegun(ctx); err != nil {
			return err
		}
		xid, _ := tm.XID(ctx)
		resp, err := xactpb.NewAdminClient(srv.Conn(t)).ShowGlobal(ctx, &xactpb.ShowGlobalRequest{Xid: xid})
		if err != nil {
			return err
		}
		if g := resp.GetGlobal(); g.GetName() != "told" || g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN || g.GetTimeoutMs() > 30000 || g.GetTimeoutMs() < 29000 {
			t.Errorf("after EnsureBegun the TC has %v; want Begin, name told, ~30s timeout", g)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do() = %v", err)
	}
	// A branch trying to join after Do decided is refused locally.
	var late context.Context
	m.Do(ctx, tm.Options{}, func(ctx context.Context) error { late = ctx; return nil })
	xid, _ := tm.XID(late)
	if _, _, err := tm.PendingBegin(late, xid); !errors.Is(err, tm.ErrEnded) {
		t.Errorf("PendingBegin after Do ended = %v, want ErrEnded", err)
	}
}

func TestE2EDo(t *testing.T) {
	srv := tctest.Start(t)
	m := newManager(t, srv)
	ctx := context.Background()
	errBusiness := errors.New("business failed")

	tests := []struct {
		name    string
		fnErr   error
		want    xactpb.GlobalStatus
		wantErr error
	}{
		{"commit", nil, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, nil},
		{"rollback", errBusiness, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, errBusiness},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var xid string
			err := m.Do(ctx, tm.Options{Name: tt.name, Timeout: 10 * time.Second}, func(ctx context.Context) error {
				xid, _ = tm.XID(ctx)
				join(t, srv, ctx)
				return tt.fnErr
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Do() = %v, want %v", err, tt.wantErr)
			}
			if got := status(t, srv, xid); !tm.DecidedCommit(got) && !tm.DecidedRollback(got) || tm.DecidedCommit(got) != tm.DecidedCommit(tt.want) {
				t.Errorf("status(%s) = %v, want %v", xid, got, tt.want)
			}
			if got, err := m.Status(ctx, xid); err != nil || tm.DecidedCommit(got) != tm.DecidedCommit(tt.want) {
				t.Errorf("Status(%s) = %v, %v, want %v", xid, got, err, tt.want)
			}
		})
	}
}

// TestE2EDoOutcomes: the three outcomes of Do against a real TC.
// Committed: nil. Rolled back: fn's error. Unknown (the TC is unreachable
// for the rollback): an error matching ErrUnknownOutcome and not fn's
// error — and indeed the transaction is still undecided, and can still
// commit, once the TC is back.
func TestE2EDoOutcomes(t *testing.T) {
	srv := tctest.Start(t)
	ctx := context.Background()
	errBusiness := errors.New("business failed")
	m := tm.New(srv.Conn(t), tm.WithBackoff(5*time.Millisecond, 50*time.Millisecond), tm.WithDecisionTimeout(500*time.Millisecond))

	run := func(fn func(ctx context.Context) error) (string, error) {
		var xid string
		err := m.Do(ctx, tm.Options{Name: t.Name(), Timeout: time.Minute}, func(ctx context.Context) error {
			xid, _ = tm.XID(ctx)
			join(t, srv, ctx)
			return fn(ctx)
		})
		return xid, err
	}

	xid, err := run(func(context.Context) error { return nil })
	if err != nil || !tm.DecidedCommit(status(t, srv, xid)) {
		t.Fatalf("committed: Do() = %v, status %v; want nil, committed", err, status(t, srv, xid))
	}

	xid, err = run(func(context.Context) error { return errBusiness })
	if !errors.Is(err, errBusiness) || errors.Is(err, tm.ErrUnknownOutcome) || !tm.DecidedRollback(status(t, srv, xid)) {
		t.Fatalf("rolled back: Do() = %v, status %v; want %v, rolled back", err, status(t, srv, xid), errBusiness)
	}

	xid, err = run(func(context.Context) error {
		srv.Stop() // the rollback cannot reach the TC
		return errBusiness
	})
	var oe *tm.OutcomeError
	if !errors.Is(err, tm.ErrUnknownOutcome) || errors.Is(err, errBusiness) || !errors.As(err, &oe) {
		t.Fatalf("unknown: Do() = %v, want ErrUnknownOutcome, an *OutcomeError, and not %v", err, errBusiness)
	}
	if oe.XID != xid || oe.BusinessErr() != errBusiness {
		t.Errorf("OutcomeError XID %q, BusinessErr %v; want %q, %v", oe.XID, oe.BusinessErr(), xid, errBusiness)
	}
	srv.Restart()
	if got := status(t, srv, xid); got != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
		t.Fatalf("after the unknown outcome the TC has %v, want BEGIN (undecided)", got)
	}
	// Undecided means it may still commit: a report of "rolled back"
	// would have been wrong.
	if st, err := m.Commit(ctx, xid); err != nil || !tm.DecidedCommit(st) {
		t.Fatalf("Commit(%s) = %v, %v, want committed", xid, st, err)
	}
}

// TestE2ETimedOut: fn outlives the global's timeout and returns nil anyway;
// the TC has rolled it back, and Do says so. (Without a branch the TC never
// hears of it; Do still says it timed out: see TestE2ELazyTimedOut.)
func TestE2ETimedOut(t *testing.T) {
	srv := tctest.Start(t)
	m := newManager(t, srv)
	var xid string
	err := m.Do(context.Background(), tm.Options{Timeout: 100 * time.Millisecond}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		join(t, srv, ctx)
		<-ctx.Done() // the global's deadline
		time.Sleep(50 * time.Millisecond)
		return nil
	})
	if !errors.Is(err, tm.ErrRolledBack) || !errors.Is(err, protocol.ErrTimedOut) {
		t.Fatalf("Do() = %v, want tm.ErrRolledBack and protocol.ErrTimedOut", err)
	}
	if got := status(t, srv, xid); !tm.DecidedRollback(got) {
		t.Errorf("status = %v, want a rollback status", got)
	}
}

func TestE2EPropagation(t *testing.T) {
	srv := tctest.Start(t)
	m := newManager(t, srv)
	ctx := context.Background()
	errInner := errors.New("inner failed")

	// The outer global fails after a RequiresNew inner one committed: the
	// inner stays committed. A Required inner joins the outer.
	var outer, joined, inner string
	err := m.Do(ctx, tm.Options{Name: "outer"}, func(ctx context.Context) error {
		outer, _ = tm.XID(ctx)
		join(t, srv, ctx)
		if err := m.Do(ctx, tm.Options{Propagation: tm.Required}, func(ctx context.Context) error {
			joined, _ = tm.XID(ctx)
			return nil
		}); err != nil {
			return err
		}
		if err := m.Do(ctx, tm.Options{Name: "inner", Propagation: tm.RequiresNew}, func(ctx context.Context) error {
			inner, _ = tm.XID(ctx)
			join(t, srv, ctx)
			return nil
		}); err != nil {
			return err
		}
		if err := m.Do(ctx, tm.Options{Propagation: tm.NotSupported}, func(ctx context.Context) error {
			if x, ok := tm.XID(ctx); ok {
				t.Errorf("NotSupported: fn saw XID %s", x)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := m.Do(ctx, tm.Options{Propagation: tm.Never}, func(context.Context) error { return nil }); !errors.Is(err, tm.ErrTransactionExists) {
			t.Errorf("Never inside a global = %v, want ErrTransactionExists", err)
		}
		return errInner
	})
	if !errors.Is(err, errInner) {
		t.Fatalf("Do() = %v, want %v", err, errInner)
	}
	if joined != outer || inner == outer || inner == "" {
		t.Fatalf("outer %q, joined %q, inner %q: want joined == outer != inner", outer, joined, inner)
	}
	if got := status(t, srv, outer); !tm.DecidedRollback(got) {
		t.Errorf("outer status = %v, want a rollback", got)
	}
	if got := status(t, srv, inner); !tm.DecidedCommit(got) {
		t.Errorf("inner (RequiresNew) status = %v, want a commit", got)
	}
	if err := m.Do(ctx, tm.Options{Propagation: tm.Mandatory}, func(context.Context) error { return nil }); !errors.Is(err, tm.ErrNoTransaction) {
		t.Errorf("Mandatory outside a global = %v, want ErrNoTransaction", err)
	}
}

// TestE2ECommitAcrossRestart: a commit asked while the TC is down is
// retried until the TC is back, and succeeds.
func TestE2ECommitAcrossRestart(t *testing.T) {
	srv := tctest.Start(t)
	m := newManager(t, srv)
	ctx, xid, err := m.Begin(context.Background(), "restart", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	type result struct {
		st  xactpb.GlobalStatus
		err error
	}
	done := make(chan result, 1)
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		st, err := m.Commit(cctx, xid)
		done <- result{st, err}
	}()
	cancel() // a caller that gives up does not stop the commit
	time.Sleep(200 * time.Millisecond)
	srv.Restart()
	r := <-done
	if r.err != nil || !tm.DecidedCommit(r.st) {
		t.Fatalf("Commit() across restart = %v, %v, want committed", r.st, r.err)
	}
}

func TestE2ELazyTimedOut(t *testing.T) {
	srv := tctest.Start(t)
	m := newManager(t, srv)
	err := m.Do(context.Background(), tm.Options{Timeout: 50 * time.Millisecond}, func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
	if !errors.Is(err, tm.ErrRolledBack) || !errors.Is(err, protocol.ErrTimedOut) {
		t.Fatalf("Do() = %v, want tm.ErrRolledBack and protocol.ErrTimedOut", err)
	}
}
