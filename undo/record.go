package undo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors returned by this package.
var (
	// ErrMalformed reports a record or an encoded log that breaks the
	// format's rules (unknown kind, bad decimal, duplicate column, ...).
	ErrMalformed = errors.New("undo: malformed undo log")
	// ErrTooLarge reports a log that exceeds the Limits in force.
	ErrTooLarge = errors.New("undo: undo log exceeds limits")
	// ErrVersion reports an encoded log of an unknown format version.
	ErrVersion = errors.New("undo: unknown undo log version")
	// ErrChecksum reports an encoded log whose checksum does not match.
	ErrChecksum = errors.New("undo: undo log checksum mismatch")
	// ErrDirty reports that a row changed after the branch wrote it: it
	// equals neither the image the branch left nor the one it replaced.
	// Replaying cannot fix this; an operator must (see DirtyError).
	ErrDirty = errors.New("undo: row changed by someone else since the branch wrote it")
	// ErrSchema reports that the live table no longer fits a record (a
	// column or the table is gone, the primary key changed).
	ErrSchema = errors.New("undo: live table does not match the undo record")
)

// Op is the kind of statement a record undoes.
type Op uint8

// The statement kinds. The numbers are part of the encoding.
const (
	OpInsert Op = 1 // rows were inserted: After holds them, Before is empty
	OpUpdate Op = 2 // rows were updated: Before and After hold the same keys
	OpDelete Op = 3 // rows were deleted: Before holds them, After is empty
)

// String returns "insert", "update" or "delete".
func (o Op) String() string {
	switch o {
	case OpInsert:
		return "insert"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Field is one column of a row.
type Field struct {
	Name  string
	Value Value
}

// Row is an image of one table row: its columns in table order.
type Row []Field

// Get returns the value of column name (exact match).
func (r Row) Get(name string) (Value, bool) {
	for _, f := range r {
		if f.Name == name {
			return f.Value, true
		}
	}
	return Value{}, false
}

// Equal reports whether r and s have the same columns in the same order
// with exactly equal values.
func (r Row) Equal(s Row) bool {
	if len(r) != len(s) {
		return false
	}
	for i := range r {
		if r[i] != s[i] {
			return false
		}
	}
	return true
}

// Record is the undo information of one statement on one table: the rows
// before and after it ran. All rows of a record have the same columns in
// the same order, and include the primary key.
type Record struct {
	Table      string
	Op         Op
	PrimaryKey []string
	Before     []Row
	After      []Row
}

// Log is the undo log of one branch: its records in execution order.
// Rollback replays them in reverse.
type Log struct {
	Records []Record
}

// Columns returns the column names of the record's rows.
func (r *Record) Columns() []string {
	var row Row
	switch {
	case len(r.Before) > 0:
		row = r.Before[0]
	case len(r.After) > 0:
		row = r.After[0]
	}
	names := make([]string, len(row))
	for i, f := range row {
		names[i] = f.Name
	}
	return names
}

// maxNameLen bounds table and column names in bytes (MySQL allows 64
// characters).
const maxNameLen = 256

func validName(s string) error {
	if s == "" || len(s) > maxNameLen || !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: name %q", ErrMalformed, truncate(s))
	}
	return nil
}

// Validate checks the record's invariants within lim: names, op, the
// image shapes that op requires, equal columns in every row, primary-key
// columns present and not NULL, update images pairing one to one by key,
// and well-formed values.
func (r *Record) Validate(lim Limits) error {
	if err := validName(r.Table); err != nil {
		return err
	}
	switch r.Op {
	case OpInsert:
		if len(r.Before) != 0 || len(r.After) == 0 {
			return fmt.Errorf("%w: insert record on %s needs after rows only", ErrMalformed, r.Table)
		}
	case OpDelete:
		if len(r.After) != 0 || len(r.Before) == 0 {
			return fmt.Errorf("%w: delete record on %s needs before rows only", ErrMalformed, r.Table)
		}
	case OpUpdate:
		if len(r.Before) == 0 || len(r.Before) != len(r.After) {
			return fmt.Errorf("%w: update record on %s needs as many before as after rows", ErrMalformed, r.Table)
		}
	default:
		return fmt.Errorf("%w: op %d", ErrMalformed, r.Op)
	}
	if len(r.Before) > lim.MaxRows || len(r.After) > lim.MaxRows {
		return fmt.Errorf("%w: %d rows in one image of %s (limit %d)", ErrTooLarge, max(len(r.Before), len(r.After)), r.Table, lim.MaxRows)
	}
	cols := r.Columns()
	if len(cols) == 0 {
		return fmt.Errorf("%w: rows of %s have no columns", ErrMalformed, r.Table)
	}
	if len(cols) > lim.MaxFields {
		return fmt.Errorf("%w: %d columns in %s (limit %d)", ErrTooLarge, len(cols), r.Table, lim.MaxFields)
	}
	seen := make(map[string]bool, len(cols))
	for _, c := range cols {
		if err := validName(c); err != nil {
			return err
		}
		if seen[c] {
			return fmt.Errorf("%w: column %s repeated in %s", ErrMalformed, c, r.Table)
		}
		seen[c] = true
	}
	if len(r.PrimaryKey) == 0 {
		return fmt.Errorf("%w: record on %s has no primary key", ErrMalformed, r.Table)
	}
	pkSeen := make(map[string]bool, len(r.PrimaryKey))
	for _, k := range r.PrimaryKey {
		if !seen[k] || pkSeen[k] {
			return fmt.Errorf("%w: primary-key column %q of %s missing from rows or repeated", ErrMalformed, truncate(k), r.Table)
		}
		pkSeen[k] = true
	}
	var imageKeys [2]map[string]bool
	for i, rows := range [][]Row{r.Before, r.After} {
		keys := make(map[string]bool, len(rows))
		for _, row := range rows {
			if len(row) != len(cols) {
				return fmt.Errorf("%w: rows of %s differ in columns", ErrMalformed, r.Table)
			}
			for i, f := range row {
				if f.Name != cols[i] {
					return fmt.Errorf("%w: rows of %s differ in columns", ErrMalformed, r.Table)
				}
				if err := f.Value.Validate(); err != nil {
					return fmt.Errorf("%s.%s: %w", r.Table, f.Name, err)
				}
				if len(f.Value.text) > lim.MaxValueSize {
					return fmt.Errorf("%w: value of %s.%s has %d bytes (limit %d)", ErrTooLarge, r.Table, f.Name, len(f.Value.text), lim.MaxValueSize)
				}
			}
			k, err := r.key(row)
			if err != nil {
				return err
			}
			if keys[k] {
				return fmt.Errorf("%w: key %s appears twice in one image", ErrMalformed, k)
			}
			keys[k] = true
		}
		imageKeys[i] = keys
	}
	if r.Op == OpUpdate {
		// The primary key of an updated row does not change (statements
		// that assign it are refused), so the images pair one to one.
		for k := range imageKeys[0] {
			if !imageKeys[1][k] {
				return fmt.Errorf("%w: key %s of %s has a before image and no after image", ErrMalformed, k, r.Table)
			}
		}
	}
	return nil
}

// Validate checks every record of the log within lim.
func (l *Log) Validate(lim Limits) error {
	if len(l.Records) > lim.MaxRecords {
		return fmt.Errorf("%w: %d records (limit %d)", ErrTooLarge, len(l.Records), lim.MaxRecords)
	}
	for i := range l.Records {
		if err := l.Records[i].Validate(lim); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// Key returns the primary-key values of row, in PrimaryKey order.
func (r *Record) Key(row Row) ([]Value, error) {
	vals := make([]Value, len(r.PrimaryKey))
	for i, k := range r.PrimaryKey {
		v, ok := row.Get(k)
		if !ok {
			return nil, fmt.Errorf("%w: primary-key column %s missing from a row of %s", ErrMalformed, k, r.Table)
		}
		if v.IsNull() {
			return nil, fmt.Errorf("%w: primary-key column %s of %s is NULL", ErrMalformed, k, r.Table)
		}
		vals[i] = v
	}
	return vals, nil
}

// key returns the lock key of row.
func (r *Record) key(row Row) (string, error) {
	vals, err := r.Key(row)
	if err != nil {
		return "", err
	}
	return LockKey(r.Table, vals...), nil
}

// LockKeys returns the lock keys of every row the record touches, without
// repeats, in image order.
func (r *Record) LockKeys() ([]string, error) {
	seen := make(map[string]bool)
	var keys []string
	for _, rows := range [][]Row{r.Before, r.After} {
		for _, row := range rows {
			k, err := r.key(row)
			if err != nil {
				return nil, err
			}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}
