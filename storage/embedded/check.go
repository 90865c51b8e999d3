package embedded

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/y"

	"github.com/xact-io/xact/storage"
)

// loaded is what load found.
type loaded struct {
	globals, branches uint64
	damage            []Damage
}

// load builds the due index from the stored globals and checks every
// record on the way: its seal, that every branch belongs to a stored
// global, and that a global's branches are exactly 1..BranchSeq (AddBranch
// writes the branch and the new BranchSeq in one transaction; FinishGlobal
// lowers BranchSeq as it deletes from the top). So a lost branch or global record is found
// here, not skipped: a rollback decision without its branches would
// release their rows and lose their undo.
func (s *Store) load() (loaded, error) {
	var res loaded
	err := guardBadger(func() error {
		return s.db.View(func(txn *bdb.Txn) error {
			return s.loadTxn(txn, &res)
		})
	})
	return res, err
}

func (s *Store) loadTxn(txn *bdb.Txn, res *loaded) error {
	damaged := func(key []byte, format string, args ...any) {
		res.damage = append(res.damage, Damage{File: s.fileOf(key), What: fmt.Sprintf(format, args...)})
	}
	seq := map[string]int64{} // unfinished global -> BranchSeq; -1: unreadable
	opts := bdb.DefaultIteratorOptions
	opts.Prefix = []byte{prefixGlobal}
	it := txn.NewIterator(opts)
	closed := false
	defer func() {
		if !closed { // a panic: Txn.Discard panics again over an open iterator
			it.Close()
		}
	}()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		xid := string(item.Key()[1:])
		res.globals++
		g, err := s.itemGlobal(item)
		if err == nil && g.XID != xid {
			err = fmt.Errorf("%w: the record names %q", ErrCorrupt, g.XID)
		}
		if err != nil {
			damaged(item.Key(), "global %q: %v", xid, err)
			seq[xid] = -1
			continue
		}
		if !g.NextAt.IsZero() {
			s.due.set(xid, g.NextAt, txn.ReadTs(), false)
		}
		seq[xid] = g.BranchSeq
	}
	it.Close()
	closed = true

	// Branch keys sort by global, then id: one global's come together, in
	// registration order.
	cur, next := "", int64(0) // the global being walked; the id expected next
	seen := map[string]bool{}
	endGlobal := func() {
		if cur == "" && next == 0 {
			return
		}
		seen[cur] = true
		if n, ok := seq[cur]; ok && n >= 0 && next-1 < n {
			damaged(branchKey(cur, next), "global %q: branch records %s missing (it registered %d)", cur, idRange(next, n), n)
		}
	}
	opts.Prefix = []byte{prefixBranch}
	it = txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		res.branches++
		xid, id, err := parseBranchKey(item.Key())
		if err != nil {
			damaged(item.Key(), "branch key %q does not decode", item.Key())
			continue
		}
		if xid != cur || next == 0 {
			endGlobal()
			cur, next = xid, 1
			if _, ok := seq[xid]; !ok {
				damaged(item.Key(), "global %q: branch records without their global record (it is missing)", xid)
			}
		}
		if id != next {
			if n, ok := seq[xid]; ok && n >= 0 {
				damaged(item.Key(), "global %q: branch records %s missing", xid, idRange(next, min(id-1, n)))
			}
		}
		next = id + 1
		if n, ok := seq[xid]; ok && n >= 0 && id > n {
			damaged(item.Key(), "global %q: branch %d is past the %d it registered", xid, id, n)
		}
		b, err := s.itemBranch(item)
		if err == nil && (b.XID != xid || b.ID != id) {
			err = fmt.Errorf("%w: the record names %q/%d", ErrCorrupt, b.XID, b.ID)
		}
		if err != nil {
			damaged(item.Key(), "branch %q/%d: %v", xid, id, err)
		}
	}
	endGlobal()
	for xid, n := range seq {
		if n > 0 && !seen[xid] {
			damaged(globalKey(xid), "global %q: branch records %s missing (it registered %d, none is stored)", xid, idRange(1, n), n)
		}
	}
	slices.SortStableFunc(res.damage, func(a, b Damage) int { return strings.Compare(a.What, b.What) })
	return nil
}

func idRange(from, to int64) string {
	if from == to {
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d..%d", from, to)
}

// itemGlobal and itemBranch decode as the directory's format requires.
func (s *Store) itemGlobal(item *bdb.Item) (*storage.Global, error) {
	var g *storage.Global
	err := itemRecord(item, s.legacy, func(msg []byte) error {
		var err error
		g, err = decodeGlobal(msg)
		return err
	})
	return g, err
}

func (s *Store) itemBranch(item *bdb.Item) (*storage.Branch, error) {
	return itemBranchFormat(item, s.legacy)
}

// fileOf names the table files whose key range holds key, or the WAL if
// none does.
func (s *Store) fileOf(key []byte) string {
	var names []string
	for _, t := range s.db.Tables() {
		if bytes.Compare(y.ParseKey(t.Left), key) <= 0 && bytes.Compare(key, y.ParseKey(t.Right)) <= 0 {
			names = append(names, fmt.Sprintf("%06d%s", t.ID, sstExt))
		}
	}
	if len(names) == 0 {
		return "*" + walExt
	}
	slices.Sort(names)
	return strings.Join(names, " or ")
}

// count returns the number of live global and branch records (keys only).
func (s *Store) count() (state, error) {
	var st state
	err := guardBadger(func() error {
		return s.db.View(func(txn *bdb.Txn) error {
			st.globals = countKeys(txn, []byte{prefixGlobal})
			st.branches = countKeys(txn, []byte{prefixBranch})
			return nil
		})
	})
	return st, err
}

func countKeys(txn *bdb.Txn, prefix []byte) uint64 {
	opts := bdb.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	n := uint64(0)
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// checkBranches checks that branches, read from one snapshot together with
// their global g (nil if none is stored), are g's branches 1..BranchSeq.
func checkBranches(xid string, g *storage.Global, branches []*storage.Branch) error {
	if g == nil {
		if len(branches) > 0 {
			return fmt.Errorf("storage/embedded: global %s: %w: %d branch records without their global record", xid, ErrCorrupt, len(branches))
		}
		return nil
	}
	for i, b := range branches {
		if b.ID != int64(i+1) {
			return fmt.Errorf("storage/embedded: global %s: %w: branch record %d is missing", xid, ErrCorrupt, i+1)
		}
	}
	if n := int64(len(branches)); n != g.BranchSeq {
		return fmt.Errorf("storage/embedded: global %s: %w: branch records %s are missing (it registered %d)", xid, ErrCorrupt, idRange(n+1, g.BranchSeq), g.BranchSeq)
	}
	return nil
}
