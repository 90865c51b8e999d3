package datasource

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/undo"
)

// Housekeeping of undo_log: the batched deletion of committed branches'
// logs (phase-two commit) and the periodic deletion of old markers.

// deleter deletes the undo logs of committed branches in batches: one
// goroutine takes whatever requests are queued (up to max) and removes
// them with one DELETE in autocommit, then answers each.
type deleter struct {
	db  *sql.DB
	max int
	log *slog.Logger
	// delay is how long a batch waits for more branches after its first.
	delay time.Duration
	reqs  chan *delReq
	done  chan struct{} // closed when run returns
}

type delReq struct {
	xid    string
	branch int64
	err    chan error
}

func newDeleter(db *sql.DB, max int, delay time.Duration, log *slog.Logger) *deleter {
	return &deleter{db: db, max: max, delay: delay, log: log, reqs: make(chan *delReq, max), done: make(chan struct{})}
}

// delete queues the deletion of a branch's undo log and waits for it.
func (d *deleter) delete(ctx context.Context, xid string, branch int64) error {
	r := &delReq{xid: xid, branch: branch, err: make(chan error, 1)}
	select {
	case d.reqs <- r:
	case <-d.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.err:
		return err
	case <-d.done:
		// run answers what it took before returning; what it did not
		// take is answered here.
		select {
		case err := <-r.err:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *deleter) run(ctx context.Context) {
	defer close(d.done)
	batch := make([]*delReq, 0, d.max)
	var linger *time.Timer
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-d.reqs:
			batch = append(batch[:0], r)
		}
		if d.delay > 0 {
			// Group commit: a DELETE of one row costs the database nearly
			// as much as a DELETE of many, and nobody waits for it but
			// the TC's bookkeeping.
			if linger == nil {
				linger = time.NewTimer(d.delay)
			} else {
				linger.Reset(d.delay)
			}
		wait:
			for len(batch) < d.max {
				select {
				case r := <-d.reqs:
					batch = append(batch, r)
				case <-linger.C:
					break wait
				case <-ctx.Done():
					for _, r := range batch {
						r.err <- ErrClosed
					}
					return
				}
			}
			linger.Stop()
		}
	more:
		for len(batch) < d.max {
			select {
			case r := <-d.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := d.exec(ctx, batch)
		for _, r := range batch {
			r.err <- err
		}
	}
}

func (d *deleter) exec(ctx context.Context, batch []*delReq) error {
	args := make([]any, 0, 2*len(batch))
	for _, r := range batch {
		args = append(args, r.xid, r.branch)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := d.db.ExecContext(ctx, deleteLogsSQL(len(batch)), args...); err != nil {
		d.log.WarnContext(ctx, "datasource: delete undo logs failed; the TC will retry", "branches", len(batch), "err", err)
		return fmt.Errorf("datasource: delete undo logs: %w", err)
	}
	failpoint.Hit("datasource/phase2/after-undo-delete")
	return nil
}

// deleteLogsSQL returns a statement that deletes the undo logs of n
// branches: xid, branch_id for each.
func deleteLogsSQL(n int) string {
	if n == 1 {
		return undo.DeleteLogSQL
	}
	return undo.DeleteLogsSQL(n)
}

// deleteMarkersSQL deletes old "global finished" markers, at most a
// number at once: age in microseconds, limit.
const deleteMarkersSQL = "DELETE FROM `undo_log` WHERE `log_status` = 1 AND `log_created` < NOW(6) - INTERVAL ? MICROSECOND LIMIT ?"

// Cleanup deletes "global finished" markers older than the retention
// (WithCleanup) and returns how many it deleted. The cleanup loop calls it
// periodically; it is exported for operators who turn the loop off.
// Normal undo logs are never deleted by age: a parked branch still needs
// its log.
func (c *Connector) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	for {
		res, err := c.p2.ExecContext(ctx, deleteMarkersSQL, c.cfg.retention.Microseconds(), 1000)
		if err != nil {
			return total, fmt.Errorf("datasource: delete old markers: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("datasource: delete old markers: %w", err)
		}
		total += n
		if n < 1000 {
			return total, nil
		}
	}
}

func (c *Connector) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.cleanupEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := c.Cleanup(ctx)
		if err != nil && ctx.Err() == nil {
			c.cfg.log.WarnContext(ctx, "datasource: cleanup of markers failed", "resource", c.cfg.resource, "err", err)
		} else if n > 0 {
			c.cfg.log.InfoContext(ctx, "datasource: old markers deleted", "resource", c.cfg.resource, "count", n)
		}
	}
}
