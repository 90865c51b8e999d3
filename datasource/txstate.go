package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/internal/tracing"
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
	key     string // mysqldialect.Savepoint.Key: the name as the server compares it
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
func (ts *txState) plan(ctx context.Context, st *mysqldialect.Statement, args []driver.NamedValue) (*mysqldialect.Plan, error) {
	if ts.aborted != nil {
		return nil, ts.abortedError()
	}
	if st.Kind() == mysqldialect.KindOther {
		return nil, nil
	}
	p, err := ts.c.c.dialect.PrepareStatement(ctx, ts.c.inner, st, args)
	if err != nil {
		if errors.Is(err, mysqldialect.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		ts.noteErr(err)
		return nil, fmt.Errorf("datasource: plan statement: %w", err)
	}
	return p, nil
}

// before runs the plan's first half and, for SELECT … FOR UPDATE, checks
// that no other global transaction holds the rows it is about to lock.
func (ts *txState) before(ctx context.Context, p *mysqldialect.Plan) error {
	if err := ts.beforeImage(ctx, p); err != nil {
		ts.noteErr(err)
		return fmt.Errorf("datasource: before image: %w", err)
	}
	if p.Kind() == mysqldialect.KindSelectForUpdate && len(p.LockKeys()) > 0 {
		return ts.checkLocks(ctx, p.LockKeys())
	}
	return nil
}

// beforeImage reads the plan's before image, in its span in a branch.
func (ts *txState) beforeImage(ctx context.Context, p *mysqldialect.Plan) error {
	if ts.scope.xid == "" {
		return p.Before(ctx, ts.c.inner)
	}
	ctx, span := ts.c.c.startBeforeImage(ctx, ts.scope.xid, p)
	err := p.Before(ctx, ts.c.inner)
	tracing.End(span, err)
	return err
}

// after runs the plan's second half and keeps its records and keys. The
// statement has run: any failure here aborts the transaction, since its
// undo would be incomplete.
func (ts *txState) after(ctx context.Context, p *mysqldialect.Plan, res driver.Result) error {
	if p.Kind() == mysqldialect.KindSelectForUpdate {
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
func (ts *txState) savepoint(st *mysqldialect.Statement, run func() error) error {
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
	if sp.Op != mysqldialect.SavepointSet && i < 0 {
		// The database knew a savepoint the wrapper did not see set;
		// the undo records cannot be matched with its changes any more.
		ts.abort(fmt.Errorf("%s %s: the database had a savepoint the wrapper did not see set", sp.Op, sp.Name))
		return ts.abortedError()
	}
	switch sp.Op {
	case mysqldialect.SavepointSet:
		if i >= 0 {
			ts.marks = slices.Delete(ts.marks, i, i+1)
		}
		ts.marks = append(ts.marks, mark{key: sp.Key(), records: len(ts.records), keys: len(ts.keys)})
	case mysqldialect.SavepointRollback:
		m := ts.marks[i]
		ts.marks = ts.marks[:i+1]
		clear(ts.records[m.records:])
		ts.records = ts.records[:m.records]
		for _, k := range ts.keys[m.keys:] {
			delete(ts.seen, k)
		}
		clear(ts.keys[m.keys:])
		ts.keys = ts.keys[:m.keys]
	case mysqldialect.SavepointRelease:
		ts.marks = ts.marks[:i]
	}
	return nil
}

// exec runs a statement through run, captured.
func (ts *txState) exec(ctx context.Context, st *mysqldialect.Statement, args []driver.NamedValue, run func(context.Context) (driver.Result, error)) (driver.Result, error) {
	if st.Kind() == mysqldialect.KindSavepoint {
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
func (ts *txState) query(ctx context.Context, st *mysqldialect.Statement, args []driver.NamedValue, run func(context.Context) (driver.Rows, error)) (driver.Rows, error) {
	if st.Kind() == mysqldialect.KindSavepoint {
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
	if !ts.autocommit && (p == nil || p.Kind() == mysqldialect.KindSelectForUpdate) {
		return rows, nil
	}
	buf, err := bufferRows(rows)
	if err != nil {
		if p != nil && p.Kind() != mysqldialect.KindSelectForUpdate {
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
