package embedded

import (
	"context"
	"errors"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// AddBranch reads the global (or its tombstone, or create if neither is
// stored), calls admit on it, assigns b.ID and stores the branch and the
// global in one transaction. admit runs again if the transaction
// conflicts.
func (s *Store) AddBranch(ctx context.Context, b *storage.Branch, create *storage.Global, admit storage.Admit, d storage.Durability) (int64, bool, error) {
	if create != nil && (create.XID == "" || create.XID != b.XID) {
		return 0, false, fmt.Errorf("storage: create %q and add a branch of %q: %w", create.XID, b.XID, protocol.ErrInvalidArgument)
	}
	xid := b.XID
	c := b.Clone()
	var id int64
	created := false
	err := s.update(ctx, d, func(txn *tx) error {
		stored, ok, err := getGlobal(txn.Txn, xid)
		if err != nil {
			return err
		}
		var g *storage.Global
		if ok {
			g = stored.Clone()
		} else {
			tomb, finished, err := readGlobal(txn.Txn, tombstoneKey(xid), xid)
			switch {
			case err != nil:
				return err
			case finished:
				// The rule answers for a finished global (its admit
				// refuses it); no branch is ever stored with a tombstone.
				if err := admit(tomb); err != nil {
					return err
				}
				return fmt.Errorf("storage: add a branch of %s: it is finished: %w", xid, protocol.ErrNotBegin)
			case create == nil:
				return fmt.Errorf("storage: add a branch of %s: %w", xid, storage.ErrNotFound)
			}
			g = create.Clone()
			g.Finished, g.BranchSeq = false, 0
		}
		if err := admit(g.Clone()); err != nil {
			return err
		}
		created = stored == nil
		g.BranchSeq++
		id = g.BranchSeq
		c.ID = id
		if err := putBranch(txn, c); err != nil {
			return err
		}
		return putGlobal(txn, stored, g)
	})
	if err != nil && !errors.Is(err, storage.ErrNotDurable) {
		return 0, false, err
	}
	b.ID = id
	return id, created, err
}

// getBranch reads a branch record.
func getBranch(txn *bdb.Txn, xid string, id int64) (*storage.Branch, bool, error) {
	item, err := txn.Get(branchKey(xid, id))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage/embedded: get branch %s/%d: %w", xid, id, err)
	}
	b, err := itemBranch(item)
	if err != nil {
		return nil, false, fmt.Errorf("storage/embedded: branch %s/%d: %w", xid, id, err)
	}
	return b, true, nil
}

// putBranch writes b's record, sealed.
func putBranch(txn *tx, b *storage.Branch) error {
	k := branchKey(b.XID, b.ID)
	if err := txn.Set(k, seal(k, encodeBranch(b))); err != nil {
		return fmt.Errorf("storage/embedded: put branch %s/%d: %w", b.XID, b.ID, err)
	}
	return nil
}

// UpdateBranch calls fn on a copy of the branch and stores the result; fn
// runs again if the transaction conflicts. Changes fn makes to XID and ID
// are ignored.
func (s *Store) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error, d storage.Durability) (*storage.Branch, error) {
	var out *storage.Branch
	err := s.update(ctx, d, func(txn *tx) error {
		old, ok, err := getBranch(txn.Txn, xid, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("storage: update branch %s/%d: %w", xid, id, storage.ErrBranchNotFound)
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			return err
		}
		c.XID, c.ID = xid, id
		out = c
		return putBranch(txn, c)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Branches returns the global's branches in registration order (their keys
// sort by branch id). They are read with the global, and must be exactly
// its branches 1..BranchSeq: a branch record that went missing (a damaged
// table block that an iterator stops at) is reported as ErrCorrupt, never
// returned as fewer branches.
func (s *Store) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	out := []*storage.Branch{}
	err := s.view(ctx, func(txn *bdb.Txn) error {
		g, _, err := getGlobal(txn, xid)
		if err != nil {
			return err
		}
		opts := bdb.DefaultIteratorOptions
		opts.Prefix = branchPrefix(xid)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			b, err := itemBranch(it.Item())
			if err != nil {
				return fmt.Errorf("storage/embedded: branch of %s: %w", xid, err)
			}
			out = append(out, b)
		}
		return checkBranches(xid, g, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
