package fence

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
)

// bookkeepingTimeout bounds recording a failed Try after the caller's
// context may have ended.
const bookkeepingTimeout = 10 * time.Second

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
		return fmt.Errorf("fence: try: %w", err)
	}
	if try == nil {
		return fmt.Errorf("fence: try %v: nil function: %w", b, ErrInvalidArgument)
	}
	// The common case first: no row yet, one INSERT.
	tx, err := f.db.BeginTx(ctx, f.cfg.txOpts)
	if err != nil {
		return fmt.Errorf("fence: try %v: begin: %w", b, err)
	}
	_, err = tx.ExecContext(ctx, sqlInsert, b.XID, b.BranchID, b.Resource, StatusTried)
	if err == nil {
		return f.runTry(ctx, tx, b, try, cancelFailed)
	}
	_ = tx.Rollback()
	if !conflict(err) {
		return fmt.Errorf("fence: try %v: %w", b, err)
	}
	// A row exists (or a concurrent step holds it): look at it under lock.
	for attempt := 0; ; attempt++ {
		tx, st, err := f.lock(ctx, b, StatusTried)
		if err != nil {
			if conflict(err) && attempt < conflictAttempts && raceBackoff.Wait(ctx, attempt) == nil {
				continue
			}
			return fmt.Errorf("fence: try %v: %w", b, err)
		}
		switch st {
		case StatusNone: // inserted as tried by lock
			return f.runTry(ctx, tx, b, try, cancelFailed)
		case StatusTryFailed:
			if err := f.set(ctx, tx, b, StatusTryFailed, StatusTried); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("fence: try %v: %w", b, err)
			}
			return f.runTry(ctx, tx, b, try, cancelFailed)
		case StatusCancelled, StatusSuspended:
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
		return fmt.Errorf("fence: try %v: %w", b, err)
	}
	tryErr := try(ctx, tx)
	finished = true
	if tryErr == nil {
		if err := tx.Commit(); err != nil {
			// The commit may or may not have taken effect; the record
			// below finds out and keeps whichever is true.
			tryErr = fmt.Errorf("fence: try %v: commit: %w", b, err)
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
			err = f.set(ctx, tx, b, StatusTried, StatusTryFailed)
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
		f.cfg.log.ErrorContext(ctx, "fence: cannot record a failed try; its cancel will be an empty rollback",
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
		tx, st, err := f.lock(ctx, b, StatusTryFailed)
		if err != nil {
			if conflict(err) && attempt < conflictAttempts && raceBackoff.Wait(ctx, attempt) == nil {
				continue
			}
			return err
		}
		switch st {
		case StatusNone: // inserted as try-failed by lock
			err = tx.Commit()
		case StatusSuspended:
			// The branch's Cancel ran as an empty rollback while the row
			// was absent. Run the business Cancel now, once.
			if cancelFailed != nil {
				err = cancelFailed(ctx, tx)
			}
			if err == nil {
				err = f.set(ctx, tx, b, StatusSuspended, StatusCancelled)
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
