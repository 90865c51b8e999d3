package ledger

import (
	"context"
	"fmt"

	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/internal/locktable"
)

// Table is the in-memory LockManager of a single coordinator: the lock
// table (tc/internal/locktable), a view of the stored branches that
// LoadTable rebuilds when the coordinator starts.
type Table struct {
	t *locktable.Table
}

var _ LockManager = (*Table)(nil)

// NewTable returns an empty table, for an empty store.
func NewTable() *Table { return &Table{t: locktable.New()} }

// LoadTable returns the table of the locks store's branches hold: the
// keys of every branch whose locks are not released, of every unfinished
// global whose locks are not released. Two globals that hold one row
// contradict I5; LoadTable then fails with an error matching
// storage.ErrCorrupt that names them.
func LoadTable(ctx context.Context, store storage.Store) (*Table, error) {
	t := NewTable()
	gs, err := store.ListGlobals(ctx, storage.Filter{})
	if err != nil {
		return nil, fmt.Errorf("ledger: load the lock table: %w", err)
	}
	for _, g := range gs {
		if g.LocksReleased {
			continue
		}
		bs, err := store.Branches(ctx, g.XID)
		if err != nil {
			return nil, fmt.Errorf("ledger: load the lock table: %w", err)
		}
		for _, b := range bs { // in id order, as Add needs
			if b.LocksReleased || len(b.LockKeys) == 0 {
				continue
			}
			if err := t.t.Add(b.XID, b.ID, b.Resource, b.LockKeys); err != nil {
				return nil, fmt.Errorf("ledger: load the lock table: %w: branch %s/%d and another global's branch both hold a row (I5): %w",
					storage.ErrCorrupt, b.XID, b.ID, err)
			}
		}
	}
	return t, nil
}

// Hold reserves b's keys, runs add, and then gives the keys to the new
// branch, or back if add stored nothing (returned id 0).
func (t *Table) Hold(ctx context.Context, b *storage.Branch, add func(ctx context.Context) (int64, error)) (int64, error) {
	if len(b.LockKeys) == 0 {
		return add(ctx)
	}
	res, err := t.t.Reserve(b.XID, b.Resource, b.LockKeys)
	if err != nil {
		return 0, err
	}
	id, err := add(ctx)
	if id == 0 {
		res.Cancel()
		return 0, err
	}
	// Stored, or possibly stored (storage.ErrNotDurable): the rows stay
	// the branch's, as they will be if it survives.
	res.Commit(id)
	return id, err
}

// Releasing runs write and then frees what it released: a row is free
// for others only once its release is stored (and cannot be lost without
// losing their registration too: the store's log is in commit order).
func (t *Table) Releasing(ctx context.Context, xid string, write func(ctx context.Context) ([]int64, bool, error)) error {
	ids, all, err := write(ctx)
	if err != nil {
		return err
	}
	switch {
	case all:
		t.t.Release(xid)
	case len(ids) > 0:
		t.t.Release(xid, ids...)
	}
	return nil
}

// Check reports the first key of resource held (or being taken) by a
// global other than xid.
func (t *Table) Check(_ context.Context, xid, resource string, keys []string) error {
	return t.t.Check(xid, resource, keys)
}

// Locks lists held locks.
func (t *Table) Locks(_ context.Context, xid string, limit int) ([]storage.Lock, error) {
	return t.t.Locks(xid, limit), nil
}

// Len reports how many rows are held or being taken.
func (t *Table) Len() int { return t.t.Len() }
