package shareddb

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// AddBranch reads the global for update (or its tombstone, or create if
// neither is stored), calls admit on it, and stores the branch as
// ++BranchSeq with the global, in one database transaction. admit runs
// again if the database aborts the transaction.
func (s *Store) AddBranch(ctx context.Context, b *storage.Branch, create *storage.Global, admit storage.Admit, d storage.Durability) (int64, bool, error) {
	if create != nil && (create.XID == "" || create.XID != b.XID) {
		return 0, false, fmt.Errorf("storage: create %q and add a branch of %q: %w", create.XID, b.XID, protocol.ErrInvalidArgument)
	}
	xid := b.XID
	c := b.Clone()
	var id int64
	created := false
	err := s.update(ctx, d, func(tx *gorm.DB) error {
		created = false
		row, expired, err := s.lockGlobal(tx, xid)
		if err != nil {
			return err
		}
		var g *storage.Global
		switch {
		case row != nil:
			if g, err = row.global(); err != nil {
				return err
			}
			if g.Finished {
				// The rule answers for a finished global (its admit
				// refuses it); no branch is ever stored with a tombstone.
				if err := admit(g); err != nil {
					return err
				}
				return fmt.Errorf("storage: add a branch of %s: it is finished: %w", xid, protocol.ErrNotBegin)
			}
		case create == nil:
			return fmt.Errorf("storage: add a branch of %s: %w", xid, storage.ErrNotFound)
		default:
			g = create.Clone()
			g.Finished, g.BranchSeq = false, 0
		}
		if err := admit(g.Clone()); err != nil {
			return err
		}
		g.BranchSeq++
		if row == nil {
			if err := s.insertGlobal(tx, g, expired); err != nil {
				return err
			}
			created = true
		} else if err := tx.Table("xact_globals").Where("xid = ?", []byte(xid)).Update("branch_seq", g.BranchSeq).Error; err != nil {
			return fmt.Errorf("shareddb: update global %s: %w", xid, err)
		}
		c.ID = g.BranchSeq
		if err := tx.Create(rowOfBranch(c)).Error; err != nil {
			return fmt.Errorf("shareddb: insert branch %s/%d: %w", xid, c.ID, err)
		}
		id = c.ID
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	b.ID = id
	return id, created, nil
}

// UpdateBranch calls fn on a copy of the branch, read for update, and
// stores the result. Changes fn makes to XID and ID are ignored.
func (s *Store) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error, d storage.Durability) (*storage.Branch, error) {
	var out *storage.Branch
	err := s.update(ctx, d, func(tx *gorm.DB) error {
		if _, joined := s.self(); joined {
			// Phase-two progress is the owner's to record; a phase-one
			// report (the global in Begin) is anyone's.
			row, _, err := s.lockGlobal(tx, xid)
			if err != nil {
				return err
			}
			if err := s.fence(row); err != nil {
				return err
			}
		}
		var rows []branchRow
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("xid = ? AND branch_id = ?", []byte(xid), id).Limit(1).Find(&rows).Error
		if err != nil {
			return fmt.Errorf("shareddb: read branch %s/%d: %w", xid, id, err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("storage: update branch %s/%d: %w", xid, id, storage.ErrBranchNotFound)
		}
		old, err := rows[0].branch()
		if err != nil {
			return err
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			return err
		}
		c.XID, c.ID = xid, id
		r := rowOfBranch(c)
		err = tx.Table("xact_branches").Where("xid = ? AND branch_id = ?", []byte(xid), id).Updates(map[string]any{
			"resource": r.Resource, "branch_type": r.Type, "status": r.Status, "lock_keys": r.LockKeys,
			"app_data": r.AppData, "registered_at_s": r.RegisteredS, "registered_at_ns": r.RegisteredNs, "reason": r.Reason,
			"attempts": r.Attempts, "locks_released": r.LocksReleased,
		}).Error
		if err != nil {
			return fmt.Errorf("shareddb: update branch %s/%d: %w", xid, id, err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Branches returns the global's branches in registration order.
func (s *Store) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	var rows []branchRow
	err := s.view(ctx, func(db *gorm.DB) error {
		return db.Where("xid = ?", []byte(xid)).Order("branch_id").Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: branches of %s: %w", xid, err)
	}
	out := make([]*storage.Branch, 0, len(rows))
	for i := range rows {
		b, err := rows[i].branch()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
