package fence

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/rm"
)

// Confirm runs confirm in a local transaction that marks b as confirmed.
// It returns nil without calling confirm when b is already confirmed, and
// a permanent error (rm.Permanent) when no Try of b committed
// (ErrNotTried) or b was cancelled or its Try failed (ErrConflict).
// confirm may be nil (nothing to do but record it).
func (f *Fence) Confirm(ctx context.Context, b Branch, confirm func(ctx context.Context, tx *sql.Tx) error) error {
	return f.phaseTwo(ctx, b, "confirm", StatusNone, func(tx *sql.Tx, st Status) (bool, error) {
		switch st {
		case StatusTried:
			if confirm != nil {
				if err := confirm(ctx, tx); err != nil {
					return false, err
				}
			}
			failpoint.Hit("tcc/confirm/after-business")
			return true, f.set(ctx, tx, b, StatusTried, StatusConfirmed)
		case StatusConfirmed:
			return false, nil
		case StatusNone:
			return false, rm.Permanent(fmt.Errorf("fence: confirm %v: %w", b, ErrNotTried))
		default:
			return false, rm.Permanent(fmt.Errorf("fence: confirm %v, which is %v: %w", b, st, ErrConflict))
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
	return f.phaseTwo(ctx, b, "cancel", StatusSuspended, func(tx *sql.Tx, st Status) (bool, error) {
		switch st {
		case StatusTried, StatusTryFailed:
			if cancel != nil {
				o := TryDone
				if st == StatusTryFailed {
					o = TryFailed
				}
				if err := cancel(ctx, tx, o); err != nil {
					return false, err
				}
			}
			failpoint.Hit("tcc/cancel/after-business")
			return true, f.set(ctx, tx, b, st, StatusCancelled)
		case StatusNone: // inserted as suspended by lock
			return true, nil
		case StatusCancelled, StatusSuspended:
			return false, nil
		default:
			return false, rm.Permanent(fmt.Errorf("fence: cancel %v, which is %v: %w", b, st, ErrConflict))
		}
	})
}

// phaseTwo locks b's row (inserting it with status insert if absent, see
// lock) and runs step on it; step says whether to commit. A step that lost a race with a concurrent one on the
// same branch (duplicate key on insert, deadlock) starts over, and then
// sees the other's result.
func (f *Fence) phaseTwo(ctx context.Context, b Branch, what string, insert Status, step func(tx *sql.Tx, st Status) (bool, error)) error {
	if err := f.usable(); err != nil {
		return err
	}
	if err := b.validate(); err != nil {
		return rm.Permanent(fmt.Errorf("fence: %s: %w", what, err))
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
		return fmt.Errorf("fence: %s %v: %w", what, b, err)
	}
}
