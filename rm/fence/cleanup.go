package fence

import (
	"context"
	"fmt"
	"time"
)

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
		return 0, fmt.Errorf("fence: cleanup: olderThan %v: %w", olderThan, ErrInvalidArgument)
	}
	var total int64
	for {
		res, err := f.db.ExecContext(ctx, sqlCleanup, olderThan.Microseconds(), f.cfg.batch)
		if err != nil {
			return total, fmt.Errorf("fence: cleanup: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("fence: cleanup: %w", err)
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
			f.cfg.log.WarnContext(ctx, "fence: cleanup failed; retrying at the next interval", "err", err)
		case n > 0:
			f.cfg.log.DebugContext(ctx, "fence: cleanup", "deleted", n)
		}
	}
}
