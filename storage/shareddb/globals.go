package shareddb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// globalColumns are the columns an update writes (all but the key).
func globalColumns(r *globalRow) map[string]any {
	return map[string]any{
		"name": r.Name, "status": r.Status, "timeout_ns": r.TimeoutNs,
		"began_at_s": r.BeganAtS, "began_at_ns": r.BeganAtNs, "deadline_s": r.DeadlineS, "deadline_ns": r.DeadlineNs,
		"next_at_s": r.NextAtS, "next_at_ns": r.NextAtNs, "attempts": r.Attempts, "branch_seq": r.BranchSeq,
		"parked": r.Parked, "reason": r.Reason, "updated_at_s": r.UpdatedS, "updated_at_ns": r.UpdatedNs, "history": r.History,
		"finished": r.Finished, "locks_released": r.LocksReleased, "expires_at": r.ExpiresAt,
	}
}

// lockGlobal reads xid's row for update: nil if there is none. A tombstone
// whose retention has passed counts as none (and expired reports it, so
// that a writer that creates the XID again deletes it first).
func (s *Store) lockGlobal(tx *gorm.DB, xid string) (row *globalRow, expired bool, err error) {
	var rows []globalRow
	err = tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("xid = ?", []byte(xid)).Limit(1).Find(&rows).Error
	if err != nil {
		return nil, false, fmt.Errorf("shareddb: read global %s: %w", xid, err)
	}
	if len(rows) == 0 {
		return nil, false, nil
	}
	if rows[0].Finished && rows[0].ExpiresAt <= s.now().UnixNano() {
		return nil, true, nil
	}
	return &rows[0], false, nil
}

// insertGlobal inserts g, first deleting an expired tombstone of its XID.
// A duplicate key (another writer created it meanwhile) asks for the
// transaction to run again, which then finds it.
func (s *Store) insertGlobal(tx *gorm.DB, g *storage.Global, expired bool) error {
	if expired {
		if err := tx.Where("xid = ?", []byte(g.XID)).Delete(&globalRow{}).Error; err != nil {
			return fmt.Errorf("shareddb: delete the expired tombstone of %s: %w", g.XID, err)
		}
	}
	row := rowOfGlobal(g)
	s.own(row)
	err := tx.Create(row).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return fmt.Errorf("%w: %w", errRetry, err)
	}
	if err != nil {
		return fmt.Errorf("shareddb: insert global %s: %w", g.XID, err)
	}
	return nil
}

// CreateGlobal stores g; storage.ErrExists if g.XID is stored or has a
// retained tombstone.
func (s *Store) CreateGlobal(ctx context.Context, g *storage.Global, d storage.Durability) error {
	if g.XID == "" {
		return fmt.Errorf("storage: create global: empty XID: %w", protocol.ErrInvalidArgument)
	}
	c := g.Clone()
	c.Finished = false
	return s.update(ctx, d, func(tx *gorm.DB) error {
		row, expired, err := s.lockGlobal(tx, c.XID)
		if err != nil {
			return err
		}
		if row != nil {
			return fmt.Errorf("storage: create global %s: %w", c.XID, storage.ErrExists)
		}
		return s.insertGlobal(tx, c, expired)
	})
}

// GetGlobal returns the global or its retained tombstone.
func (s *Store) GetGlobal(ctx context.Context, xid string) (*storage.Global, error) {
	var rows []globalRow
	err := s.view(ctx, func(db *gorm.DB) error {
		return db.Where("xid = ?", []byte(xid)).Limit(1).Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: get global %s: %w", xid, err)
	}
	if len(rows) == 0 || rows[0].Finished && rows[0].ExpiresAt <= s.now().UnixNano() {
		return nil, fmt.Errorf("storage: get global %s: %w", xid, storage.ErrNotFound)
	}
	return rows[0].global()
}

// UpdateGlobal calls fn on a copy of the global, read for update, and
// stores the result. Changes fn makes to XID, BranchSeq and Finished are
// ignored.
func (s *Store) UpdateGlobal(ctx context.Context, xid string, fn func(g *storage.Global) error, d storage.Durability) (*storage.Global, error) {
	var out *storage.Global
	err := s.update(ctx, d, func(tx *gorm.DB) error {
		row, _, err := s.lockGlobal(tx, xid)
		if err != nil {
			return err
		}
		if row == nil || row.Finished {
			return fmt.Errorf("storage: update global %s: %w", xid, storage.ErrNotFound)
		}
		if err := s.fence(row); err != nil {
			return err
		}
		old, err := row.global()
		if err != nil {
			return err
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			return err
		}
		c.XID, c.BranchSeq, c.Finished = old.XID, old.BranchSeq, false
		cols := globalColumns(rowOfGlobal(c))
		if old.Status == xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN && c.Status != old.Status {
			// The decision: its maker drives the global.
			if m, ok := s.self(); ok {
				cols["owner"], cols["owner_epoch"] = []byte(m.id), m.epoch
			}
		}
		if err := tx.Table("xact_globals").Where("xid = ?", []byte(xid)).Updates(cols).Error; err != nil {
			return fmt.Errorf("shareddb: update global %s: %w", xid, err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishGlobal deletes the global's branches and turns its row into a
// tombstone with status final that expires after the retention period.
// Finishing a tombstone is a no-op.
func (s *Store) FinishGlobal(ctx context.Context, xid string, final storage.Status, d storage.Durability) error {
	return s.update(ctx, d, func(tx *gorm.DB) error {
		if _, joined := s.self(); joined {
			row, _, err := s.lockGlobal(tx, xid)
			if err != nil {
				return err
			}
			if row != nil && !row.Finished {
				if err := s.fence(row); err != nil {
					return err
				}
			}
		}
		// The usual case in two statements: turn the live row into a
		// tombstone (which locks it), then delete its branches.
		res := tx.Table("xact_globals").Where("xid = ? AND finished = ?", []byte(xid), false).Updates(map[string]any{
			"status": int32(final), "finished": true, "next_at_s": zeroSecs, "next_at_ns": int32(0),
			"expires_at": s.now().Add(s.retention).UnixNano(),
		})
		if res.Error != nil {
			return fmt.Errorf("shareddb: finish global %s: %w", xid, res.Error)
		}
		if res.RowsAffected == 0 {
			// A tombstone already (a no-op), or nothing at all.
			row, _, err := s.lockGlobal(tx, xid)
			if err != nil {
				return err
			}
			if row == nil {
				return fmt.Errorf("storage: finish global %s: %w", xid, storage.ErrNotFound)
			}
			return nil
		}
		if err := tx.Where("xid = ?", []byte(xid)).Delete(&branchRow{}).Error; err != nil {
			return fmt.Errorf("shareddb: delete the branches of %s: %w", xid, err)
		}
		return nil
	})
}

// ListGlobals returns the unfinished globals matching f, ordered by XID.
func (s *Store) ListGlobals(ctx context.Context, f storage.Filter) ([]*storage.Global, error) {
	var rows []globalRow
	err := s.view(ctx, func(db *gorm.DB) error {
		q := db.Where("finished = ?", false)
		if f.ParkedOnly {
			q = q.Where("parked = ?", true)
		}
		if len(f.Statuses) > 0 {
			st := make([]int32, len(f.Statuses))
			for i, v := range f.Statuses {
				st[i] = int32(v)
			}
			q = q.Where("status IN ?", st)
		}
		if f.Limit > 0 {
			q = q.Limit(f.Limit)
		}
		return q.Order("xid").Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: list globals: %w", err)
	}
	return globals(rows)
}

// DueGlobals returns unfinished globals whose NextAt is set and not after
// t, earliest first (ties by XID), at most limit (<= 0: no limit). Once
// this store joined a cluster, it leaves out the globals another live
// coordinator owns (under its current epoch): that one drives them, and
// a claim by this one would only fail after locking their rows.
func (s *Store) DueGlobals(ctx context.Context, t time.Time, limit int) ([]*storage.Global, error) {
	var rows []globalRow
	err := s.view(ctx, func(db *gorm.DB) error {
		ts, tns := split(t)
		q := db.Table("xact_globals AS g").Select("g.*")
		if m, ok := s.self(); ok {
			// The database's clock, read once: PostgreSQL would evaluate
			// clock_timestamp() for every row of the join.
			now, err := s.dbNow(db)
			if err != nil {
				return err
			}
			q = q.Joins("LEFT JOIN xact_nodes n ON n.node_id = g.owner AND n.epoch = g.owner_epoch AND n.lease_until > ?", now).
				Where("(n.node_id IS NULL OR n.node_id = ?)", []byte(m.id))
		}
		q = q.Where("g.finished = ? AND NOT (g.next_at_s = ? AND g.next_at_ns = ?)", false, zeroSecs, int32(0)).
			Where("(g.next_at_s < ? OR g.next_at_s = ? AND g.next_at_ns <= ?)", ts, ts, tns)
		if limit > 0 {
			q = q.Limit(limit)
		}
		return q.Order("g.next_at_s, g.next_at_ns, g.xid").Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: due globals: %w", err)
	}
	return globals(rows)
}

func globals(rows []globalRow) ([]*storage.Global, error) {
	out := make([]*storage.Global, 0, len(rows))
	for i := range rows {
		g, err := rows[i].global()
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}
