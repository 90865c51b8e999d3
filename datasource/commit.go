package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/internal/tracing"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/undo"
)

// The branch's end: global-lock checks, the local commit that registers
// the branch and writes its undo log (txState's steps 2 to 4), reports
// of a failed phase one, and the lock-wait pacing.

// checkLocks asks the TC whether another global transaction holds any of
// keys, waiting within the lock-wait budget (or failing at once in an
// autocommit transaction, which the caller runs again).
func (ts *txState) checkLocks(ctx context.Context, keys []string) error {
	w := ts.c.c.newWaiter()
	for {
		qctx, cancel := context.WithTimeout(ctx, ts.c.c.cfg.commitTimeout)
		err := ts.c.c.cfg.rm.QueryLocks(qctx, ts.scope.xid, ts.c.c.cfg.resource, keys)
		cancel()
		var lc *protocol.LockConflictError
		if !errors.As(err, &lc) {
			if err != nil {
				return fmt.Errorf("datasource: check global locks: %w", err)
			}
			return nil
		}
		if ts.autocommit || lc.HolderRollingBack && !ts.c.c.cfg.waitRollback || !w.again(ctx) {
			return newLockConflict(lc, w.waited())
		}
	}
}

// commit ends the local transaction according to its scope.
func (ts *txState) commit() error {
	switch {
	case ts.aborted != nil:
		ts.rollback()
		return ts.abortedError()
	case ts.scope.xid != "" && len(ts.records) > 0:
		return ts.commitBranch()
	case ts.scope.globalLock && len(ts.keys) > 0:
		ctx := context.WithoutCancel(ts.ctx)
		if err := ts.checkLocks(ctx, ts.keys); err != nil {
			ts.rollback()
			return err
		}
	}
	// No records (reads, SELECT … FOR UPDATE, statements that changed no
	// row): nothing to undo, so no branch.
	return ts.inner.Commit()
}

// rollback rolls the local transaction back; its error is only logged,
// as the caller reports the reason it rolled back.
func (ts *txState) rollback() {
	if err := ts.inner.Rollback(); err != nil {
		ts.c.c.cfg.log.Warn("datasource: local rollback failed", "xid", ts.scope.xid, "resource", ts.c.c.cfg.resource, "err", err)
		ts.c.bad = true
	}
}

// commitBranch is phase one's commit: register, insert the undo log,
// commit locally (see txState), in the span "xact.at.local_commit".
func (ts *txState) commitBranch() (err error) {
	c := ts.c.c
	ctx, span := c.startLocalCommit(context.WithoutCancel(ts.ctx), ts)
	defer func() { tracing.End(span, err) }()
	log, err := undo.Encode(&undo.Log{Records: ts.records})
	if err != nil {
		ts.rollback()
		return fmt.Errorf("datasource: encode undo log: %w", err)
	}
	branchID, err := ts.register(ctx)
	if err != nil {
		ts.rollback()
		return err
	}
	setBranch(span, branchID)
	lg := c.cfg.log.With("xid", ts.scope.xid, "branch_id", branchID, "resource", c.cfg.resource)
	if h := c.cfg.hooks.afterRegister; h != nil {
		h(ts.scope.xid, branchID)
	}
	failpoint.Hit("datasource/commit/after-register")

	ictx, cancel := context.WithTimeout(ctx, c.cfg.commitTimeout)
	ictx, uspan := c.startUndoInsert(ictx, ts.scope.xid, branchID, len(log))
	_, err = ts.c.execDirect(ictx, undo.InsertLogSQL, []driver.NamedValue{
		{Ordinal: 1, Value: ts.scope.xid},
		{Ordinal: 2, Value: branchID},
		{Ordinal: 3, Value: undo.LogContext},
		{Ordinal: 4, Value: log},
		{Ordinal: 5, Value: int64(undo.StatusNormal)},
	})
	tracing.End(uspan, err)
	cancel()
	if err != nil {
		ts.rollback()
		if errno.Of(err) == errno.DupEntry {
			// The rollback's marker: the TC already rolled the branch
			// back, there is nothing to report.
			return fmt.Errorf("%w: %s branch %d: %w", ErrBranchRolledBack, ts.scope.xid, branchID, err)
		}
		// Nothing was committed (no commit was sent; the local
		// transaction is rolled back): the TC drops the branch and frees
		// its rows at once.
		ts.reportFailed(ctx, lg, branchID, true)
		return fmt.Errorf("datasource: insert undo log of %s branch %d: %w", ts.scope.xid, branchID, registered(err))
	}
	failpoint.Hit("datasource/commit/after-undo-insert")
	if err := ts.inner.Commit(); err != nil {
		// Committed or not, the TC rolls the branch back: with the undo
		// log if the commit happened, with a marker if it did not.
		ts.c.bad = true
		// The commit may have happened: the branch stays for phase two,
		// which compensates it if it committed.
		ts.reportFailed(ctx, lg, branchID, false)
		return fmt.Errorf("datasource: local commit of %s branch %d: %w", ts.scope.xid, branchID, registered(err))
	}
	failpoint.Hit("datasource/commit/after-local-commit")
	lg.Debug("datasource: branch committed locally", "records", len(ts.records), "locks", len(ts.keys))
	return nil
}

// registered hides driver.ErrBadConn in an error that happened after the
// branch registered: database/sql would run an autocommit statement again
// on another connection, registering a second branch beside the first,
// which reported its failure and dooms the global transaction.
func registered(err error) error {
	if errors.Is(err, driver.ErrBadConn) {
		return errors.New(err.Error())
	}
	return err
}

// register registers the branch with its lock keys, retrying lock
// conflicts within the lock-wait budget.
func (ts *txState) register(ctx context.Context) (int64, error) {
	c := ts.c.c
	w := c.newWaiter()
	for {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.commitTimeout)
		id, err := c.cfg.rm.RegisterBranch(rctx, ts.scope.xid, c.cfg.resource, xactpb.BranchType_BRANCH_TYPE_AT, ts.keys, nil)
		cancel()
		if err == nil {
			return id, nil
		}
		var lc *protocol.LockConflictError
		if !errors.As(err, &lc) {
			return 0, fmt.Errorf("datasource: register branch of %s on %s: %w", ts.scope.xid, c.cfg.resource, err)
		}
		// A holder that is rolling back needs this transaction's row
		// locks for its compensation: give up at once (WithLockWaitOnRollback).
		if ts.autocommit || lc.HolderRollingBack && !c.cfg.waitRollback || !w.again(ctx) {
			return 0, newLockConflict(lc, w.waited())
		}
	}
}

// reportFailed tells the TC that the branch's phase one failed after it
// registered, so that the global rolls back instead of committing a
// branch without its change (PHASE_ONE_FAILED); nothingCommitted says
// that no commit was ever sent, so the branch has nothing to compensate.
func (ts *txState) reportFailed(ctx context.Context, lg *slog.Logger, branchID int64, nothingCommitted bool) {
	c := ts.c.c
	rctx, cancel := context.WithTimeout(ctx, c.cfg.commitTimeout)
	defer cancel()
	var err error
	if nothingCommitted {
		err = c.cfg.rm.ReportNothingCommitted(rctx, ts.scope.xid, branchID)
	} else {
		err = c.cfg.rm.ReportBranch(rctx, ts.scope.xid, branchID, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_FAILED, nil)
	}
	if err != nil {
		// The TM's commit still cannot commit the branch's missing
		// change: phase-two commit only deletes undo logs. A rollback
		// finds no undo log and leaves the marker.
		lg.Warn("datasource: report of phase-one failure failed", "err", err)
	}
}

// waiter paces retries within the lock-wait budget, about one lock retry
// interval apart.
type waiter struct {
	start  time.Time
	budget time.Duration
	pace   backoff.Policy
}

func (c *Connector) newWaiter() *waiter {
	return &waiter{start: time.Now(), budget: c.cfg.lockWait, pace: backoff.Fixed(c.cfg.lockInterval)}
}

// again sleeps for about one interval and reports whether another
// attempt fits in the budget; false if it does not or ctx ended.
func (w *waiter) again(ctx context.Context) bool {
	d := w.pace.Delay(0)
	if time.Since(w.start)+d > w.budget {
		return false
	}
	return backoff.Sleep(ctx, d) == nil
}

func (w *waiter) waited() time.Duration { return time.Since(w.start) }
