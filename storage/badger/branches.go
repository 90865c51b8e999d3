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
)

// getHolder reads the holder of a lock row. The read is recorded, which is
// what makes lock acquisition safe: Badger detects conflicts only on keys a
// transaction read, so two transactions that both find a row free and both
// take it conflict at commit, and the later one is retried and sees the row
// taken.
func getHolder(txn *bdb.Txn, key []byte) (holder, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return holder{}, false, nil
	}
	if err != nil {
		return holder{}, false, fmt.Errorf("storage/badger: get lock: %w", err)
	}
	var h holder
	err = item.Value(func(v []byte) error {
		h, err = decodeHolder(v)
		return err
	})
	if err != nil {
		return holder{}, false, fmt.Errorf("storage/badger: lock %q: %w", key, err)
	}
	return h, true, nil
}

// RegisterBranch checks the global, takes b's locks all or nothing, assigns
// b.ID and stores the branch, in one transaction. A tombstoned global
// refuses with storage.ErrNotBegin.
func (s *Store) RegisterBranch(ctx context.Context, b *storage.Branch, now time.Time) (int64, error) {
	c := b.Clone()
	var id int64
	err := s.update(ctx, func(txn *tx) error {
		g, ok, err := getGlobal(txn.Txn, c.XID)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			tomb, err := exists(txn.Txn, tombstoneKey(c.XID))
			if err != nil {
				return err
			}
			if tomb {
				return fmt.Errorf("storage: register branch of %s (finished): %w", c.XID, storage.ErrNotBegin)
			}
			return fmt.Errorf("storage: register branch of %s: %w", c.XID, storage.ErrNotFound)
		case g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN:
			return fmt.Errorf("storage: register branch of %s (status %v): %w", c.XID, g.Status, storage.ErrNotBegin)
		case !g.Deadline.IsZero() && !now.Before(g.Deadline):
			return fmt.Errorf("storage: register branch of %s: %w", c.XID, storage.ErrTimedOut)
		}

		// Read every row before writing any: all or nothing.
		var take []string
		seen := make(map[string]struct{}, len(c.LockKeys))
		for _, k := range c.LockKeys {
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			h, held, err := getHolder(txn.Txn, lockKey(c.Resource, k))
			if err != nil {
				return err
			}
			if held && h.xid != c.XID {
				return &protocol.LockConflictError{Resource: c.Resource, Key: k, Holder: h.xid}
			}
			if !held {
				take = append(take, k)
			}
			// Held by this global already: the row stays with the branch
			// that took it first, which is rolled back last (I9).
		}

		g.BranchSeq++
		id = g.BranchSeq
		c.ID = id
		val := encodeHolder(holder{xid: c.XID, branchID: id})
		for _, k := range take {
			if err := txn.Set(lockKey(c.Resource, k), val); err != nil {
				return fmt.Errorf("storage/badger: lock: %w", err)
			}
			if err := txn.Set(heldKey(c.XID, id, c.Resource, k), nil); err != nil {
				return fmt.Errorf("storage/badger: lock index: %w", err)
			}
		}
		if err := txn.Set(branchKey(c.XID, id), encodeBranch(c)); err != nil {
			return fmt.Errorf("storage/badger: put branch: %w", err)
		}
		return putGlobal(txn, g, g)
	})
	if err != nil {
		return 0, err
	}
	b.ID = id
	return id, nil
}

// UpdateBranch calls fn on a copy of the branch and stores the result; fn
// runs again if the transaction conflicts. Changes fn makes to XID and ID
// are ignored.
func (s *Store) UpdateBranch(ctx context.Context, xid string, id int64, fn func(b *storage.Branch) error) (*storage.Branch, error) {
	var out *storage.Branch
	err := s.update(ctx, func(txn *tx) error {
		key := branchKey(xid, id)
		item, err := txn.Get(key)
		if errors.Is(err, bdb.ErrKeyNotFound) {
			return fmt.Errorf("storage: update branch %s/%d: %w", xid, id, storage.ErrBranchNotFound)
		}
		if err != nil {
			return fmt.Errorf("storage/badger: get branch %s/%d: %w", xid, id, err)
		}
		var c *storage.Branch
		if err := item.Value(func(v []byte) error {
			c, err = decodeBranch(v)
			return err
		}); err != nil {
			return fmt.Errorf("storage/badger: branch %s/%d: %w", xid, id, err)
		}
		if err := fn(c); err != nil {
			return err
		}
		c.XID, c.ID = xid, id
		out = c
		if err := txn.Set(key, encodeBranch(c)); err != nil {
			return fmt.Errorf("storage/badger: put branch %s/%d: %w", xid, id, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Branches returns the global's branches in registration order (their keys
// sort by branch id).
func (s *Store) Branches(ctx context.Context, xid string) ([]*storage.Branch, error) {
	out := []*storage.Branch{}
	err := s.view(ctx, func(txn *bdb.Txn) error {
		opts := bdb.DefaultIteratorOptions
		opts.Prefix = branchPrefix(xid)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var b *storage.Branch
			err := it.Item().Value(func(v []byte) error {
				var err error
				b, err = decodeBranch(v)
				return err
			})
			if err != nil {
				return fmt.Errorf("storage/badger: branch of %s: %w", xid, err)
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReleaseLocks deletes the locks xid holds for the given branches, or all of
// them, through the per-global lock index. Very many locks are released
// over several durable transactions.
func (s *Store) ReleaseLocks(ctx context.Context, xid string, branchIDs ...int64) error {
	for {
		complete := false
		err := s.update(ctx, func(txn *tx) error {
			var err error
			_, complete, err = releaseLocks(txn, xid, branchIDs, s.writeBudget)
			return err
		})
		if err != nil || complete {
			return err
		}
	}
}

// releaseLocks deletes up to budget keys' worth of xid's locks (of the
// given branches, or all) and reports how many keys it deleted and whether
// none are left.
func releaseLocks(txn *tx, xid string, branchIDs []int64, budget int) (int, bool, error) {
	prefixes := [][]byte{heldPrefix(xid)}
	if len(branchIDs) > 0 {
		prefixes = prefixes[:0]
		for _, id := range branchIDs {
			prefixes = append(prefixes, heldBranchPrefix(xid, id))
		}
	}
	plen := len(heldPrefix(xid))
	deleted := 0
	for _, p := range prefixes {
		// Each lock costs two deletes: the row and its index entry.
		keys := collectKeys(txn.Txn, p, (budget-deleted)/2+1)
		complete := len(keys) <= (budget-deleted)/2
		if !complete {
			keys = keys[:(budget-deleted)/2]
		}
		for _, k := range keys {
			_, resource, key, err := parseHeldKey(k[plen:])
			if err != nil {
				return deleted, false, fmt.Errorf("storage/badger: lock index of %s: %w: %w", xid, ErrCorrupt, err)
			}
			if err := txn.Delete(lockKey(resource, key)); err != nil {
				return deleted, false, fmt.Errorf("storage/badger: unlock: %w", err)
			}
			if err := txn.Delete(k); err != nil {
				return deleted, false, fmt.Errorf("storage/badger: unlock: %w", err)
			}
			deleted += 2
		}
		if !complete {
			return deleted, false, nil
		}
	}
	return deleted, true, nil
}

// CheckLocks reports the first key of resource held by a global other than
// xid.
func (s *Store) CheckLocks(ctx context.Context, xid, resource string, keys []string) error {
	return s.view(ctx, func(txn *bdb.Txn) error {
		for _, k := range keys {
			h, held, err := getHolder(txn, lockKey(resource, k))
			if err != nil {
				return err
			}
			if held && h.xid != xid {
				return &protocol.LockConflictError{Resource: resource, Key: k, Holder: h.xid}
			}
		}
		return nil
	})
}

// Locks lists held locks, at most limit (<= 0: no limit): all of them
// ordered by resource and key, or one global's ordered by branch id,
// resource and key.
func (s *Store) Locks(ctx context.Context, xid string, limit int) ([]storage.Lock, error) {
	var out []storage.Lock
	err := s.view(ctx, func(txn *bdb.Txn) error {
		opts := bdb.DefaultIteratorOptions
		if xid == "" {
			opts.Prefix = []byte{prefixLock}
		} else {
			opts.Prefix = heldPrefix(xid)
			opts.PrefetchValues = false
		}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid() && (limit <= 0 || len(out) < limit); it.Next() {
			item := it.Item()
			if xid != "" {
				id, resource, key, err := parseHeldKey(item.Key()[len(opts.Prefix):])
				if err != nil {
					return fmt.Errorf("storage/badger: lock index of %s: %w: %w", xid, ErrCorrupt, err)
				}
				out = append(out, storage.Lock{Resource: resource, Key: key, XID: xid, BranchID: id})
				continue
			}
			resource, key, err := parseLockKey(item.Key())
			if err != nil {
				return fmt.Errorf("storage/badger: lock: %w: %w", ErrCorrupt, err)
			}
			var h holder
			if err := item.Value(func(v []byte) error {
				h, err = decodeHolder(v)
				return err
			}); err != nil {
				return fmt.Errorf("storage/badger: lock %s %q: %w", resource, key, err)
			}
			out = append(out, storage.Lock{Resource: resource, Key: key, XID: h.xid, BranchID: h.branchID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
