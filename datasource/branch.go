package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/xact-io/xact/datasource/mysql"
	"github.com/xact-io/xact/datasource/mysql/errno"
	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/undo"
)

// txState is the AT-mode state of one local transaction: the undo records
// and row lock keys its statements produced.
//
// Phase one of a branch keeps this order, each step only if the previous
// one succeeded:
//
//  1. every DML statement is planned by the dialect (refused with
//     ErrUnsupported before it runs if its undo cannot be built), its
//     before image read FOR UPDATE, the statement run, its after image
//     read, and its records and keys kept here;
//  2. at commit, the branch is registered with all its lock keys (the TC
//     takes them all or none; on a conflict the registration is retried
//     within the lock-wait budget);
//  3. the undo log is inserted in the same local transaction, keyed by
//     (xid, branch_id); if phase two already rolled the branch back, its
//     "global finished" marker makes the insert fail (I8) and nothing is
//     committed;
//  4. the local transaction commits. If step 3 fails, nothing was
//     committed: the branch is reported PHASE_ONE_FAILED with
//     nothing_committed, the TC frees its rows at once, rolls the global
//     back and skips the branch. If step 4 fails the commit may have
//     happened: PHASE_ONE_FAILED alone, and the rollback compensates it,
//     or finds no undo log and leaves the marker.
type txState struct {
	// ctx is the context the transaction was begun with. Commit uses its
	// values, detached from its cancellation.
	ctx   context.Context
	c     *conn
	scope scope
	inner driver.Tx
	// autocommit marks the wrapper's own transaction around one
	// statement: a lock conflict fails at once, and conn.autocommit runs
	// the whole transaction again after a pause, holding nothing.
	autocommit bool

	records []undo.Record
	keys    []string // lock keys of written rows, in order, without repeats
	seen    map[string]struct{}
	// marks are the transaction's savepoints, oldest first, as the
	// database keeps them (see savepoint).
	marks []mark
	// aborted is why the transaction can only be rolled back.
	aborted error
}

// mark is a savepoint: how many undo records and lock keys the
// transaction had when it was set.
type mark struct {
	key     string // mysql.Savepoint.Key: the name as the server compares it
	records int
	keys    int
}

func newTxState(ctx context.Context, c *conn, s scope, inner driver.Tx, autocommit bool) *txState {
	return &txState{ctx: ctx, c: c, scope: s, inner: inner, autocommit: autocommit}
}

func (ts *txState) abort(err error) {
	if ts.aborted == nil {
		ts.aborted = err
	}
}

// noteErr looks at a statement's own error: a deadlock makes InnoDB roll
// the whole transaction back, after which later statements would run
// outside it; so does a lock-wait timeout on a server started with
// innodb_rollback_on_timeout.
func (ts *txState) noteErr(err error) {
	switch errno.Of(err) {
	case errno.LockDeadlock:
		ts.abort(err)
	case errno.LockWaitTimeout:
		if ts.c.rollsBackOnTimeout() {
			ts.abort(err)
		}
	}
}

func (ts *txState) abortedError() error {
	return fmt.Errorf("%w: %w", ErrAborted, ts.aborted)
}

// plan plans st for this transaction; nil for statements that need
// nothing (their kind is KindOther).
func (ts *txState) plan(ctx context.Context, st *mysql.Statement, args []driver.NamedValue) (*mysql.Plan, error) {
	if ts.aborted != nil {
		return nil, ts.abortedError()
	}
	if st.Kind() == mysql.KindOther {
		return nil, nil
	}
	p, err := ts.c.c.dialect.PrepareStatement(ctx, ts.c.inner, st, args)
	if err != nil {
		if errors.Is(err, mysql.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		ts.noteErr(err)
		return nil, fmt.Errorf("datasource: plan statement: %w", err)
	}
	return p, nil
}

// before runs the plan's first half and, for SELECT … FOR UPDATE, checks
// that no other global transaction holds the rows it is about to lock.
func (ts *txState) before(ctx context.Context, p *mysql.Plan) error {
	if err := p.Before(ctx, ts.c.inner); err != nil {
		ts.noteErr(err)
		return fmt.Errorf("datasource: before image: %w", err)
	}
	if p.Kind() == mysql.KindSelectForUpdate && len(p.LockKeys()) > 0 {
		return ts.checkLocks(ctx, p.LockKeys())
	}
	return nil
}

// after runs the plan's second half and keeps its records and keys. The
// statement has run: any failure here aborts the transaction, since its
// undo would be incomplete.
func (ts *txState) after(ctx context.Context, p *mysql.Plan, res driver.Result) error {
	if p.Kind() == mysql.KindSelectForUpdate {
		return nil
	}
	if p.Returning() {
		res = nil
	}
	if err := p.After(ctx, ts.c.inner, res); err != nil {
		ts.abort(err)
		return ts.abortedError()
	}
	ts.keep(p.Records(), p.LockKeys())
	return nil
}

// keep adds a statement's undo records (in a branch; a global-lock
// transaction has none) and the lock keys it did not have yet.
func (ts *txState) keep(records []undo.Record, keys []string) {
	if ts.scope.xid != "" {
		ts.records = append(ts.records, records...)
	}
	for _, k := range keys {
		if ts.seen == nil {
			ts.seen = make(map[string]struct{})
		}
		if _, ok := ts.seen[k]; !ok {
			ts.seen[k] = struct{}{}
			ts.keys = append(ts.keys, k)
		}
	}
}

// savepoint runs a SAVEPOINT, ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT
// statement through run, then moves the transaction's marks as the
// database moved its savepoints, only if the database accepted the
// statement: its error (ER_SP_DOES_NOT_EXIST for an unknown name) is
// returned as it is, and changes nothing here.
//
// ROLLBACK TO drops the undo records and lock keys taken after the
// savepoint. The database has undone those changes itself: replaying
// their records at a global rollback would compare rows with after
// images that no longer exist and fail as dirty. The lock keys dropped
// are exactly those first taken after the savepoint, so every remaining
// record's rows keep theirs; a row written only after the savepoint is
// unchanged at commit and needs no global lock (InnoDB keeps its local
// row lock until the end of the transaction all the same).
func (ts *txState) savepoint(st *mysql.Statement, run func() error) error {
	if ts.aborted != nil {
		return ts.abortedError()
	}
	sp := st.Savepoint()
	i := slices.IndexFunc(ts.marks, func(m mark) bool { return m.key == sp.Key() })
	if err := run(); err != nil {
		ts.noteErr(err)
		if i >= 0 && errno.Of(err) == errno.SPDoesNotExist {
			// The database lost a savepoint it had accepted: something
			// ended the transaction behind the wrapper's back.
			ts.abort(fmt.Errorf("the database no longer has savepoint %s: %w", sp.Name, err))
		}
		return err
	}
	if sp.Op != mysql.SavepointSet && i < 0 {
		// The database knew a savepoint the wrapper did not see set;
		// the undo records cannot be matched with its changes any more.
		ts.abort(fmt.Errorf("%s %s: the database had a savepoint the wrapper did not see set", sp.Op, sp.Name))
		return ts.abortedError()
	}
	switch sp.Op {
	case mysql.SavepointSet:
		if i >= 0 {
			ts.marks = slices.Delete(ts.marks, i, i+1)
		}
		ts.marks = append(ts.marks, mark{key: sp.Key(), records: len(ts.records), keys: len(ts.keys)})
	case mysql.SavepointRollback:
		m := ts.marks[i]
		ts.marks = ts.marks[:i+1]
		clear(ts.records[m.records:])
		ts.records = ts.records[:m.records]
		for _, k := range ts.keys[m.keys:] {
			delete(ts.seen, k)
		}
		clear(ts.keys[m.keys:])
		ts.keys = ts.keys[:m.keys]
	case mysql.SavepointRelease:
		ts.marks = ts.marks[:i]
	}
	return nil
}

// exec runs a statement through run, captured.
func (ts *txState) exec(ctx context.Context, st *mysql.Statement, args []driver.NamedValue, run func(context.Context) (driver.Result, error)) (driver.Result, error) {
	if st.Kind() == mysql.KindSavepoint {
		var res driver.Result
		err := ts.savepoint(st, func() (err error) {
			res, err = run(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	p, err := ts.plan(ctx, st, args)
	if err != nil {
		return nil, err
	}
	if p == nil {
		res, err := run(ctx)
		ts.noteErr(err)
		return res, err
	}
	if err := ts.before(ctx, p); err != nil {
		return nil, err
	}
	res, err := run(ctx)
	if err != nil {
		ts.noteErr(err)
		return nil, err
	}
	if err := ts.after(ctx, p, res); err != nil {
		return nil, err
	}
	return res, nil
}

// query runs a statement that returns rows through run, captured. Rows of
// a statement with an undo (MariaDB's RETURNING) are read into memory
// first, as its after image can only be read once they are; so are the
// rows of the wrapper's own autocommit transaction, which commits before
// they are returned.
func (ts *txState) query(ctx context.Context, st *mysql.Statement, args []driver.NamedValue, run func(context.Context) (driver.Rows, error)) (driver.Rows, error) {
	if st.Kind() == mysql.KindSavepoint {
		var rows driver.Rows
		err := ts.savepoint(st, func() (err error) {
			rows, err = run(ctx)
			return err
		})
		if err != nil {
			if rows != nil {
				rows.Close()
			}
			return nil, err
		}
		return rows, nil
	}
	p, err := ts.plan(ctx, st, args)
	if err != nil {
		return nil, err
	}
	if p != nil {
		if err := ts.before(ctx, p); err != nil {
			return nil, err
		}
	}
	rows, err := run(ctx)
	if err != nil {
		ts.noteErr(err)
		return nil, err
	}
	if !ts.autocommit && (p == nil || p.Kind() == mysql.KindSelectForUpdate) {
		return rows, nil
	}
	buf, err := bufferRows(rows)
	if err != nil {
		if p != nil && p.Kind() != mysql.KindSelectForUpdate {
			ts.abort(err)
			return nil, ts.abortedError()
		}
		ts.noteErr(err)
		return nil, err
	}
	if p != nil {
		if err := ts.after(ctx, p, nil); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

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
// commit locally (see txState).
func (ts *txState) commitBranch() error {
	c := ts.c.c
	ctx := context.WithoutCancel(ts.ctx)
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
	lg := c.cfg.log.With("xid", ts.scope.xid, "branch_id", branchID, "resource", c.cfg.resource)
	if h := c.cfg.hooks.afterRegister; h != nil {
		h(ts.scope.xid, branchID)
	}
	failpoint.Hit("datasource/commit/after-register")

	ictx, cancel := context.WithTimeout(ctx, c.cfg.commitTimeout)
	_, err = ts.c.execDirect(ictx, undo.InsertLogSQL, []driver.NamedValue{
		{Ordinal: 1, Value: ts.scope.xid},
		{Ordinal: 2, Value: branchID},
		{Ordinal: 3, Value: undo.LogContext},
		{Ordinal: 4, Value: log},
		{Ordinal: 5, Value: int64(undo.StatusNormal)},
	})
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
