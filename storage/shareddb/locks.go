package shareddb

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// The global row locks of every coordinator sharing the database are rows
// of xact_locks, keyed by (resource, key), naming the global and the
// branch that hold the row. The Store is its own lock manager (the methods
// of tc/ledger's LockManager): a branch's rows are inserted in the same
// database transaction as the branch (Hold), and deleted or passed on in
// the same transaction as the write that releases them (Releasing), so two
// coordinators never grant one row to two globals, and no crash leaves a
// row held by a global whose release was stored.

// lockRow is a row of xact_locks.
type lockRow struct {
	Resource []byte `gorm:"column:resource;primaryKey"`
	RowKey   []byte `gorm:"column:row_key;primaryKey"`
	XID      []byte `gorm:"column:xid"`
	BranchID int64  `gorm:"column:branch_id"`
}

func (lockRow) TableName() string { return "xact_locks" }

// rowID names a row for maps.
func rowID(resource, key string) string { return resource + "\x00" + key }

// keyArgs returns keys, without repeats, as query arguments.
func keyArgs(keys []string) [][]byte {
	seen := make(map[string]bool, len(keys))
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, []byte(k))
		}
	}
	return out
}

// conflict returns a *protocol.LockConflictError for the first key (in
// keys' order) of held, or nil if held is empty.
func conflict(resource string, keys []string, held []lockRow) error {
	if len(held) == 0 {
		return nil
	}
	by := make(map[string]string, len(held))
	for _, h := range held {
		by[string(h.RowKey)] = string(h.XID)
	}
	for _, k := range keys {
		if holder, ok := by[k]; ok {
			return &protocol.LockConflictError{Resource: resource, Key: k, Holder: holder}
		}
	}
	return nil
}

// Hold runs add (which stores the branch b) and inserts the rows of b's
// keys that b's global does not hold yet, in one database transaction. A
// row another global holds fails it with a *protocol.LockConflictError
// naming the first such key, and nothing is stored. A row another
// registration is inserting makes this one wait for its outcome.
func (s *Store) Hold(ctx context.Context, b *storage.Branch, add func(ctx context.Context) (int64, error)) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.ops.Done()
	var id int64
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		id = 0
		got, err := add(withTx(ctx, tx))
		if err != nil {
			return err
		}
		if keys := keyArgs(b.LockKeys); len(keys) > 0 {
			rows := make([]lockRow, len(keys))
			for i, k := range keys {
				rows[i] = lockRow{Resource: []byte(b.Resource), RowKey: k, XID: []byte(b.XID), BranchID: got}
			}
			// Rows b.XID holds already stay with the branch that took them.
			ins := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows)
			if ins.Error != nil {
				return fmt.Errorf("shareddb: take the locks of %s/%d: %w", b.XID, got, ins.Error)
			}
			if ins.RowsAffected == int64(len(rows)) {
				id = got // every row was free: no holder to look for
				return nil
			}
			// Some row was there already: it is b.XID's own (kept), or
			// another global's (a conflict), or it was deleted since the
			// INSERT looked (its holder released it): then b holds nothing
			// on it yet, and the transaction runs again to take it.
			var held []lockRow
			err := tx.Where("resource = ? AND row_key IN ?", []byte(b.Resource), keys).Find(&held).Error
			if err != nil {
				return fmt.Errorf("shareddb: read the locks of %s: %w", b.Resource, err)
			}
			var others []lockRow
			mine := make(map[string]bool, len(held))
			for _, h := range held {
				if string(h.XID) == b.XID {
					mine[string(h.RowKey)] = true
				} else {
					others = append(others, h)
				}
			}
			if err := conflict(b.Resource, b.LockKeys, others); err != nil {
				return err
			}
			for _, k := range keys {
				if !mine[string(k)] {
					return fmt.Errorf("%w: the lock row %s %q was released while %s/%d took it", errRetry, b.Resource, k, b.XID, got)
				}
			}
		}
		id = got
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// Releasing runs write and, in the same database transaction, deletes the
// rows it released or passes each to the lowest unreleased branch of xid
// that also lists it.
func (s *Store) Releasing(ctx context.Context, xid string, write func(ctx context.Context) ([]int64, bool, error)) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	return s.inTx(ctx, func(tx *gorm.DB) error {
		ids, all, err := write(withTx(ctx, tx))
		switch {
		case err != nil:
			return err
		case all:
			if err := tx.Where("xid = ?", []byte(xid)).Delete(&lockRow{}).Error; err != nil {
				return fmt.Errorf("shareddb: release the locks of %s: %w", xid, err)
			}
			return nil
		case len(ids) > 0:
			return passOn(tx, xid, ids)
		}
		return nil
	})
}

// passOn frees the rows the branches ids of xid hold, or hands each to the
// lowest branch of xid, not released, that lists it too.
func passOn(tx *gorm.DB, xid string, ids []int64) error {
	var held []lockRow
	if err := tx.Where("xid = ? AND branch_id IN ?", []byte(xid), ids).Find(&held).Error; err != nil {
		return fmt.Errorf("shareddb: read the locks of %s: %w", xid, err)
	}
	if len(held) == 0 {
		return nil
	}
	var rest []branchRow
	err := tx.Where("xid = ? AND locks_released = ? AND branch_id NOT IN ?", []byte(xid), false, ids).Order("branch_id").Find(&rest).Error
	if err != nil {
		return fmt.Errorf("shareddb: read the branches of %s: %w", xid, err)
	}
	next := map[string]int64{}
	for _, b := range rest {
		keys, err := decodeKeys(b.LockKeys)
		if err != nil {
			return fmt.Errorf("shareddb: branch %s/%d: %w", xid, b.BranchID, err)
		}
		for _, k := range keys {
			if _, ok := next[rowID(string(b.Resource), k)]; !ok {
				next[rowID(string(b.Resource), k)] = b.BranchID
			}
		}
	}
	for _, h := range held {
		where := tx.Table("xact_locks").Where("resource = ? AND row_key = ? AND xid = ?", h.Resource, h.RowKey, []byte(xid))
		if id, ok := next[rowID(string(h.Resource), string(h.RowKey))]; ok {
			err = where.Update("branch_id", id).Error
		} else {
			err = where.Delete(&lockRow{}).Error
		}
		if err != nil {
			return fmt.Errorf("shareddb: release a lock of %s: %w", xid, err)
		}
	}
	return nil
}

// Check returns nil if no key of resource is held by a global other than
// xid, or a *protocol.LockConflictError for the first one that is.
func (s *Store) Check(ctx context.Context, xid, resource string, keys []string) error {
	args := keyArgs(keys)
	if len(args) == 0 {
		return nil
	}
	var held []lockRow
	err := s.view(ctx, func(db *gorm.DB) error {
		return db.Where("resource = ? AND row_key IN ? AND xid <> ?", []byte(resource), args, []byte(xid)).Find(&held).Error
	})
	if err != nil {
		return fmt.Errorf("shareddb: read the locks of %s: %w", resource, err)
	}
	return conflict(resource, keys, held)
}

// Locks lists held locks, at most limit (<= 0: no limit): all of them
// ordered by resource and key, or xid's ordered by branch id, resource and
// key.
func (s *Store) Locks(ctx context.Context, xid string, limit int) ([]storage.Lock, error) {
	var rows []lockRow
	err := s.view(ctx, func(db *gorm.DB) error {
		q := db
		if xid != "" {
			q = q.Where("xid = ?", []byte(xid)).Order("branch_id")
		}
		if limit > 0 {
			q = q.Limit(limit)
		}
		return q.Order("resource").Order("row_key").Find(&rows).Error
	})
	if err != nil {
		return nil, fmt.Errorf("shareddb: list locks: %w", err)
	}
	out := make([]storage.Lock, len(rows))
	for i, r := range rows {
		out[i] = storage.Lock{Resource: string(r.Resource), Key: string(r.RowKey), XID: string(r.XID), BranchID: r.BranchID}
	}
	return slices.Clip(out), nil
}
