package tc

import (
	"context"
	"time"

	"github.com/xact-io/xact/storage"
)

// parkDamaged parks a global whose records the store reports damaged
// (storage.ErrCorrupt): no retry can repair them, so retrying would only
// loop (I11: parked with a visible reason, never retried forever). The
// status, and so the decision, stays as it is; the global keeps whatever
// locks it holds. An operator repairs the data directory
// (docs/operations.md) and resumes it with `xact tx commit|rollback`.
func (d *driver) parkDamaged(ctx context.Context, xid string, cause error) storage.Status {
	mu := d.s.stripe(xid)
	mu.Lock()
	defer mu.Unlock()
	now := time.Now()
	g, err := d.s.ledger.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
		if g.Parked {
			return errStale
		}
		g.Parked, g.NextAt, g.UpdatedAt = true, time.Time{}, now
		g.Reason = "store: damaged records: " + cause.Error()
		g.History = appendEvent(g.History, now, g.Reason)
		return nil
	}, storage.Relaxed)
	if err != nil {
		if err != errStale {
			d.s.log.Error("phase two: the global's records are damaged and it cannot be parked", "xid", xid, "damage", cause, "err", err)
		}
		return 0
	}
	d.s.metrics.parkedChanged()
	d.s.log.Error("global parked", "xid", xid, "status", g.Status, "reason", g.Reason)
	return g.Status
}
