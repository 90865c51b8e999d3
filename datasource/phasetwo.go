package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/undo"
)

// handler runs phase two of the Connector's AT branches.
//
// Commit deletes the branch's undo log. The DELETE is batched with those
// of other branches arriving at the same time (one statement for all
// that are queued), and the action is answered DONE only after its batch
// committed: an undo log is never left behind by a process that died
// after answering (I6), and a crash before answering makes the TC deliver
// the commit again, which deletes nothing the second time (I7).
//
// Rollback replays the undo log in one local transaction (see
// rollbackBranch).
type handler struct{ c *Connector }

var _ rm.Handler = (*handler)(nil)

// Commit deletes the branch's undo log.
func (h *handler) Commit(ctx context.Context, a rm.Action) error {
	return h.c.del.delete(ctx, a.XID, a.BranchID)
}

// Rollback compensates the branch.
func (h *handler) Rollback(ctx context.Context, a rm.Action) error {
	if h.c.isClosed() {
		return ErrClosed
	}
	return h.c.rollbackBranch(ctx, a)
}

// rollbackBranch compensates one branch inside one local transaction on
// a phase-two connection:
//
//   - it reads and locks the branch's undo_log row;
//   - no row: the branch never committed locally (or its commit is still
//     on its way): it inserts the "global finished" marker, so that a late
//     phase-one commit fails on the unique key (xid, branch_id) instead of
//     committing a change nobody will undo (I8), and answers DONE;
//   - the marker: an earlier rollback got here; DONE (I7);
//   - an undo log: the dialect replays it in reverse with the dirty check
//     (after checking its keys against the branch's lock keys and its
//     tables and columns against the live schema), the row is deleted,
//     and the transaction commits; rows already restored by an earlier
//     attempt are skipped (I7).
//
// A log that cannot be replayed safely (a row someone else changed, keys
// outside the branch's locks, a schema that no longer fits, a corrupt
// log) fails permanently: nothing is changed, and the TC parks the branch
// with the reason for an operator. Anything else (the database
// unreachable, a lock wait) is an unknown outcome that the TC retries.
//
// A rollback must not hold a phase-two connection for long, or rollbacks
// stuck behind rows the application holds would starve the others (and
// the undo-log deletion) of connections. Every statement's lock wait is
// bounded (WithPhaseTwoLockWait, set on the connection when it opens):
// one that times out (1205) fails the action, the deferred ROLLBACK ends
// the local transaction, and the connection goes back to the pool. The
// action's context (the rm.Client's WithActionTimeout) bounds the rest,
// the wait for a pool connection included; when it ends during a
// statement, go-sql-driver/mysql closes the connection to interrupt it,
// and database/sql discards it (IsValid) instead of pooling it.
func (c *Connector) rollbackBranch(ctx context.Context, a rm.Action) error {
	lg := rm.Logger(ctx)
	c.sizePhaseTwo()
	sc, err := c.p2.Conn(ctx)
	if err != nil {
		return fmt.Errorf("datasource: rollback %s branch %d: %w", a.XID, a.BranchID, err)
	}
	defer sc.Close()
	err = sc.Raw(func(dc any) error {
		return c.rollbackOn(ctx, dc.(driver.Conn), a, lg)
	})
	if err != nil {
		err = fmt.Errorf("datasource: rollback %s branch %d on %s: %w", a.XID, a.BranchID, a.Resource, err)
		if permanent(err) {
			return rm.Permanent(err)
		}
		return err
	}
	return nil
}

// permanent reports errors that retrying a rollback cannot fix.
func permanent(err error) bool {
	for _, target := range []error{
		undo.ErrDirty, undo.ErrSchema, undo.ErrMalformed, undo.ErrTooLarge, undo.ErrVersion, undo.ErrChecksum,
		mysqldialect.ErrOutsideLocks, errUnknownLogContext,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	// The server refused a compensating statement for what it is, not for
	// the moment it ran in: the same statement fails the same way on every
	// retry. (Lock waits, deadlocks and lost connections are not here.)
	switch errno.Of(err) {
	case errno.BadNull, errno.BadField, errno.ParseError, errno.NoSuchTable,
		errno.WarnDataOutOfRange, errno.TruncatedWrongValue, errno.TruncatedWrongValueForField, errno.DataTooLong:
		return true
	}
	return false
}

var errUnknownLogContext = errors.New("datasource: undo log in an unknown encoding")

func (c *Connector) rollbackOn(ctx context.Context, dc driver.Conn, a rm.Action, lg *slog.Logger) (err error) {
	pc := &conn{c: c, inner: dc} // for its inner helpers only
	itx, err := pc.innerBegin(ctx, driver.TxOptions{})
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			if rerr := itx.Rollback(); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	key := []driver.NamedValue{{Ordinal: 1, Value: a.XID}, {Ordinal: 2, Value: a.BranchID}}
	rows, err := pc.queryDirect(ctx, undo.SelectLogSQL, key)
	if err != nil {
		return fmt.Errorf("read undo log: %w", err)
	}
	vals := make([]driver.Value, 3)
	err = rows.Next(vals)
	var logCtx string
	var info []byte
	var status int64
	found := err == nil
	if found {
		logCtx, info, status = asString(vals[0]), asBytes(vals[1]), asInt(vals[2])
	}
	rows.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read undo log: %w", err)
	}

	switch {
	case !found:
		_, err := pc.execDirect(ctx, undo.InsertLogSQL, []driver.NamedValue{
			{Ordinal: 1, Value: a.XID},
			{Ordinal: 2, Value: a.BranchID},
			{Ordinal: 3, Value: undo.LogContext},
			{Ordinal: 4, Value: []byte{}},
			{Ordinal: 5, Value: int64(undo.StatusGlobalFinished)},
		})
		if err != nil {
			// A duplicate key means the phase-one insert got in first:
			// the next attempt finds its log.
			return fmt.Errorf("insert global-finished marker: %w", err)
		}
		lg.InfoContext(ctx, "datasource: rollback found no undo log; marker inserted")
		failpoint.Hit("datasource/rollback/after-marker")
	case status == undo.StatusGlobalFinished:
		// Rolled back before.
	default:
		if logCtx != undo.LogContext {
			return fmt.Errorf("%w: context %q", errUnknownLogContext, logCtx)
		}
		log, err := undo.Decode(info)
		if err != nil {
			return err
		}
		if err := c.dialect.Undo(ctx, dc, log, a.LockKeys); err != nil {
			return err
		}
		if _, err := pc.execDirect(ctx, undo.DeleteLogSQL, key); err != nil {
			return fmt.Errorf("delete undo log: %w", err)
		}
		lg.DebugContext(ctx, "datasource: branch rolled back", "records", len(log.Records))
		failpoint.Hit("datasource/rollback/after-replay")
	}
	committed = true
	if err := itx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	failpoint.Hit("datasource/rollback/after-commit")
	return nil
}

func asString(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func asBytes(v driver.Value) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return nil
}

func asInt(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case []byte:
		var n int64
		fmt.Sscan(string(x), &n)
		return n
	case string:
		var n int64
		fmt.Sscan(x, &n)
		return n
	}
	return -1
}
