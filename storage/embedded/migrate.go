package embedded

import (
	"context"
	"errors"
	"fmt"

	bdb "github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/xact-io/xact/storage"
)

// Format versions of a data directory, kept under formatKey.
//
// Version 1 (no format key) stored the lock table itself: a row per held
// key ('l') and a per-global index ('h'), deleted on release. Version 2
// stores only release flags (Global.LocksReleased, Branch.LocksReleased),
// from which the coordinator derives the lock table (tc/ledger). Version 3 seals
// every record with a checksum (records.go, seal).
//
// A version-1 directory cannot simply be read as version 2: a branch keeps
// its lock keys after its locks were released (the commit round that did
// not finish released them all; a rollback releases branch by branch), so
// deriving locks from the branches alone would take those rows again,
// perhaps from the global that holds them now. Open migrates instead:
//
//  1. (From version 1.) Every unreleased branch that lists lock keys but
//     has no entry in the version-1 lock index is marked LocksReleased: it
//     holds no row (it was released, or every key it listed was held by an
//     earlier branch of its global, which the derived table attributes to
//     that branch anyway). Where the TC released locks (all at once, or
//     branch by branch in reverse registration order), the derived table
//     is then the version-1 table. These writes depend only on the
//     version-1 keys, which stay untouched until step 4, so a crash in
//     step 1 just repeats it at the next Open.
//  2. (From versions 1 and 2.) Every record without a seal is rewritten
//     with one (tombstones keep their expiry). A record that does not
//     decode is left as it is, so that load reports it as damaged instead
//     of the migration blessing it with a valid checksum. A crash repeats
//     the step for the records not yet sealed.
//  3. The format key is written, durably. From then on the version-1 keys
//     are ignored and every record must carry a valid seal.
//  4. The version-1 keys are deleted (at every Open while any is left).
//
// A directory at version 2 or later must not be opened by an older xact:
// at version 2 it would find no lock rows and hold no locks; at version 3
// it would read the seal as an unknown field and check nothing.
const formatVersion = 3

// readFormat returns the directory's format version.
func readFormat(txn *bdb.Txn) (uint64, error) {
	item, err := txn.Get(formatKey)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	var version uint64
	err = item.Value(func(v []byte) error {
		var n int
		version, n = protowire.ConsumeVarint(v)
		if n < 0 || n != len(v) {
			return fmt.Errorf("%w: format version %x does not decode", ErrCorrupt, v)
		}
		return nil
	})
	return version, err
}

// migrate brings the directory to formatVersion (see above).
func (s *Store) migrate() error {
	ctx := context.Background()
	var version uint64
	err := s.db.View(func(txn *bdb.Txn) error {
		var err error
		version, err = readFormat(txn)
		return err
	})
	s.format = version
	switch {
	case err != nil:
		return fmt.Errorf("read format version: %w", err)
	case version > formatVersion:
		return fmt.Errorf("data directory has format version %d; this xact reads up to %d", version, formatVersion)
	case version < formatVersion:
		if s.cfg.readOnly {
			// Verify reads it as it is; the server migrates it.
			s.legacy = true
			return nil
		}
		if version < 2 {
			if err := s.releaseUnheld(ctx); err != nil {
				return fmt.Errorf("migrate to format version %d: %w", formatVersion, err)
			}
		}
		if err := s.sealAll(ctx); err != nil {
			return fmt.Errorf("migrate to format version %d: %w", formatVersion, err)
		}
		if err := s.update(ctx, storage.Durable, func(txn *tx) error {
			return txn.Set(formatKey, protowire.AppendVarint(nil, formatVersion))
		}); err != nil {
			return fmt.Errorf("write format version: %w", err)
		}
	}
	for _, p := range []byte{prefixLegacyLock, prefixLegacyHeld} {
		for {
			var left [][]byte
			if err := s.db.View(func(txn *bdb.Txn) error {
				left = collectKeys(txn, []byte{p}, 1)
				return nil
			}); err != nil || len(left) == 0 {
				break
			}
			if s.cfg.readOnly {
				break
			}
			if err := s.update(ctx, storage.Durable, func(txn *tx) error {
				_, _, err := deletePrefix(txn, []byte{p}, s.writeBudget)
				return err
			}); err != nil {
				return fmt.Errorf("delete format-1 lock keys: %w", err)
			}
		}
	}
	return nil
}

// sealAll is step 2 of the migration: it seals every record that decodes
// and has no seal yet, at most writeBudget per transaction.
func (s *Store) sealAll(ctx context.Context) error {
	for _, p := range []byte{prefixGlobal, prefixTombstone, prefixBranch} {
		start := []byte{p}
		for start != nil {
			type rec struct {
				key, val  []byte
				expiresAt uint64
			}
			var todo []rec
			var next []byte
			err := s.db.View(func(txn *bdb.Txn) error {
				opts := bdb.DefaultIteratorOptions
				opts.Prefix = []byte{p}
				it := txn.NewIterator(opts)
				defer it.Close()
				for it.Seek(start); it.Valid(); it.Next() {
					if len(todo) == s.writeBudget {
						next = it.Item().KeyCopy(nil)
						return nil
					}
					item := it.Item()
					v, err := item.ValueCopy(nil)
					if err != nil {
						continue // load reports it
					}
					k := item.KeyCopy(nil)
					if isSealed(k, v) || !decodes(p, v) {
						continue
					}
					todo = append(todo, rec{k, seal(k, v), item.ExpiresAt()})
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(todo) > 0 {
				err = s.update(ctx, storage.Durable, func(txn *tx) error {
					for _, r := range todo {
						e := bdb.NewEntry(r.key, r.val)
						e.ExpiresAt = r.expiresAt
						if err := txn.SetEntry(e); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			start = next
		}
	}
	return nil
}

// decodes reports whether v is an unsealed record of the keyspace p that
// decodes.
func decodes(p byte, v []byte) bool {
	var err error
	if p == prefixBranch {
		_, err = decodeBranch(v)
	} else {
		_, err = decodeGlobal(v)
	}
	return err == nil
}

type branchRef struct {
	xid string
	id  int64
}

// releaseUnheld is step 1 of the migration from version 1.
func (s *Store) releaseUnheld(ctx context.Context) error {
	var todo []branchRef
	err := s.db.View(func(txn *bdb.Txn) error {
		held := map[branchRef]bool{}
		opts := bdb.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = []byte{prefixLegacyHeld}
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			xid, id, err := parseLegacyHeld(it.Item().Key())
			if err != nil {
				it.Close()
				return fmt.Errorf("lock index key %q: %w: %w", it.Item().Key(), ErrCorrupt, err)
			}
			held[branchRef{xid, id}] = true
		}
		it.Close()

		opts = bdb.DefaultIteratorOptions
		opts.Prefix = []byte{prefixBranch}
		it = txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			b, err := itemBranchFormat(it.Item(), true)
			if err != nil {
				continue // load reports it
			}
			if len(b.LockKeys) > 0 && !b.LocksReleased && !held[branchRef{b.XID, b.ID}] {
				todo = append(todo, branchRef{b.XID, b.ID})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for len(todo) > 0 {
		batch := todo[:min(len(todo), s.writeBudget)]
		todo = todo[len(batch):]
		err := s.update(ctx, storage.Durable, func(txn *tx) error {
			for _, r := range batch {
				item, err := txn.Get(branchKey(r.xid, r.id))
				if errors.Is(err, bdb.ErrKeyNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				b, err := itemBranchFormat(item, true)
				if err != nil {
					return err
				}
				if b.LocksReleased {
					continue
				}
				b.XID, b.ID, b.LocksReleased = r.xid, r.id, true
				if err := putBranch(txn, b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
