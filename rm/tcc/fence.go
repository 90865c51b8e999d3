package tcc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/xact-io/xact/datasource/mysql/errno"
	"github.com/xact-io/xact/internal/backoff"
	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/rm"
)

// FenceDDL creates the fence table in a participant's database (MySQL,
// MariaDB). `xact sql tcc-fence` prints it. Times are UTC, from the
// database's clock, so that participants on several hosts agree on a row's
// age.
const FenceDDL = `CREATE TABLE IF NOT EXISTS tcc_fence_log (
  xid          VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  branch_id    BIGINT       NOT NULL,
  action_name  VARCHAR(256) NOT NULL,
  status       TINYINT      NOT NULL COMMENT '1 tried, 2 confirmed, 3 cancelled, 4 suspended, 5 try failed',
  gmt_create   DATETIME(3)  NOT NULL,
  gmt_modified DATETIME(3)  NOT NULL,
  PRIMARY KEY (xid, branch_id),
  KEY idx_status_gmt_modified (status, gmt_modified)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;`

// FenceStatus is the state of one branch in the fence table. The numbers
// 1-4 are Seata's (tcc_fence_log.status); 5 is xact's.
type FenceStatus int

const (
	// FenceNone: no row; the branch's Try has not committed and no Cancel
	// has arrived.
	FenceNone FenceStatus = 0
	// FenceTried: the Try committed (in the same local transaction as the
	// row).
	FenceTried FenceStatus = 1
	// FenceConfirmed: the Confirm committed.
	FenceConfirmed FenceStatus = 2
	// FenceCancelled: the Cancel committed, after a Try that committed or
	// failed.
	FenceCancelled FenceStatus = 3
	// FenceSuspended: a Cancel arrived before any Try (empty rollback);
	// a Try that arrives later is refused (anti-hanging).
	FenceSuspended FenceStatus = 4
	// FenceTryFailed: the Try returned an error; its business change was
	// rolled back. A Cancel calls the business Cancel with TryFailed; the
	// Try may be run again (a saga step's retry).
	FenceTryFailed FenceStatus = 5
)

// String returns the status's lower-case name ("tried", "try-failed", ...).
func (s FenceStatus) String() string {
	switch s {
	case FenceNone:
		return "none"
	case FenceTried:
		return "tried"
	case FenceConfirmed:
		return "confirmed"
	case FenceCancelled:
		return "cancelled"
	case FenceSuspended:
		return "suspended"
	case FenceTryFailed:
		return "try-failed"
	}
	return fmt.Sprintf("FenceStatus(%d)", int(s))
}

// Defaults of the fence's options.
const (
	// DefaultFenceRetention is how old a finished fence row must be before
	// the cleanup loop deletes it. A suspended row must outlive any Try
	// that may still be on its way (such a Try runs within its global
	// transaction's timeout), so keep it well above the longest timeout.
	DefaultFenceRetention = 24 * time.Hour
	// DefaultFenceCleanupInterval is how often the cleanup loop runs.
	DefaultFenceCleanupInterval = time.Hour
	// DefaultFenceCleanupBatch is the most rows one DELETE removes.
	DefaultFenceCleanupBatch = 1000
)

// conflictAttempts bounds the restarts of a fence step that lost a race
// (duplicate key, deadlock) with a concurrent step on the same branch.
const conflictAttempts = 8

// bookkeepingTimeout bounds recording a failed Try after the caller's
// context may have ended.
const bookkeepingTimeout = 10 * time.Second

// Fence gives TCC participants on a database idempotent Confirm and
// Cancel, empty rollback, and anti-hanging protection, by keeping one row
// per branch in tcc_fence_log (FenceDDL), written in the same local
// transaction as the business change:
//
//	Try:     insert (xid, branch) as tried, then run the business Try, in one transaction.
//	         A row already there means the branch was cancelled: refuse (ErrTryAfterCancel).
//	         If the business Try fails, its work is rolled back to a savepoint and the row is
//	         committed as try-failed, so that Cancel knows the Try arrived and failed.
//	Confirm: lock the row; tried -> run the business Confirm and mark confirmed;
//	         confirmed -> nothing (a repeated Confirm); no row or cancelled -> permanent error.
//	Cancel:  lock the row; no row -> insert it as suspended and return (empty rollback: the
//	         business Cancel is not called); tried or try-failed -> run the business Cancel
//	         (told which) and mark cancelled; cancelled or suspended -> nothing.
//
// Rows of finished branches are deleted by Cleanup, which a loop started by
// NewFence runs periodically (see WithCleanup) until Close.
//
// A Fence is safe for concurrent use. Concurrent phase-two calls for one
// branch (a redelivery racing the original, in this process or another)
// serialize on the row lock: exactly one runs the business function.
type Fence struct {
	db  *sql.DB
	cfg fenceConfig

	stop context.CancelFunc
	wg   sync.WaitGroup
	mu   struct {
		sync.Mutex
		closed bool
	}
}

type fenceConfig struct {
	log       *slog.Logger
	txOpts    *sql.TxOptions
	every     time.Duration
	retention time.Duration
	batch     int
}

// FenceOption configures a Fence.
type FenceOption func(*fenceConfig) error

// WithCleanup sets how often the cleanup loop runs and how old a finished
// row must be to be deleted (defaults DefaultFenceCleanupInterval,
// DefaultFenceRetention). every == 0 starts no loop: call Cleanup
// yourself.
func WithCleanup(every, olderThan time.Duration) FenceOption {
	return func(c *fenceConfig) error {
		if every < 0 || olderThan <= 0 {
			return fmt.Errorf("WithCleanup(%v, %v): want every >= 0 and olderThan > 0", every, olderThan)
		}
		c.every, c.retention = every, olderThan
		return nil
	}
}

// WithCleanupBatch sets the most rows one DELETE of Cleanup removes
// (default DefaultFenceCleanupBatch).
func WithCleanupBatch(n int) FenceOption {
	return func(c *fenceConfig) error {
		if n <= 0 {
			return fmt.Errorf("WithCleanupBatch(%d): must be positive", n)
		}
		c.batch = n
		return nil
	}
}

// WithTxOptions sets the options of the local transactions the fence
// begins for Try, Confirm and Cancel (default nil: the database's
// defaults).
func WithTxOptions(o *sql.TxOptions) FenceOption {
	return func(c *fenceConfig) error {
		c.txOpts = o
		return nil
	}
}

// WithFenceLogger sets the logger of the cleanup loop and of failed
// bookkeeping (default: discard).
func WithFenceLogger(l *slog.Logger) FenceOption {
	return func(c *fenceConfig) error {
		if l == nil {
			return errors.New("WithFenceLogger: nil logger")
		}
		c.log = l
		return nil
	}
}

// NewFence returns a Fence on db, whose schema must hold tcc_fence_log
// (FenceDDL, or CreateTable). Unless WithCleanup(0, ...) is given it starts
// the cleanup loop; Close stops it. The Fence does not own db.
func NewFence(db *sql.DB, opts ...FenceOption) (*Fence, error) {
	if db == nil {
		return nil, fmt.Errorf("tcc: new fence: nil db: %w", ErrInvalidArgument)
	}
	cfg := fenceConfig{
		log:       slog.New(slog.DiscardHandler),
		every:     DefaultFenceCleanupInterval,
		retention: DefaultFenceRetention,
		batch:     DefaultFenceCleanupBatch,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("tcc: new fence: %w: %w", ErrInvalidArgument, err)
		}
	}
	f := &Fence{db: db, cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	if cfg.every > 0 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.cleanupLoop(ctx)
		}()
	}
	return f, nil
}

// Close stops the cleanup loop and waits for it. Calls made after Close
// return ErrClosed. Close does not close the database.
func (f *Fence) Close() error {
	f.mu.Lock()
	f.mu.closed = true
	f.mu.Unlock()
	f.stop()
	f.wg.Wait()
	return nil
}

func (f *Fence) usable() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.closed {
		return ErrClosed
	}
	return nil
}

// CreateTable runs FenceDDL (CREATE TABLE IF NOT EXISTS) on the fence's
// database, for participants that do not manage their schema with
// migrations, and for tests.
func (f *Fence) CreateTable(ctx context.Context) error {
	if _, err := f.db.ExecContext(ctx, FenceDDL); err != nil {
		return fmt.Errorf("tcc: create tcc_fence_log: %w", err)
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

// Status returns the fence state of b (FenceNone if there is no row).
func (f *Fence) Status(ctx context.Context, b Branch) (FenceStatus, error) {
	if err := f.usable(); err != nil {
		return FenceNone, err
	}
	var st FenceStatus
	err := f.db.QueryRowContext(ctx, sqlStatus, b.XID, b.BranchID).Scan(&st)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return FenceNone, nil
	case err != nil:
		return FenceNone, fmt.Errorf("tcc: fence status of %v: %w", b, err)
	}
	return st, nil
}

// Try runs try in a local transaction that also records b as tried, and
// commits both or neither. It refuses to run try (ErrTryAfterCancel) when
// b was already cancelled, and (ErrAlreadyTried) when b's Try already
// committed; a Try that failed before may run again.
//
// When try returns an error (or the commit fails), its work is undone and b
// is recorded as try-failed, so that the branch's Cancel calls the
// business Cancel with TryFailed rather than treating the rollback as
// empty. If that record cannot be made in the same transaction (a deadlock
// or a lost connection aborted it), it is made in a new one; if a Cancel
// ran as an empty rollback in between, cancelFailed (which may be nil) is
// called in that transaction instead, so the business Cancel of a failed
// Try runs once either way. try's error is returned as is.
func (f *Fence) Try(ctx context.Context, b Branch, try func(ctx context.Context, tx *sql.Tx) error, cancelFailed func(ctx context.Context, tx *sql.Tx) error) error {
	if err := f.usable(); err != nil {
		return err
	}
	if err := b.validate(); err != nil {
		return fmt.Errorf("tcc: fence try: %w", err)
	}
	if try == nil {
		return fmt.Errorf("tcc: fence try %v: nil function: %w", b, ErrInvalidArgument)
	}
	// The common case first: no row yet, one INSERT.
	tx, err := f.db.BeginTx(ctx, f.cfg.txOpts)
	if err != nil {
		return fmt.Errorf("tcc: fence try %v: begin: %w", b, err)
	}
	_, err = tx.ExecContext(ctx, sqlInsert, b.XID, b.BranchID, b.Resource, FenceTried)
	if err == nil {
		return f.runTry(ctx, tx, b, try, cancelFailed)
	}
	_ = tx.Rollback()
	if !conflict(err) {
		return fmt.Errorf("tcc: fence try %v: %w", b, err)
	}
	// A row exists (or a concurrent step holds it): look at it under lock.
	for attempt := 0; ; attempt++ {
		tx, st, err := f.lock(ctx, b, FenceTried)
		if err != nil {
			if conflict(err) && attempt < conflictAttempts && raceBackoff.Wait(ctx, attempt) == nil {
				continue
			}
			return fmt.Errorf("tcc: fence try %v: %w", b, err)
		}
		switch st {
		case FenceNone: // inserted as tried by lock
			return f.runTry(ctx, tx, b, try, cancelFailed)
		case FenceTryFailed:
			if err := f.set(ctx, tx, b, FenceTryFailed, FenceTried); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("tcc: fence try %v: %w", b, err)
			}
			return f.runTry(ctx, tx, b, try, cancelFailed)
		case FenceCancelled, FenceSuspended:
			_ = tx.Rollback()
			return fmt.Errorf("%w (%v)", ErrTryAfterCancel, b)
		default:
			_ = tx.Rollback()
			return fmt.Errorf("%w (%v is %v)", ErrAlreadyTried, b, st)
		}
	}
}

// runTry runs the business Try in tx, which holds b's row as tried, and
// commits; on failure it records the Try as failed.
func (f *Fence) runTry(ctx context.Context, tx *sql.Tx, b Branch, try func(context.Context, *sql.Tx) error, cancelFailed func(context.Context, *sql.Tx) error) error {
	finished := false
	defer func() {
		if !finished { // try panicked: undo everything, row included
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, savepoint); err != nil {
		finished = true
		_ = tx.Rollback()
		return fmt.Errorf("tcc: fence try %v: %w", b, err)
	}
	tryErr := try(ctx, tx)
	finished = true
	if tryErr == nil {
		if err := tx.Commit(); err != nil {
			// The commit may or may not have taken effect; the record
			// below finds out and keeps whichever is true.
			tryErr = fmt.Errorf("tcc: fence try %v: commit: %w", b, err)
		} else {
			failpoint.Hit("tcc/try/after-commit")
			return nil
		}
	} else {
		// Undo the business work, keep the row and say the Try failed,
		// atomically: a concurrent Cancel waits on the row lock and then
		// sees try-failed.
		_, err := tx.ExecContext(ctx, rollbackSavepoint)
		if err == nil {
			err = f.set(ctx, tx, b, FenceTried, FenceTryFailed)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		if err == nil {
			return tryErr
		}
	}
	if err := f.recordFailedTry(ctx, b, cancelFailed); err != nil {
		f.cfg.log.ErrorContext(ctx, "tcc: fence: cannot record a failed try; its cancel will be an empty rollback",
			"xid", b.XID, "branch_id", b.BranchID, "resource", b.Resource, "err", err)
	}
	return tryErr
}

// recordFailedTry records b as try-failed in a transaction of its own,
// after the Try's transaction was rolled back (or its commit failed).
func (f *Fence) recordFailedTry(ctx context.Context, b Branch, cancelFailed func(context.Context, *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		tx, st, err := f.lock(ctx, b, FenceTryFailed)
		if err != nil {
			if conflict(err) && attempt < conflictAttempts && raceBackoff.Wait(ctx, attempt) == nil {
				continue
			}
			return err
		}
		switch st {
		case FenceNone: // inserted as try-failed by lock
			err = tx.Commit()
		case FenceSuspended:
			// The branch's Cancel ran as an empty rollback while the row
			// was absent. Run the business Cancel now, once.
			if cancelFailed != nil {
				err = cancelFailed(ctx, tx)
			}
			if err == nil {
				err = f.set(ctx, tx, b, FenceSuspended, FenceCancelled)
			}
			if err == nil {
				err = tx.Commit()
			}
		default:
			// Tried: the commit took effect after all, and Cancel will
			// undo it as a committed Try. Try-failed, cancelled,
			// confirmed: already settled.
			err = tx.Rollback()
		}
		if err != nil {
			_ = tx.Rollback()
			if conflict(err) && attempt < conflictAttempts && raceBackoff.Wait(ctx, attempt) == nil {
				continue
			}
		}
		return err
	}
}

// Confirm runs confirm in a local transaction that marks b as confirmed.
// It returns nil without calling confirm when b is already confirmed, and
// a permanent error (rm.Permanent) when no Try of b committed
// (ErrNotTried) or b was cancelled or its Try failed (ErrFenceConflict).
// confirm may be nil (nothing to do but record it).
func (f *Fence) Confirm(ctx context.Context, b Branch, confirm func(ctx context.Context, tx *sql.Tx) error) error {
	return f.phaseTwo(ctx, b, "confirm", FenceNone, func(tx *sql.Tx, st FenceStatus) (bool, error) {
		switch st {
		case FenceTried:
			if confirm != nil {
				if err := confirm(ctx, tx); err != nil {
					return false, err
				}
			}
			failpoint.Hit("tcc/confirm/after-business")
			return true, f.set(ctx, tx, b, FenceTried, FenceConfirmed)
		case FenceConfirmed:
			return false, nil
		case FenceNone:
			return false, rm.Permanent(fmt.Errorf("tcc: confirm %v: %w", b, ErrNotTried))
		default:
			return false, rm.Permanent(fmt.Errorf("tcc: confirm %v, which is %v: %w", b, st, ErrFenceConflict))
		}
	})
}

// Cancel runs cancel in a local transaction that marks b as cancelled,
// telling it whether the Try committed (TryDone) or failed (TryFailed).
// When no Try of b arrived, it records b as suspended and returns nil
// without calling cancel (empty rollback); a Try that arrives later is
// refused. It returns nil without calling cancel when b is already
// cancelled, and a permanent error when b was confirmed. cancel may be
// nil.
func (f *Fence) Cancel(ctx context.Context, b Branch, cancel func(ctx context.Context, tx *sql.Tx, try TryOutcome) error) error {
	return f.phaseTwo(ctx, b, "cancel", FenceSuspended, func(tx *sql.Tx, st FenceStatus) (bool, error) {
		switch st {
		case FenceTried, FenceTryFailed:
			if cancel != nil {
				o := TryDone
				if st == FenceTryFailed {
					o = TryFailed
				}
				if err := cancel(ctx, tx, o); err != nil {
					return false, err
				}
			}
			failpoint.Hit("tcc/cancel/after-business")
			return true, f.set(ctx, tx, b, st, FenceCancelled)
		case FenceNone: // inserted as suspended by lock
			return true, nil
		case FenceCancelled, FenceSuspended:
			return false, nil
		default:
			return false, rm.Permanent(fmt.Errorf("tcc: cancel %v, which is %v: %w", b, st, ErrFenceConflict))
		}
	})
}

// phaseTwo locks b's row (inserting it with status insert if absent, see
// lock) and runs step on it; step says whether to commit. A step that lost a race with a concurrent one on the
// same branch (duplicate key on insert, deadlock) starts over, and then
// sees the other's result.
func (f *Fence) phaseTwo(ctx context.Context, b Branch, what string, insert FenceStatus, step func(tx *sql.Tx, st FenceStatus) (bool, error)) error {
	if err := f.usable(); err != nil {
		return err
	}
	if err := b.validate(); err != nil {
		return rm.Permanent(fmt.Errorf("tcc: fence %s: %w", what, err))
	}
	for attempt := 0; ; attempt++ {
		tx, st, err := f.lock(ctx, b, insert)
		if err == nil {
			var commit bool
			commit, err = step(tx, st)
			if err == nil && commit {
				err = tx.Commit()
			}
			if err != nil || !commit {
				_ = tx.Rollback()
			}
		}
		if err == nil {
			failpoint.Hit("tcc/" + what + "/after-commit")
			return nil
		}
		if conflict(err) && attempt < conflictAttempts && raceBackoff.Wait(ctx, attempt) == nil {
			continue
		}
		if rm.IsPermanent(err) {
			return err
		}
		return fmt.Errorf("tcc: fence %s %v: %w", what, b, err)
	}
}

// lock begins a transaction and locks b's row, returning its status. When
// there is no row and insert is not FenceNone, it inserts the row with
// status insert and reports FenceNone (the caller owns the new row). A
// concurrent insert of the same row makes it fail with a conflict (see
// conflict); the caller starts over (see raceBackoff).
//
// The insert runs in a new transaction: the SELECT ... FOR UPDATE that
// found no row holds a gap lock (REPEATABLE READ), and two transactions
// that both hold it and both insert deadlock. Without it, concurrent
// inserters of one key queue behind the first, which wins, and the others
// get a duplicate key and find its row when they start over.
func (f *Fence) lock(ctx context.Context, b Branch, insert FenceStatus) (*sql.Tx, FenceStatus, error) {
	tx, err := f.db.BeginTx(ctx, f.cfg.txOpts)
	if err != nil {
		return nil, FenceNone, fmt.Errorf("begin: %w", err)
	}
	var st FenceStatus
	err = tx.QueryRowContext(ctx, sqlLock, b.XID, b.BranchID).Scan(&st)
	switch {
	case err == nil:
		return tx, st, nil
	case !errors.Is(err, sql.ErrNoRows):
		_ = tx.Rollback()
		return nil, FenceNone, err
	case insert == FenceNone:
		return tx, FenceNone, nil
	}
	_ = tx.Rollback()
	if tx, err = f.db.BeginTx(ctx, f.cfg.txOpts); err != nil {
		return nil, FenceNone, fmt.Errorf("begin: %w", err)
	}
	if err := f.insert(ctx, tx, b, insert); err != nil {
		_ = tx.Rollback()
		return nil, FenceNone, err
	}
	return tx, FenceNone, nil
}

// raceBackoff paces the restarts of a step that lost a race, so that
// racing steps do not collide again in lock step: 2-4 ms before the first,
// doubling up to 16-32 ms.
var raceBackoff = backoff.Policy{Base: 4 * time.Millisecond, Max: 32 * time.Millisecond}

func (f *Fence) insert(ctx context.Context, tx *sql.Tx, b Branch, st FenceStatus) error {
	_, err := tx.ExecContext(ctx, sqlInsert, b.XID, b.BranchID, b.Resource, st)
	return err
}

// set moves b's row from status from to status to, under the row lock the
// transaction holds.
func (f *Fence) set(ctx context.Context, tx *sql.Tx, b Branch, from, to FenceStatus) error {
	res, err := tx.ExecContext(ctx, sqlUpdate, to, b.XID, b.BranchID, from)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("tcc: fence row of %v is no longer %v", b, from)
	}
	return nil
}

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

// Cleanup deletes the rows of finished branches (confirmed, cancelled,
// suspended) last changed more than olderThan ago, in batches, and returns
// how many it deleted. Rows of branches still waiting for phase two
// (tried, try-failed) are kept however old: a parked global transaction
// may be resumed by an operator days later.
//
// olderThan must outlast any Try still on its way: deleting a suspended
// row re-opens the branch to a late Try.
func (f *Fence) Cleanup(ctx context.Context, olderThan time.Duration) (int64, error) {
	if err := f.usable(); err != nil {
		return 0, err
	}
	if olderThan <= 0 {
		return 0, fmt.Errorf("tcc: fence cleanup: olderThan %v: %w", olderThan, ErrInvalidArgument)
	}
	var total int64
	for {
		res, err := f.db.ExecContext(ctx, sqlCleanup, olderThan.Microseconds(), f.cfg.batch)
		if err != nil {
			return total, fmt.Errorf("tcc: fence cleanup: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("tcc: fence cleanup: %w", err)
		}
		total += n
		if n < int64(f.cfg.batch) {
			return total, nil
		}
	}
}

func (f *Fence) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(f.cfg.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := f.Cleanup(ctx, f.cfg.retention)
		switch {
		case err != nil && ctx.Err() == nil:
			f.cfg.log.WarnContext(ctx, "tcc: fence cleanup failed; retrying at the next interval", "err", err)
		case n > 0:
			f.cfg.log.DebugContext(ctx, "tcc: fence cleanup", "deleted", n)
		}
	}
}
