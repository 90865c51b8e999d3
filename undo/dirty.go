package undo

import (
	"fmt"
)

// Pair is the before and after image of one row of a record: Before is nil
// for an inserted row, After is nil for a deleted row.
type Pair struct {
	Key    string // lock key of the row
	Before Row
	After  Row
}

// State classifies a row's current contents against its Pair.
type State uint8

// The states of a row at rollback.
const (
	// Pending: the row is as the branch left it; compensate it.
	Pending State = iota + 1
	// Undone: the row is as it was before the branch; nothing to do (an
	// earlier rollback attempt got here, or the change was a no-op).
	Undone
	// Dirty: someone else changed the row; compensating would lose their
	// change, so the branch fails and waits for an operator.
	Dirty
)

// String returns "pending", "undone" or "dirty".
func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Undone:
		return "undone"
	case Dirty:
		return "dirty"
	}
	return fmt.Sprintf("state(%d)", s)
}

// State compares current, the row as it is now (nil if there is none with
// the pair's key), with the pair's images. Comparison is exact.
func (p Pair) State(current Row) State {
	switch {
	case p.After != nil && current != nil && current.Equal(p.After):
		if p.Before != nil && p.Before.Equal(p.After) {
			return Undone
		}
		return Pending
	case p.After == nil && current == nil:
		return Pending
	case p.Before == nil && current == nil:
		return Undone
	case p.Before != nil && current != nil && current.Equal(p.Before):
		return Undone
	}
	return Dirty
}

// Pairs returns the record's rows paired by primary key, in image order
// (before images first for updates and deletes).
func (r *Record) Pairs() ([]Pair, error) {
	var pairs []Pair
	index := make(map[string]int)
	for _, row := range r.Before {
		k, err := r.key(row)
		if err != nil {
			return nil, err
		}
		index[k] = len(pairs)
		pairs = append(pairs, Pair{Key: k, Before: row})
	}
	for _, row := range r.After {
		k, err := r.key(row)
		if err != nil {
			return nil, err
		}
		if i, ok := index[k]; ok {
			pairs[i].After = row
			continue
		}
		index[k] = len(pairs)
		pairs = append(pairs, Pair{Key: k, After: row})
	}
	return pairs, nil
}

// DirtyError describes a row that fails the dirty check. It matches
// ErrDirty with errors.Is.
type DirtyError struct {
	Table string
	Key   string // lock key of the row
	// Column is the first column whose current value differs from the
	// image the branch left; "" when the row is missing or unexpectedly
	// present.
	Column string
	// Reason says what was found, without values (images may hold
	// personal data; the undo log keeps them for the operator).
	Reason string
}

// Error names the table, the row's key, what was found and the column.
func (e *DirtyError) Error() string {
	msg := fmt.Sprintf("undo: %s row %s: %s", e.Table, e.Key, e.Reason)
	if e.Column != "" {
		msg += " (column " + e.Column + ")"
	}
	return msg
}

// Unwrap returns ErrDirty.
func (e *DirtyError) Unwrap() error { return ErrDirty }

// Check runs the dirty check of r against current, the rows that now have
// the record's keys (read with the same column list as the images, in any
// order). It returns the pairs still to compensate, or a *DirtyError for
// the first row that someone else changed.
func (r *Record) Check(current []Row) ([]Pair, error) {
	pairs, err := r.Pairs()
	if err != nil {
		return nil, err
	}
	now := make(map[string]Row, len(current))
	for _, row := range current {
		k, err := r.key(row)
		if err != nil {
			return nil, err
		}
		now[k] = row
	}
	var todo []Pair
	for _, p := range pairs {
		cur := now[p.Key]
		switch p.State(cur) {
		case Pending:
			todo = append(todo, p)
		case Undone:
		default:
			return nil, dirty(r.Table, p, cur)
		}
	}
	return todo, nil
}

func dirty(table string, p Pair, cur Row) error {
	e := &DirtyError{Table: table, Key: p.Key}
	switch {
	case cur == nil:
		e.Reason = "row was deleted after the branch wrote it"
	case p.After == nil:
		e.Reason = "a row with the deleted row's key was inserted after the branch deleted it"
	default:
		e.Reason = "row was changed after the branch wrote it"
		for i := range cur {
			if i >= len(p.After) || cur[i] != p.After[i] {
				e.Column = cur[i].Name
				break
			}
		}
	}
	return e
}
