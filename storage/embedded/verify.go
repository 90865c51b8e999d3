package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"

	bdb "github.com/dgraph-io/badger/v4"
)

// Report is what Verify found in a data directory.
type Report struct {
	Dir string
	// Format is the directory's format version (0 if it was not read).
	Format uint64
	// Live records: globals and branches of unfinished transactions, and
	// tombstones of finished ones still retained.
	Globals, Branches, Tombstones uint64
	// Damage lists what is damaged; empty if nothing is.
	Damage []Damage
	// Notes are findings that are not damage.
	Notes []string
}

// OK reports whether no damage was found.
func (r *Report) OK() bool { return len(r.Damage) == 0 }

// WriteTo writes the report for an operator.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	fmt.Fprintf(cw, "data directory %s\n", r.Dir)
	if r.Format > 0 {
		fmt.Fprintf(cw, "format version %d; %d globals, %d branches, %d tombstones\n", r.Format, r.Globals, r.Branches, r.Tombstones)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(cw, "note: %s\n", n)
	}
	if r.OK() {
		fmt.Fprintln(cw, "OK: every file and record checked")
		return cw.n, cw.err
	}
	fmt.Fprintf(cw, "DAMAGED: %d problems\n", len(r.Damage))
	for _, d := range r.Damage {
		fmt.Fprintf(cw, "  %s\n", d)
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Verify checks the data directory dir as Open does (every table block,
// the MANIFEST, the logs, the state file, every live record) and also
// reads every tombstone and key, and reports what it found. It needs the
// directory to itself (storage.ErrLocked while a server runs on it). It
// does what the server's start would do to a directory that passes (Badger
// completes a crash recovery and flushes its memtables on close) except
// migrating it to a newer format; a damaged directory is left untouched.
// The error is for a check that could not run; damage is in the report.
func Verify(dir string, opts ...Option) (*Report, error) {
	rep := &Report{Dir: dir}
	prev, havePrev, _ := readState(dir)
	switch {
	case !havePrev:
		rep.Notes = append(rep.Notes, "no state file (a directory of an older xact, or it was deleted): the record counts and the MANIFEST could not be compared with the last stop")
	case !prev.clean:
		rep.Notes = append(rep.Notes, "the coordinator did not stop cleanly last time: a crash recovery is part of this check")
	}
	s, err := Open(dir, append(opts, func(c *config) { c.readOnly = true })...)
	var ce *CorruptError
	if errors.As(err, &ce) {
		rep.Damage = ce.Damage
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	rep.Format, rep.Globals, rep.Branches = s.format, s.loaded.globals, s.loaded.branches
	if s.legacy {
		rep.Notes = append(rep.Notes, fmt.Sprintf("format version %d: records carry no checksums yet; the server migrates the directory to %d when it starts", s.format, formatVersion))
	}
	err = s.view(context.Background(), func(txn *bdb.Txn) error {
		return s.verifyRest(txn, rep)
	})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// verifyRest checks what load does not read: tombstones, the format key,
// and that every key belongs to a keyspace.
func (s *Store) verifyRest(txn *bdb.Txn, rep *Report) error {
	opts := bdb.DefaultIteratorOptions
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	damaged := func(key []byte, format string, args ...any) {
		rep.Damage = append(rep.Damage, Damage{File: s.fileOf(key), What: fmt.Sprintf(format, args...)})
	}
	legacyKeys := 0
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		switch k[0] {
		case prefixGlobal, prefixBranch, prefixMark:
			// load checked them
		case prefixTombstone:
			rep.Tombstones++
			g, err := s.itemGlobal(item)
			if err == nil && (g.XID != string(k[1:]) || !g.Finished) {
				err = fmt.Errorf("%w: the record names %q, finished %v", ErrCorrupt, g.XID, g.Finished)
			}
			if err != nil {
				damaged(k, "tombstone %q: %v", k[1:], err)
			}
		case prefixFormat:
			if len(k) != 1 {
				damaged(k, "unknown key %q", k)
			}
		case prefixLegacyLock, prefixLegacyHeld:
			legacyKeys++
		default:
			damaged(k, "key %q belongs to no keyspace", k)
		}
	}
	if legacyKeys > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d format-1 lock keys left; the server deletes them when it starts", legacyKeys))
	}
	return nil
}
