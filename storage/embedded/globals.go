package embedded

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// maxWritesPerTxn bounds the writes of one transaction in FinishGlobal and
// the format migration; Badger refuses transactions past a size limit
// (ErrTxnTooBig), so a global with very many branches is cleaned up over
// several transactions.
const maxWritesPerTxn = 10000

// exists reports whether key is present. The read is recorded, so a
// concurrent transaction that writes key conflicts with this one.
func exists(txn *bdb.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bdb.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("storage/embedded: get: %w", err)
}

// readGlobal decodes the record at key (a global or tombstone key).
func readGlobal(txn *bdb.Txn, key []byte, xid string) (*storage.Global, bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage/embedded: get global %s: %w", xid, err)
	}
	g, err := itemGlobal(item)
	if err != nil {
		return nil, false, fmt.Errorf("storage/embedded: global %s: %w", xid, err)
	}
	return g, true, nil
}

func getGlobal(txn *bdb.Txn, xid string) (*storage.Global, bool, error) {
	return readGlobal(txn, globalKey(xid), xid)
}

// putGlobal writes g (whose previous version is old, nil if new) and
// notes a NextAt change for the due index.
func putGlobal(txn *tx, old, g *storage.Global) error {
	if old == nil || !old.NextAt.Equal(g.NextAt) {
		txn.due = append(txn.due, dueChange{xid: g.XID, at: g.NextAt})
	}
	k := globalKey(g.XID)
	if err := txn.Set(k, seal(k, encodeGlobal(g))); err != nil {
		return fmt.Errorf("storage/embedded: put global %s: %w", g.XID, err)
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
	return s.update(ctx, d, func(txn *tx) error {
		for _, key := range [][]byte{globalKey(c.XID), tombstoneKey(c.XID)} {
			ok, err := exists(txn.Txn, key)
			if err != nil {
				return err
			}
			if ok {
				return fmt.Errorf("storage: create global %s: %w", c.XID, storage.ErrExists)
			}
		}
		return putGlobal(txn, nil, c)
	})
}

// GetGlobal returns the global or its tombstone.
func (s *Store) GetGlobal(ctx context.Context, xid string) (*storage.Global, error) {
	var g *storage.Global
	err := s.view(ctx, func(txn *bdb.Txn) error {
		var ok bool
		var err error
		if g, ok, err = getGlobal(txn, xid); err != nil || ok {
			return err
		}
		if g, ok, err = readGlobal(txn, tombstoneKey(xid), xid); err != nil || ok {
			return err
		}
		return fmt.Errorf("storage: get global %s: %w", xid, storage.ErrNotFound)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// UpdateGlobal calls fn on a copy of the global and stores the result; fn
// runs again if the transaction conflicts. Changes fn makes to XID,
// BranchSeq and Finished are ignored.
func (s *Store) UpdateGlobal(ctx context.Context, xid string, fn func(g *storage.Global) error, d storage.Durability) (*storage.Global, error) {
	var out *storage.Global
	err := s.update(ctx, d, func(txn *tx) error {
		old, ok, err := getGlobal(txn.Txn, xid)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("storage: update global %s: %w", xid, storage.ErrNotFound)
		}
		c := old.Clone()
		if err := fn(c); err != nil {
			return err
		}
		c.XID, c.BranchSeq, c.Finished = old.XID, old.BranchSeq, false
		out = c
		return putGlobal(txn, old, c)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishGlobal deletes the global and its branches and writes a tombstone
// with status final that expires after the retention period. Finishing a
// tombstone is a no-op. A global with more than maxWritesPerTxn branches
// is cleaned up over several transactions; if one fails, calling
// FinishGlobal again completes it.
func (s *Store) FinishGlobal(ctx context.Context, xid string, final storage.Status, d storage.Durability) error {
	for {
		done := false
		err := s.update(ctx, d, func(txn *tx) error {
			done = false
			g, ok, err := getGlobal(txn.Txn, xid)
			if err != nil {
				return err
			}
			if !ok {
				tomb, err := exists(txn.Txn, tombstoneKey(xid))
				if err != nil {
					return err
				}
				if !tomb {
					return fmt.Errorf("storage: finish global %s: %w", xid, storage.ErrNotFound)
				}
				done = true
				return nil
			}
			if complete, err := deleteBranches(txn, g, s.writeBudget); err != nil || !complete {
				return err
			}
			txn.due = append(txn.due, dueChange{xid: xid, removed: true})
			if err := txn.Delete(globalKey(xid)); err != nil {
				return fmt.Errorf("storage/embedded: delete global %s: %w", xid, err)
			}
			t := g.Clone()
			t.Status = final
			t.Finished = true
			t.NextAt = time.Time{}
			tk := tombstoneKey(xid)
			e := bdb.NewEntry(tk, seal(tk, encodeGlobal(t))).WithTTL(s.cfg.retention)
			if err := txn.SetEntry(e); err != nil {
				return fmt.Errorf("storage/embedded: put tombstone %s: %w", xid, err)
			}
			done = true
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// deleteBranches deletes up to budget of g's branches, the highest ids
// first, and reports whether none are left. If some are, it lowers the
// stored global's BranchSeq to the highest id left, in the same write: a
// live global's branches are always exactly 1..BranchSeq, which is how
// load and Branches find branch records that went missing.
func deleteBranches(txn *tx, g *storage.Global, budget int) (bool, error) {
	prefix := branchPrefix(g.XID)
	if g.BranchSeq <= int64(budget) {
		// The usual case: all in one transaction, and no iterator: a live
		// global's branches are exactly 1..BranchSeq (load and Branches
		// check it), so their keys are known.
		for id := int64(1); id <= g.BranchSeq; id++ {
			if err := txn.Delete(branchKey(g.XID, id)); err != nil {
				return false, fmt.Errorf("storage/embedded: delete: %w", err)
			}
		}
		return true, nil
	}
	// Reverse iteration from the top (it costs Badger several times more
	// than forward, but only globals with very many branches come here).
	opts := bdb.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	opts.Reverse = true
	it := txn.NewIterator(opts)
	var keys [][]byte
	for it.Seek(append(slices.Clip(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)); it.Valid() && len(keys) <= budget; it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	complete := len(keys) <= budget
	if !complete {
		_, left, err := parseBranchKey(keys[budget])
		if err != nil {
			return false, fmt.Errorf("storage/embedded: branch key %q: %w: %w", keys[budget], ErrCorrupt, err)
		}
		keys = keys[:budget]
		c := g.Clone()
		c.BranchSeq = left
		if err := putGlobal(txn, g, c); err != nil {
			return false, err
		}
	}
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return false, fmt.Errorf("storage/embedded: delete: %w", err)
		}
	}
	return complete, nil
}

// deletePrefix deletes up to budget keys under prefix and reports how many
// it deleted and whether none are left.
func deletePrefix(txn *tx, prefix []byte, budget int) (int, bool, error) {
	keys := collectKeys(txn.Txn, prefix, budget+1)
	complete := len(keys) <= budget
	if !complete {
		keys = keys[:budget]
	}
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return 0, false, fmt.Errorf("storage/embedded: delete: %w", err)
		}
	}
	return len(keys), complete, nil
}

// collectKeys returns copies of up to limit keys under prefix. Keys are
// collected before anything is written so that no iterator is open while
// the transaction changes.
func collectKeys(txn *bdb.Txn, prefix []byte, limit int) [][]byte {
	opts := bdb.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	var keys [][]byte
	for it.Rewind(); it.Valid() && len(keys) < limit; it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

// ListGlobals returns the unfinished globals matching f, ordered by XID.
func (s *Store) ListGlobals(ctx context.Context, f storage.Filter) ([]*storage.Global, error) {
	var out []*storage.Global
	err := s.view(ctx, func(txn *bdb.Txn) error {
		opts := bdb.DefaultIteratorOptions
		opts.Prefix = []byte{prefixGlobal}
		it := txn.NewIterator(opts)
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			g, err := itemGlobal(it.Item())
			if err != nil {
				return fmt.Errorf("storage/embedded: global %q: %w", it.Item().Key()[1:], err)
			}
			if f.ParkedOnly && !g.Parked {
				continue
			}
			if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, g.Status) {
				continue
			}
			out = append(out, g)
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DueGlobals returns unfinished globals whose NextAt is set and not after t,
// earliest first, at most limit, from the in-memory due index (due.go).
func (s *Store) DueGlobals(ctx context.Context, t time.Time, limit int) ([]*storage.Global, error) {
	var out []*storage.Global
	xids := s.due.due(t, limit)
	err := s.view(ctx, func(txn *bdb.Txn) error {
		for _, xid := range xids {
			g, ok, err := getGlobal(txn, xid)
			if errors.Is(err, ErrCorrupt) {
				// Nobody can act on a global whose record is damaged;
				// reading it again at every scan would only stall the
				// others. It leaves the due index (GetGlobal and
				// ListGlobals keep failing on it, visibly).
				s.due.set(xid, time.Time{}, txn.ReadTs(), false)
				s.logError("storage/embedded: a due global's record is damaged; it is not scheduled any more", "xid", xid, "file", s.fileOf(globalKey(xid)), "err", err)
				continue
			}
			if err != nil {
				return err
			}
			// The index can run ahead of this read (a change committed
			// since it began); the stored NextAt decides.
			if ok && !g.NextAt.IsZero() && !g.NextAt.After(t) {
				out = append(out, g)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
