package undo

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Table describes the live table a record is replayed against, as the
// dialect reads it from the database at rollback time. Nothing in it comes
// from the undo log.
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
}

// Column is one live column.
type Column struct {
	Name string
	// Generated columns are computed by the database; compensation never
	// writes them (their images are still compared by the dirty check).
	Generated bool
	// Bind is the SQL that turns one bound argument into a value of the
	// column, with exactly one "?" ("" means "?"). MySQL string columns use
	// it to reinterpret raw bytes in the column's character set.
	Bind string
	// Hex passes KindString values as upper-case hexadecimal text, for a
	// Bind that decodes it (UNHEX): unlike a string or []byte argument,
	// hex text reaches the server unchanged whatever the protocol and the
	// connection's character set.
	Hex bool
}

// Statement is one compensating statement.
type Statement struct {
	SQL  string
	Args []any
	// Rows is the number of rows the statement must affect; anything else
	// means the database did not do what the dirty check promised.
	Rows int64
}

// Batch sizes of compensating INSERT and DELETE statements: a few hundred
// rows and well under MySQL's 65535 placeholders per statement.
const (
	maxBatchRows = 256
	maxBatchArgs = 8192
)

// QuoteIdent quotes a MySQL identifier: backticks around it, each backtick
// in it doubled.
func QuoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// resolved maps the record's columns onto the live table.
type resolved struct {
	table *Table
	cols  []*Column // per record column
	pk    []int     // record column index per primary-key column
}

func (r *Record) resolve(t *Table) (*resolved, error) {
	if t == nil || !strings.EqualFold(t.Name, r.Table) {
		return nil, fmt.Errorf("%w: record is for table %s", ErrSchema, r.Table)
	}
	if len(t.PrimaryKey) != len(r.PrimaryKey) {
		return nil, fmt.Errorf("%w: primary key of %s is (%s), record has (%s)", ErrSchema, r.Table,
			strings.Join(t.PrimaryKey, ", "), strings.Join(r.PrimaryKey, ", "))
	}
	for i := range t.PrimaryKey {
		if !strings.EqualFold(t.PrimaryKey[i], r.PrimaryKey[i]) {
			return nil, fmt.Errorf("%w: primary key of %s is (%s), record has (%s)", ErrSchema, r.Table,
				strings.Join(t.PrimaryKey, ", "), strings.Join(r.PrimaryKey, ", "))
		}
	}
	names := r.Columns()
	res := &resolved{table: t, cols: make([]*Column, len(names))}
	for i, n := range names {
		for j := range t.Columns {
			if strings.EqualFold(t.Columns[j].Name, n) {
				res.cols[i] = &t.Columns[j]
				break
			}
		}
		if res.cols[i] == nil {
			return nil, fmt.Errorf("%w: column %s.%s no longer exists", ErrSchema, r.Table, n)
		}
		if b := res.cols[i].Bind; b != "" && strings.Count(b, "?") != 1 {
			return nil, fmt.Errorf("undo: bind expression of %s.%s has %d placeholders, want 1", r.Table, n, strings.Count(b, "?"))
		}
	}
	for _, k := range r.PrimaryKey {
		for i, n := range names {
			if n == k {
				res.pk = append(res.pk, i)
			}
		}
	}
	if len(res.pk) != len(r.PrimaryKey) {
		return nil, fmt.Errorf("%w: primary-key columns missing from the rows of %s", ErrMalformed, r.Table)
	}
	return res, nil
}

// bind appends the SQL for value v of column c to b and returns the
// argument to pass for it.
func bind(b *strings.Builder, c *Column, v Value) any {
	if c.Bind == "" {
		b.WriteByte('?')
	} else {
		b.WriteString(c.Bind)
	}
	if c.Hex && v.kind == KindString {
		return hex.EncodeToString([]byte(v.text))
	}
	return v.Arg()
}

// Compensation returns the statements that undo pairs of r (from Pairs or
// Check) on the live table t, in order. Every identifier is quoted and
// every value is a placeholder. Inserted rows are deleted by primary key,
// deleted rows are inserted again with every writable column, and updated
// rows get every writable non-key column of their before image (so that
// ON UPDATE columns are restored too); pairs whose images are equal need
// nothing. The caller runs the statements inside one local transaction
// after the dirty check, and rolls it back if any of them fails or affects
// a number of rows other than Statement.Rows.
func (r *Record) Compensation(t *Table, pairs []Pair) ([]Statement, error) {
	res, err := r.resolve(t)
	if err != nil {
		return nil, err
	}
	switch r.Op {
	case OpInsert:
		rows := make([]Row, 0, len(pairs))
		for _, p := range pairs {
			if p.After == nil {
				return nil, fmt.Errorf("%w: insert pair without after image", ErrMalformed)
			}
			rows = append(rows, p.After)
		}
		return res.deletes(rows), nil
	case OpDelete:
		rows := make([]Row, 0, len(pairs))
		for _, p := range pairs {
			if p.Before == nil {
				return nil, fmt.Errorf("%w: delete pair without before image", ErrMalformed)
			}
			rows = append(rows, p.Before)
		}
		return res.inserts(rows), nil
	case OpUpdate:
		var out []Statement
		for _, p := range pairs {
			if p.Before == nil || p.After == nil {
				return nil, fmt.Errorf("%w: update pair without both images", ErrMalformed)
			}
			if p.Before.Equal(p.After) {
				continue
			}
			st, ok := res.update(p.Before)
			if ok {
				out = append(out, st)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: op %d", ErrMalformed, r.Op)
}

// keyCondition writes the condition that selects rows by primary key:
// "`a` IN (?, ...)" for a one-column key, "(`a` = ? AND `b` = ?) OR ..."
// for a composite one. The row constructor "(`a`, `b`) IN ((?, ?), ...)"
// is not read by index on MariaDB 10.11: a compensating DELETE in that
// form scans and locks the whole table.
func (res *resolved) keyCondition(b *strings.Builder, args []any, rows []Row) []any {
	if len(res.pk) == 1 {
		i := res.pk[0]
		b.WriteString(QuoteIdent(res.cols[i].Name))
		b.WriteString(" IN (")
		for n, row := range rows {
			if n > 0 {
				b.WriteString(", ")
			}
			args = append(args, bind(b, res.cols[i], row[i].Value))
		}
		b.WriteByte(')')
		return args
	}
	for n, row := range rows {
		if n > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('(')
		for m, i := range res.pk {
			if m > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(QuoteIdent(res.cols[i].Name))
			b.WriteString(" = ")
			args = append(args, bind(b, res.cols[i], row[i].Value))
		}
		b.WriteByte(')')
	}
	return args
}

func batches(rows []Row, argsPerRow int) [][]Row {
	size := maxBatchRows
	if argsPerRow > 0 && maxBatchArgs/argsPerRow < size {
		size = max(maxBatchArgs/argsPerRow, 1)
	}
	var out [][]Row
	for len(rows) > 0 {
		n := min(size, len(rows))
		out = append(out, rows[:n])
		rows = rows[n:]
	}
	return out
}

func (res *resolved) deletes(rows []Row) []Statement {
	var out []Statement
	for _, batch := range batches(rows, len(res.pk)) {
		var b strings.Builder
		b.WriteString("DELETE FROM ")
		b.WriteString(QuoteIdent(res.table.Name))
		b.WriteString(" WHERE ")
		args := res.keyCondition(&b, nil, batch)
		out = append(out, Statement{SQL: b.String(), Args: args, Rows: int64(len(batch))})
	}
	return out
}

func (res *resolved) inserts(rows []Row) []Statement {
	var writable []int
	for i, c := range res.cols {
		if !c.Generated {
			writable = append(writable, i)
		}
	}
	var out []Statement
	for _, batch := range batches(rows, len(writable)) {
		var b strings.Builder
		b.WriteString("INSERT INTO ")
		b.WriteString(QuoteIdent(res.table.Name))
		b.WriteString(" (")
		for n, i := range writable {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString(QuoteIdent(res.cols[i].Name))
		}
		b.WriteString(") VALUES ")
		args := make([]any, 0, len(batch)*len(writable))
		for n, row := range batch {
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for m, i := range writable {
				if m > 0 {
					b.WriteString(", ")
				}
				args = append(args, bind(&b, res.cols[i], row[i].Value))
			}
			b.WriteByte(')')
		}
		out = append(out, Statement{SQL: b.String(), Args: args, Rows: int64(len(batch))})
	}
	return out
}

func (res *resolved) update(before Row) (Statement, bool) {
	isKey := make([]bool, len(res.cols))
	for _, i := range res.pk {
		isKey[i] = true
	}
	var b strings.Builder
	var args []any
	b.WriteString("UPDATE ")
	b.WriteString(QuoteIdent(res.table.Name))
	b.WriteString(" SET ")
	n := 0
	for i, c := range res.cols {
		if isKey[i] || c.Generated {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		b.WriteString(QuoteIdent(c.Name))
		b.WriteString(" = ")
		args = append(args, bind(&b, c, before[i].Value))
	}
	if n == 0 {
		// Only generated or key columns: nothing can be written back, and
		// keys never change in an update record.
		return Statement{}, false
	}
	b.WriteString(" WHERE ")
	for m, i := range res.pk {
		if m > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(QuoteIdent(res.cols[i].Name))
		b.WriteString(" = ")
		args = append(args, bind(&b, res.cols[i], before[i].Value))
	}
	return Statement{SQL: b.String(), Args: args, Rows: 1}, true
}
