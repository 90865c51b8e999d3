package mysqldialect

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/xact-io/xact/undo"
)

// source is one table of a statement's FROM/table references.
type source struct {
	name  *ast.TableName // nil for a derived table
	alias string         // AS name, "" if none
	table *Table         // metadata, for base tables
	// err says why a base table has no metadata (a view, another
	// database); only an error if the statement changes or locks it.
	err error
}

// qualifier is how columns of the source are qualified in image queries:
// its alias, or its table name.
func (s *source) qualifier() string {
	if s.alias != "" {
		return quote(s.alias)
	}
	return quote(s.name.Name.O)
}

// refName is the name other clauses use for the source.
func (s *source) refName() string {
	if s.alias != "" {
		return s.alias
	}
	if s.name != nil {
		return s.name.Name.O
	}
	return ""
}

// collectSources lists the table sources of a join tree, left to right.
func collectSources(n ast.ResultSetNode, out []*source) ([]*source, error) {
	switch x := n.(type) {
	case nil:
		return out, nil
	case *ast.Join:
		var err error
		if out, err = collectSources(x.Left, out); err != nil {
			return nil, err
		}
		return collectSources(x.Right, out)
	case *ast.TableSource:
		switch s := x.Source.(type) {
		case *ast.TableName:
			return append(out, &source{name: s, alias: x.AsName.O}), nil
		case *ast.Join:
			return collectSources(s, out)
		default:
			return append(out, &source{alias: x.AsName.O}), nil
		}
	case *ast.TableName:
		return append(out, &source{name: x}), nil
	}
	return nil, unsupported("table reference %T", n)
}

// resolve loads the metadata of every base-table source and checks that it
// is in the connection's database. A source that cannot be used (a view,
// a table of another database) keeps the reason in source.err and fails
// the statement only if the statement writes or locks it; other errors
// fail at once.
func (d *Dialect) resolve(ctx context.Context, conn driver.Conn, srcs []*source) error {
	for _, s := range srcs {
		if s.name == nil {
			continue
		}
		t, err := d.Table(ctx, conn, s.name.Name.O)
		switch {
		case errors.Is(err, ErrUnsupported):
			s.err = err
			continue
		case err != nil:
			return err
		}
		if s.name.Schema.O != "" && s.name.Schema.O != t.Schema {
			s.err = unsupported("table %s.%s is outside the branch's database %s; each database is its own resource",
				s.name.Schema.O, s.name.Name.O, t.Schema)
			continue
		}
		s.table = t
	}
	return nil
}

// usableSource returns the metadata of a source the statement writes or
// locks, or why it has none.
func usableSource(s *source) (*Table, error) {
	if s.table != nil {
		return s.table, s.table.usable()
	}
	if s.err != nil {
		return nil, s.err
	}
	return nil, unsupported("%s is a derived table", s.refName())
}

// findSource returns the source that clauses call name (an alias, or the
// name of a table without alias; MySQL compares aliases exactly, table
// names per lower_case_table_names, so fall back to case-insensitive).
func findSource(srcs []*source, schema, name string) *source {
	for _, s := range srcs {
		if s.refName() == name && (schema == "" || s.alias == "" && s.name != nil && s.name.Schema.O == schema) {
			return s
		}
	}
	for _, s := range srcs {
		if strings.EqualFold(s.refName(), name) && (schema == "" || s.alias == "") {
			return s
		}
	}
	return nil
}

// columnOwner returns the source that owns column col of an assignment.
func columnOwner(srcs []*source, col *ast.ColumnName) (*source, *Column, error) {
	if col.Table.O != "" {
		s := findSource(srcs, col.Schema.O, col.Table.O)
		if s == nil {
			return nil, nil, unsupported("column %s.%s: not a table of the statement", col.Table.O, col.Name.O)
		}
		if _, err := usableSource(s); err != nil {
			return nil, nil, err
		}
		c, ok := s.table.Column(col.Name.O)
		if !ok {
			return nil, nil, unsupported("unknown column %s.%s", col.Table.O, col.Name.O)
		}
		return s, c, nil
	}
	var owner *source
	var oc *Column
	for _, s := range srcs {
		if s.table == nil {
			if len(srcs) > 1 {
				return nil, nil, unsupported("column %s is not qualified and the statement reads %s, whose columns are unknown; qualify it", col.Name.O, s.refName())
			}
			_, err := usableSource(s)
			return nil, nil, err
		}
		if c, ok := s.table.Column(col.Name.O); ok {
			if owner != nil {
				return nil, nil, unsupported("column %s is ambiguous", col.Name.O)
			}
			owner, oc = s, c
		}
	}
	if owner == nil {
		return nil, nil, unsupported("unknown column %s", col.Name.O)
	}
	return owner, oc, nil
}

// imageColumns returns the table's columns, in order, as image queries
// read them.
func imageColumns(t *Table) []*Column {
	cols := make([]*Column, len(t.Columns))
	for i := range t.Columns {
		cols[i] = &t.Columns[i]
	}
	return cols
}

// writeSelectList writes the image expressions of t's columns qualified by
// q.
func writeSelectList(b *sqlBuf, t *Table, q string) {
	for i := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Columns[i].selectExpr(q))
	}
}

// pkIndexes returns the positions of the primary-key columns in
// t.Columns.
func pkIndexes(t *Table) []int {
	idx := make([]int, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		for j := range t.Columns {
			if t.Columns[j].Name == k {
				idx[i] = j
			}
		}
	}
	return idx
}

// keyOf returns the lock key of an image row of t, and false when a
// primary-key column is NULL (the missing side of an outer join).
func keyOf(t *Table, pk []int, row undo.Row) (string, bool) {
	vals := make([]undo.Value, len(pk))
	for i, j := range pk {
		if row[j].Value.IsNull() {
			return "", false
		}
		vals[i] = row[j].Value
	}
	return undo.LockKey(t.Name, vals...), true
}

// maxKeysPerQuery bounds the IN lists of image queries by primary key.
const maxKeysPerQuery = 1000

// rowsByKey reads rows of t by the primary keys of keys, in chunks,
// optionally locking them. cols are the columns to read, in order (the
// key rows have the same columns); keyPos[i] is the position in cols of
// t.PrimaryKey[i].
func rowsByKey(ctx context.Context, conn driver.Conn, t *Table, cols []*Column, keyPos []int, keys []undo.Row, lock bool) ([]undo.Row, error) {
	pk := pkIndexes(t)
	var out []undo.Row
	for len(keys) > 0 {
		n := min(len(keys), maxKeysPerQuery)
		chunk := keys[:n]
		keys = keys[n:]
		b := &sqlBuf{}
		b.WriteString("SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.selectExpr(quote(t.Name)))
		}
		b.WriteString(" FROM ")
		b.WriteString(quote(t.Name))
		b.WriteString(" WHERE ")
		writeKeyIn(b, t, pk, len(chunk), func(row, k int) {
			bindImage(b, &t.Columns[pk[k]], chunk[row][keyPos[k]].Value)
		})
		if lock {
			b.WriteString(" FOR UPDATE")
		}
		res, err := queryRows(ctx, conn, b.String(), b.args)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			row, err := readRow(cols, r)
			if err != nil {
				return nil, err
			}
			out = append(out, row)
		}
	}
	return out, nil
}

// writeKeyIn writes the condition that selects n rows of t by the key
// columns pk, calling value to write the value of key column col of row:
// "`t`.`id` IN (…)" for a one-column key, and for a composite key ORed
// equalities "(`t`.`a` = … AND `t`.`b` = …) OR …". Not the row
// constructor "(`a`, `b`) IN ((…), …)": MariaDB 10.11 does not read that
// by index (with one element it scans the table, and under REPEATABLE READ
// a locking scan locks every row and gap it passes, so two compensations
// deadlock and every writer of the table waits). ORed equalities are a
// set of point ranges on the key for MariaDB and MySQL alike;
// TestKeyStatementsUseIndex EXPLAINs every statement built here.
func writeKeyIn(b *sqlBuf, t *Table, pk []int, n int, value func(row, col int)) {
	if len(pk) == 1 {
		b.WriteString(quote(t.Name) + "." + quote(t.Columns[pk[0]].Name))
		b.WriteString(" IN (")
		for r := 0; r < n; r++ {
			if r > 0 {
				b.WriteString(", ")
			}
			value(r, 0)
		}
		b.WriteString(")")
		return
	}
	for r := 0; r < n; r++ {
		if r > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(")
		for i, j := range pk {
			if i > 0 {
				b.WriteString(" AND ")
			}
			b.WriteString(quote(t.Name) + "." + quote(t.Columns[j].Name) + " = ")
			value(r, i)
		}
		b.WriteString(")")
	}
}

// volatile names functions whose value differs between the image query
// and the statement, or that have side effects: a WHERE that uses them
// would pick different rows the second time.
var volatile = map[string]bool{
	"rand": true, "uuid": true, "uuid_short": true, "sys_guid": true, "sysdate": true,
	"nextval": true, "lastval": true, "setval": true, "sleep": true, "benchmark": true,
	"get_lock": true, "release_lock": true, "release_all_locks": true, "last_insert_id": true,
	"row_count": true, "found_rows": true,
}

// checkDeterministic refuses clauses whose evaluation the image query
// cannot repeat exactly.
func checkDeterministic(nodes ...ast.Node) error {
	var err error
	v := &visitor{enter: func(n ast.Node) bool {
		if err != nil {
			return true
		}
		switch x := n.(type) {
		case *ast.FuncCallExpr:
			if volatile[x.FnName.L] {
				err = unsupported("%s() in the WHERE, ORDER BY or LIMIT clause gives another result in the before-image query; compute it first and pass the value", strings.ToUpper(x.FnName.O))
			}
		case *ast.VariableExpr:
			if x.Value != nil {
				err = unsupported("assignment to @%s in the WHERE, ORDER BY or LIMIT clause would run twice", x.Name)
			}
		}
		return false
	}}
	for _, n := range nodes {
		if n != nil && !isNilNode(n) {
			n.Accept(v)
		}
	}
	return err
}

// isNilNode reports a typed nil inside an ast.Node interface.
func isNilNode(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.OrderByClause:
		return x == nil
	case *ast.Limit:
		return x == nil
	case *ast.TableRefsClause:
		return x == nil
	}
	return false
}

// bindImage binds image value v for column c, as compensating SQL does.
func bindImage(b *sqlBuf, c *Column, v undo.Value) {
	expr, hexArg := c.bindExpr()
	arg := v.Arg()
	if hexArg && v.Kind() == undo.KindString {
		arg = hex.EncodeToString([]byte(v.Text()))
	}
	b.bind(expr, arg)
}
