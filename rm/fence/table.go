package fence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/internal/backoff"
)

// The fence table: its DDL, its statuses and statements, and the row lock
// every step takes.

// DDL creates the fence table in a participant's database (MySQL,
// MariaDB). `xact sql tcc-fence` prints it. Times are UTC, from the
// database's clock, so that participants on several hosts agree on a row's
// age.
const DDL = `CREATE TABLE IF NOT EXISTS tcc_fence_log (
  xid          VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  branch_id    BIGINT       NOT NULL,
  action_name  VARCHAR(256) NOT NULL,
  status       TINYINT      NOT NULL COMMENT '1 tried, 2 confirmed, 3 cancelled, 4 suspended, 5 try failed',
  gmt_create   DATETIME(3)  NOT NULL,
  gmt_modified DATETIME(3)  NOT NULL,
  PRIMARY KEY (xid, branch_id),
  KEY idx_status_gmt_modified (status, gmt_modified)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;`

// Status is the state of one branch in the fence table. The numbers
// 1-4 are Seata's (tcc_fence_log.status); 5 is xact's.
type Status int

const (
	// StatusNone: no row; the branch's Try has not committed and no Cancel
	// has arrived.
	StatusNone Status = 0
	// StatusTried: the Try committed (in the same local transaction as the
	// row).
	StatusTried Status = 1
	// StatusConfirmed: the Confirm committed.
	StatusConfirmed Status = 2
	// StatusCancelled: the Cancel committed, after a Try that committed or
	// failed.
	StatusCancelled Status = 3
	// StatusSuspended: a Cancel arrived before any Try (empty rollback);
	// a Try that arrives later is refused (anti-hanging).
	StatusSuspended Status = 4
	// StatusTryFailed: the Try returned an error; its business change was
	// rolled back. A Cancel calls the business Cancel with TryFailed; the
	// Try may be run again (a saga step's retry).
	StatusTryFailed Status = 5
)

// String returns the status's lower-case name ("tried", "try-failed", ...).
func (s Status) String() string {
	switch s {
	case StatusNone:
		return "none"
	case StatusTried:
		return "tried"
	case StatusConfirmed:
		return "confirmed"
	case StatusCancelled:
		return "cancelled"
	case StatusSuspended:
		return "suspended"
	case StatusTryFailed:
		return "try-failed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// CreateTable runs DDL (CREATE TABLE IF NOT EXISTS) on the fence's
// database, for participants that do not manage their schema with
// migrations, and for tests.
func (f *Fence) CreateTable(ctx context.Context) error {
	if _, err := f.db.ExecContext(ctx, DDL); err != nil {
		return fmt.Errorf("fence: create tcc_fence_log: %w", err)
	}
	return nil
}

// SQL of the fence. Every value is a placeholder.
const (
	sqlInsert = "INSERT INTO tcc_fence_log (xid, branch_id, action_name, status, gmt_create, gmt_modified) " +
		"VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))"
	sqlLock   = "SELECT status FROM tcc_fence_log WHERE xid = ? AND branch_id = ? FOR UPDATE"
	sqlStatus = "SELECT status FROM tcc_fence_log WHERE xid = ? AND branch_id = ?"
	sqlUpdate = "UPDATE tcc_fence_log SET status = ?, gmt_modified = UTC_TIMESTAMP(3) " +
		"WHERE xid = ? AND branch_id = ? AND status = ?"
	sqlCleanup = "DELETE FROM tcc_fence_log WHERE status IN (2, 3, 4) " +
		"AND gmt_modified < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND LIMIT ?"
	savepoint         = "SAVEPOINT xact_tcc_try"
	rollbackSavepoint = "ROLLBACK TO SAVEPOINT xact_tcc_try"
)

// Status returns the fence state of b (StatusNone if there is no row).
func (f *Fence) Status(ctx context.Context, b Branch) (Status, error) {
	if err := f.usable(); err != nil {
		return StatusNone, err
	}
	var st Status
	err := f.db.QueryRowContext(ctx, sqlStatus, b.XID, b.BranchID).Scan(&st)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StatusNone, nil
	case err != nil:
		return StatusNone, fmt.Errorf("fence: status of %v: %w", b, err)
	}
	return st, nil
}

// lock begins a transaction and locks b's row, returning its status. When
// there is no row and insert is not StatusNone, it inserts the row with
// status insert and reports StatusNone (the caller owns the new row). A
// concurrent insert of the same row makes it fail with a conflict (see
// conflict); the caller starts over (see raceBackoff).
//
// The insert runs in a new transaction: the SELECT ... FOR UPDATE that
// found no row holds a gap lock (REPEATABLE READ), and two transactions
// that both hold it and both insert deadlock. Without it, concurrent
// inserters of one key queue behind the first, which wins, and the others
// get a duplicate key and find its row when they start over.
func (f *Fence) lock(ctx context.Context, b Branch, insert Status) (*sql.Tx, Status, error) {
	tx, err := f.db.BeginTx(ctx, f.cfg.txOpts)
	if err != nil {
		return nil, StatusNone, fmt.Errorf("begin: %w", err)
	}
	var st Status
	err = tx.QueryRowContext(ctx, sqlLock, b.XID, b.BranchID).Scan(&st)
	switch {
	case err == nil:
		return tx, st, nil
	case !errors.Is(err, sql.ErrNoRows):
		_ = tx.Rollback()
		return nil, StatusNone, err
	case insert == StatusNone:
		return tx, StatusNone, nil
	}
	_ = tx.Rollback()
	if tx, err = f.db.BeginTx(ctx, f.cfg.txOpts); err != nil {
		return nil, StatusNone, fmt.Errorf("begin: %w", err)
	}
	if err := f.insert(ctx, tx, b, insert); err != nil {
		_ = tx.Rollback()
		return nil, StatusNone, err
	}
	return tx, StatusNone, nil
}

func (f *Fence) insert(ctx context.Context, tx *sql.Tx, b Branch, st Status) error {
	_, err := tx.ExecContext(ctx, sqlInsert, b.XID, b.BranchID, b.Resource, st)
	return err
}

// set moves b's row from status from to status to, under the row lock the
// transaction holds.
func (f *Fence) set(ctx context.Context, tx *sql.Tx, b Branch, from, to Status) error {
	res, err := tx.ExecContext(ctx, sqlUpdate, to, b.XID, b.BranchID, from)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("fence: row of %v is no longer %v", b, from)
	}
	return nil
}

// conflictAttempts bounds the restarts of a fence step that lost a race
// (duplicate key, deadlock) with a concurrent step on the same branch.
const conflictAttempts = 8

// raceBackoff paces the restarts of a step that lost a race, so that
// racing steps do not collide again in lock step: 2-4 ms before the first,
// doubling up to 16-32 ms.
var raceBackoff = backoff.Policy{Base: 4 * time.Millisecond, Max: 32 * time.Millisecond}

// conflict reports whether err is a lost race that a restart resolves:
// a duplicate key (a concurrent step inserted the row), a deadlock or a
// lock wait timeout.
func conflict(err error) bool {
	switch errno.Of(err) {
	case errno.DupEntry, errno.LockDeadlock, errno.LockWaitTimeout:
		return true
	}
	return false
}
