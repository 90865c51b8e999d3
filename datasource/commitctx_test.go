package datasource

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
)

// TestCommitOutlivesBeginContext: the context given to BeginTx is
// cancelled after the branch registered, before its undo log is written.
// The commit goes on detached from it: the undo log is inserted, the
// local transaction commits and the global commits.
func TestCommitOutlivesBeginContext(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	var cancelBegin context.CancelFunc
	hooked := false
	d := e.newDB(t, nil, withAfterRegister(func(xid string, branchID int64) {
		// Runs inside tx.Commit, on the test's goroutine.
		hooked = true
		cancelBegin()
	}))
	d.accounts(1)
	var xid string
	var commitErr error
	err := e.tm.Do(context.Background(), tm.Options{Name: "cancelled-begin", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancelBegin = cancel
		tx, err := d.db.BeginTx(bctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(bctx, "UPDATE account SET balance = balance - ? WHERE id = ?", 30, 1); err != nil {
			return err
		}
		commitErr = tx.Commit()
		if bctx.Err() == nil {
			t.Error("the BeginTx context was not cancelled during the commit")
		}
		if commitErr != nil {
			return commitErr
		}
		// Phase one wrote the undo log; the global is not decided yet.
		if n, m := d.undoLogs(); n != 1 || m != 0 {
			t.Errorf("undo_log after the local commit = %d logs, %d markers, want 1 and 0", n, m)
		}
		return nil
	})
	if !hooked {
		t.Fatal("the after-register hook did not run")
	}
	if commitErr != nil {
		t.Fatalf("Commit with its BeginTx context cancelled after registration = %v, want nil", commitErr)
	}
	if err != nil {
		t.Fatalf("Do = %v", err)
	}
	if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
		t.Fatalf("global %v (parked %v, %q), want COMMITTED", g.GetStatus(), g.GetParked(), g.GetReason())
	}
	if got, want := d.balance(1), 70; got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	eventually(t, func() error {
		if n, m := d.undoLogs(); n != 0 || m != 0 {
			return errors.New("undo_log not emptied by phase-two commit")
		}
		return nil
	})
}

// stallTC is a coordinator that accepts RegisterBranch and never answers
// it; it reports how much time each call's deadline left when it arrived.
type stallTC struct {
	xactpb.UnimplementedCoordinatorServer
	arrived chan time.Duration
}

func (s *stallTC) RegisterBranch(ctx context.Context, _ *xactpb.RegisterBranchRequest) (*xactpb.RegisterBranchResponse, error) {
	left := time.Duration(-1) // no deadline
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	select {
	case s.arrived <- left:
	default:
	}
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// registerVia sends RegisterBranch to one connection and every other call
// (Attach, ReportBranch, QueryLocks, ...) to another.
type registerVia struct {
	grpc.ClientConnInterface
	register grpc.ClientConnInterface
}

func (r registerVia) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if method == xactpb.Coordinator_RegisterBranch_FullMethodName {
		return r.register.Invoke(ctx, method, args, reply, opts...)
	}
	return r.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

// TestCommitTimeoutBoundsRegistration: the TC accepts the registration
// and never answers. With WithCommitTimeout(200ms) the commit gives up
// with an error wrapping context.DeadlineExceeded (the RM's own RPC
// timeout is far longer), and the local transaction is rolled back:
// the row is unchanged and unlocked, and no undo log was written.
func TestCommitTimeoutBoundsRegistration(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)

	stall := &stallTC{arrived: make(chan time.Duration, 1)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	xactpb.RegisterCoordinatorServer(gs, stall)
	served := make(chan struct{})
	go func() { defer close(served); gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-served })
	sc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })

	// An RM whose registrations go to the silent coordinator; its RPC
	// timeout is far above the commit timeout.
	r := rm.New(registerVia{ClientConnInterface: e.conn, register: sc}, rm.WithRPCTimeout(time.Minute))
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const commitTimeout = 200 * time.Millisecond
	saved := e.rm
	e.rm = r
	d := e.newDB(t, nil, WithCommitTimeout(commitTimeout))
	e.rm = saved
	d.accounts(1)
	before := d.dump("account")

	var commitErr error
	err = e.tm.Do(context.Background(), tm.Options{Name: "silent-tc", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ?", 30, 1); err != nil {
			return err
		}
		commitErr = tx.Commit()
		return commitErr
	})
	if !errors.Is(commitErr, context.DeadlineExceeded) {
		t.Fatalf("Commit against a silent TC = %v, want an error wrapping %v", commitErr, context.DeadlineExceeded)
	}
	if err == nil {
		t.Error("Do = nil after a failed commit")
	}
	select {
	case left := <-stall.arrived:
		// The call carried the commit timeout, not the RM's minute.
		if left <= 0 || left > commitTimeout {
			t.Errorf("RegisterBranch arrived with %v of deadline left, want at most the commit timeout %v", left, commitTimeout)
		}
	default:
		t.Fatal("the registration never reached the silent coordinator")
	}
	if got := d.dump("account"); !equalRows(got, before) {
		t.Errorf("account = %v, want %v (rolled back)", got, before)
	}
	if n, m := d.undoLogs(); n != 0 || m != 0 {
		t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
	}
	// No transaction kept the row locked: NOWAIT fails at once if one did.
	tx, err := d.raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var b int
	if err := tx.QueryRow("SELECT balance FROM account WHERE id = 1 FOR UPDATE NOWAIT").Scan(&b); err != nil {
		t.Errorf("row still locked after the failed commit: %v", err)
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}
