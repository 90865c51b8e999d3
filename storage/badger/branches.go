package badger

import (
	"context"
	"errors"
	"fmt"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/internal/locktable"
)

// registrable reads xid's global and checks that a branch may register
// now: the global exists (a tombstoned one refuses with ErrNotBegin), is
// in Begin with its locks not released, and is before its deadline. If
// none is stored and begin is not nil, begin is the global (to be
// created). It returns the global to write and the stored one (nil when
// begin is to be created).
func registrable(txn *bdb.Txn, xid string, begin *storage.Global, now time.Time) (g, stored *storage.Global, err error) {
	stored, ok, err := getGlobal(txn, xid)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		g = stored.Clone()
	} else {
		tomb, err := exists(txn, tombstoneKey(xid))
		if err != nil {
			return nil, nil, err
		}
		switch {
		case tomb:
			return nil, nil, fmt.Errorf("storage: register branch of %s (finished): %w", xid, storage.ErrNotBegin)
		case begin == nil:
			return nil, nil, fmt.Errorf("storage: register branch of %s: %w", xid, storage.ErrNotFound)
		}
		g, stored = begin.Clone(), nil
	}
	switch {
	case g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN:
		return nil, nil, fmt.Errorf("storage: register branch of %s (status %v): %w", xid, g.Status, storage.ErrNotBegin)
	case g.LocksReleased:
		return nil, nil, fmt.Errorf("storage: register branch of %s (locks released): %w", xid, storage.ErrNotBegin)
	case !g.Deadline.IsZero() && !now.Before(g.Deadline):
		return nil, nil, fmt.Errorf("storage: register branch of %s: %w", xid, storage.ErrTimedOut)
	}
	return g, stored, nil
}

// RegisterBranch reserves b's keys in the lock table, then checks the
// global, assigns b.ID and stores the branch in one transaction. The keys
// are the branch's once that transaction commits, and are given back if it
// does not. A tombstoned global refuses with storage.ErrNotBegin.
func (s *Store) RegisterBranch(ctx context.Context, b *storage.Branch, now time.Time) (int64, error) {
	id, _, err := s.register(ctx, nil, b, now)
	return id, err
}

// BeginRegisterBranch is RegisterBranch that first creates g, in the same
// transaction, if no global or tombstone of its XID is stored.
func (s *Store) BeginRegisterBranch(ctx context.Context, g *storage.Global, b *storage.Branch, now time.Time) (int64, bool, error) {
	if g.XID == "" || g.XID != b.XID {
		return 0, false, fmt.Errorf("storage: begin %q and register a branch of %q: %w", g.XID, b.XID, protocol.ErrInvalidArgument)
	}
	begin := g.Clone()
	begin.Finished, begin.BranchSeq = false, 0
	return s.register(ctx, begin, b, now)
}

func (s *Store) register(ctx context.Context, begin *storage.Global, b *storage.Branch, now time.Time) (int64, bool, error) {
	c := b.Clone()
	c.LocksReleased = false
	var res *locktable.Reservation
	if len(c.LockKeys) > 0 {
		var err error
		if res, err = s.locks.Reserve(c.XID, c.Resource, c.LockKeys); err != nil {
			return 0, false, s.registerConflict(ctx, c.XID, begin, now, err)
		}
		defer res.Cancel() // does nothing after Commit
	}
	var id int64
	created := false
	err := s.updateHook(ctx, func(txn *tx) error {
		g, stored, err := registrable(txn.Txn, c.XID, begin, now)
		if err != nil {
			return err
		}
		created = stored == nil
		g.BranchSeq++
		id = g.BranchSeq
		c.ID = id
		if err := putBranch(txn, c); err != nil {
			return fmt.Errorf("storage/badger: put branch: %w", err)
		}
		return putGlobal(txn, stored, g)
	}, func() {
		if res != nil {
			res.Commit(id)
		}
	})
	if err != nil {
		return 0, false, err
	}
	b.ID = id
	return id, created, nil
}

// registerConflict answers a registration whose keys conflict: if the
// global refuses registrations anyway, that is the answer (as if it had
// been checked first), else the conflict.
func (s *Store) registerConflict(ctx context.Context, xid string, begin *storage.Global, now time.Time, conflict error) error {
	err := s.view(ctx, func(txn *bdb.Txn) error {
		_, _, err := registrable(txn, xid, begin, now)
		return err
	})
	if err != nil {
		return err
	}
	return conflict
}

// getBranch reads a branch record.
func getBranch(txn *bdb.Txn, xid string, id int64) (*storage.Branch, bool, error) {
	item, err := txn.Get(branchKey(xid, id))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage/badger: get branch %s/%d: %w", xid, id, err)
	}
	b, err := itemBranch(item)
	if err != nil {
		return nil, false, fmt.Errorf("storage/badger: branch %s/%d: %w", xid, id, err)
	}
	return b, true, nil
}

// putBranch writes b's record, sealed.
func putBranch(txn *tx, b *storage.Branch) error {
	k := branchKey(b.XID, b.ID)
	if err := txn.Set(k, seal(k, encodeBranch(b))); err != nil {
		return fmt.Errorf("storage/badger: put branch %s/%d: %w", b.XID, b.ID, err)
	}
	return nil
}

// UpdateBranch calls fn on a copy of the branch and stores the result; fn
// runs again if the transaction conflicts. Changes fn makes to XID and ID
// are ignored; setting LocksReleased frees the branch's locks once the
// write returns, clearing it is ignored.
func (s *Store) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error) (*storage.Branch, error) {
	var out *storage.Branch
	released := false
	err := s.update(ctx, func(txn *tx) error {
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
		c.LocksReleased = c.LocksReleased || old.LocksReleased
		released = c.LocksReleased && !old.LocksReleased
		out = c
		return putBranch(txn, c)
	})
	if err != nil {
		return nil, err
	}
	if released {
		s.locks.Release(xid, id)
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
				return fmt.Errorf("storage/badger: branch of %s: %w", xid, err)
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

// ReleaseLocks sets LocksReleased on the given branches, or on the global
// when no branch id is given, in one durable transaction, and then frees
// the rows in the lock table.
func (s *Store) ReleaseLocks(ctx context.Context, xid string, branchIDs ...int64) error {
	err := s.update(ctx, func(txn *tx) error {
		if len(branchIDs) == 0 {
			g, ok, err := getGlobal(txn.Txn, xid)
			if err != nil || !ok || g.LocksReleased {
				return err // a finished or unknown global holds nothing
			}
			c := g.Clone()
			c.LocksReleased = true
			return putGlobal(txn, g, c)
		}
		for _, id := range branchIDs {
			b, ok, err := getBranch(txn.Txn, xid, id)
			if err != nil {
				return err
			}
			if !ok || b.LocksReleased {
				continue
			}
			b.LocksReleased = true
			if err := putBranch(txn, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.locks.Release(xid, branchIDs...)
	return nil
}

// CheckLocks reports the first key of resource held (or being reserved)
// by a global other than xid.
func (s *Store) CheckLocks(ctx context.Context, xid, resource string, keys []string) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.ops.Done()
	return s.locks.Check(xid, resource, keys)
}

// Locks lists held locks, at most limit (<= 0: no limit): all of them
// ordered by resource and key, or one global's ordered by branch id,
// resource and key.
func (s *Store) Locks(ctx context.Context, xid string, limit int) ([]storage.Lock, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.ops.Done()
	return s.locks.Locks(xid, limit), nil
}
