package mysqldialect

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/xact-io/xact/undo"
)

// insertPlan images INSERT [IGNORE] … VALUES/SET [ON DUPLICATE KEY UPDATE].
//
// Inserted rows are found by primary key after the statement: explicit
// keys are the statement's own value expressions (literals and
// placeholders, evaluated again by the server), generated AUTO_INCREMENT
// keys are LAST_INSERT_ID() + k × @@auto_increment_increment, which InnoDB
// guarantees for a statement whose row count is known in advance. IGNORE
// and ON DUPLICATE KEY UPDATE can meet existing rows, so they first read
// (FOR UPDATE) every row whose primary or unique key equals one the
// statement supplies; after the statement those keys, and the keys of the
// rows found before, are read again, and rows that were there before are
// updates, the rest inserts.
type insertPlan struct {
	table     *Table
	pk        []int // primary-key positions in table.Columns
	rows      int   // rows in VALUES
	generated bool  // the AUTO_INCREMENT key column takes generated values
	ignore    bool
	upsert    bool // ON DUPLICATE KEY UPDATE

	// keyQuery reads the inserted rows by explicit key (plain and IGNORE).
	keyQuery string
	keyArgs  []any
	// derived are the after images of a plain INSERT whose stored values
	// are known from the statement (derive_insert.go); nil to read them.
	derived []undo.Row
	// conflict is the predicate over every supplied unique key (IGNORE,
	// upsert); "" if no row can meet an existing one.
	conflict     string
	conflictArgs []any
	// otherKeys are the restored non-generated key values of each row for
	// generated keys: otherKeys[row][pk index] ("" at the generated one).
	otherKeys [][]restored

	existing   []undo.Row
	beforeKeys map[string]bool
}

// restored is an expression restored to SQL with its arguments.
type restored struct {
	sql  string
	args []any
}

// valueKind classifies a VALUES expression.
type valueKind uint8

const (
	valueSimple  valueKind = iota + 1 // literal or placeholder: evaluates the same twice
	valueZero                         // literal or placeholder 0: AUTO_INCREMENT generates
	valueNull                         // NULL literal or nil argument
	valueDefault                      // DEFAULT
	valueComplex                      // anything else
)

func inspectValue(e ast.ExprNode, args []driver.NamedValue) valueKind {
	switch x := e.(type) {
	case *ast.DefaultExpr:
		if x.Name != nil {
			return valueComplex
		}
		return valueDefault
	case *ast.ParenthesesExpr:
		return inspectValue(x.Expr, args)
	case *param:
		if x.index >= len(args) {
			return valueComplex
		}
		switch v := args[x.index].Value.(type) {
		case nil:
			return valueNull
		case int64:
			if v == 0 {
				return valueZero
			}
		case uint64:
			if v == 0 {
				return valueZero
			}
		case float64:
			if v == 0 {
				return valueZero
			}
		case string:
			if v == "0" {
				return valueZero
			}
		case []byte:
			if string(v) == "0" {
				return valueZero
			}
		}
		return valueSimple
	case *test_driver.ValueExpr:
		switch x.Kind() {
		case test_driver.KindNull:
			return valueNull
		case test_driver.KindInt64:
			if x.GetInt64() == 0 {
				return valueZero
			}
		case test_driver.KindUint64:
			if x.GetUint64() == 0 {
				return valueZero
			}
		}
		return valueSimple
	case *ast.UnaryOperationExpr:
		if x.Op == opcode.Minus || x.Op == opcode.Plus {
			if k := inspectValue(x.V, args); k == valueSimple || k == valueZero {
				return k
			}
		}
	}
	return valueComplex
}

func (d *Dialect) planInsert(ctx context.Context, conn driver.Conn, p *Plan) (planner, error) {
	x := p.st.node.(*ast.InsertStmt)
	if x.Table == nil || x.Table.TableRefs == nil {
		return nil, unsupported("INSERT without a table")
	}
	srcs, err := collectSources(x.Table.TableRefs, nil)
	if err != nil {
		return nil, err
	}
	if len(srcs) != 1 || srcs[0].name == nil {
		return nil, unsupported("INSERT into more than one table")
	}
	if err := d.resolve(ctx, conn, srcs); err != nil {
		return nil, err
	}
	t, err := usableSource(srcs[0])
	if err != nil {
		return nil, err
	}
	ip := &insertPlan{table: t, pk: pkIndexes(t), rows: len(x.Lists), ignore: x.IgnoreErr, upsert: len(x.OnDuplicate) > 0}
	if t.hasTrigger("INSERT") || ip.upsert && t.hasTrigger("UPDATE") {
		return nil, unsupported("table %s has a trigger whose writes cannot be imaged", t.Name)
	}

	// The column each VALUES position fills.
	var cols []*Column
	if len(x.Columns) == 0 {
		for i := range t.Columns {
			if !t.Columns[i].Invisible {
				cols = append(cols, &t.Columns[i])
			}
		}
	} else {
		for _, cn := range x.Columns {
			if cn.Table.O != "" && !strings.EqualFold(cn.Table.O, t.Name) && cn.Table.O != srcs[0].refName() {
				return nil, unsupported("INSERT column %s.%s is not a column of %s", cn.Table.O, cn.Name.O, t.Name)
			}
			c, ok := t.Column(cn.Name.O)
			if !ok {
				return nil, unsupported("unknown column %s in INSERT into %s", cn.Name.O, t.Name)
			}
			cols = append(cols, c)
		}
	}
	pos := func(c *Column) int {
		for i, x := range cols {
			if x == c {
				return i
			}
		}
		return -1
	}
	if x.Select != nil {
		return planInsertSelect(p, x, ip, cols)
	}
	for r, list := range x.Lists {
		if len(list) != len(cols) {
			return nil, unsupported("row %d of INSERT has %d values for %d columns", r+1, len(list), len(cols))
		}
	}
	if ip.rows == 0 {
		return nil, unsupported("INSERT without rows")
	}
	for _, a := range x.OnDuplicate {
		c, ok := t.Column(a.Column.Name.O)
		if !ok {
			return nil, unsupported("unknown column %s in ON DUPLICATE KEY UPDATE", a.Column.Name.O)
		}
		if t.isKey(c.Name) {
			return nil, unsupported("ON DUPLICATE KEY UPDATE assigns primary-key column %s; its after image could not be found by key", c.Name)
		}
		if t.CascadedBy && inUniqueKey(t, c.Name) {
			return nil, unsupported("ON DUPLICATE KEY UPDATE of %s.%s may cascade to child rows through a foreign key", t.Name, c.Name)
		}
	}

	// Which rows take generated keys: all or none.
	gen := make([]bool, ip.rows)
	for _, j := range ip.pk {
		c := &t.Columns[j]
		i := pos(c)
		for r := range ip.rows {
			kind := valueDefault
			if i >= 0 {
				kind = inspectValue(x.Lists[r][i], p.args)
			}
			switch {
			case kind == valueComplex:
				return nil, unsupported("primary-key value of %s in row %d is an expression; pass a literal or a placeholder", c.Name, r+1)
			case c.AutoIncrement && kind != valueSimple:
				gen[r] = true
			case kind == valueNull:
				return nil, unsupported("primary-key column %s is NULL in row %d", c.Name, r+1)
			case kind == valueDefault:
				return nil, unsupported("primary-key column %s takes its default in row %d; AT mode needs its value to find the row", c.Name, r+1)
			}
		}
	}
	for r := range gen {
		if gen[r] != gen[0] {
			return nil, unsupported("INSERT mixes generated and explicit AUTO_INCREMENT keys; insert them in separate statements")
		}
	}
	ip.generated = gen[0]
	if ip.generated && ip.ignore && !ip.upsert {
		return nil, unsupported("INSERT IGNORE with generated AUTO_INCREMENT keys: the keys of the rows it skips are unknown; supply the keys")
	}

	// The conflict predicate: for an upsert over every unique key (a row
	// meeting any of them is updated); for IGNORE over the primary key (a
	// row that exists already must not be taken for an inserted one; rows
	// skipped for another unique key are simply not found by key).
	if ip.ignore || ip.upsert {
		keys := []Index{{Name: "PRIMARY", Columns: t.PrimaryKey}}
		if ip.upsert {
			keys = append(keys, t.UniqueKeys...)
		}
		b := &sqlBuf{user: p.args}
		terms := 0
		findable := make([]bool, ip.rows)
		for _, key := range keys {
			if key.Partial {
				return nil, unsupported("unique key %s of %s covers a prefix or an expression; conflicts cannot be imaged", key.Name, t.Name)
			}
			var rowsSQL []string
			var rowsArgs [][]any
			for r := range ip.rows {
				sqls, args, ok, err := keyValues(t, key, cols, pos, x.Lists[r], p.args)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				if key.Name != "PRIMARY" {
					findable[r] = true
				}
				rowsSQL = append(rowsSQL, sqls)
				rowsArgs = append(rowsArgs, args)
			}
			if len(rowsSQL) == 0 {
				continue
			}
			if terms > 0 {
				b.WriteString(" OR ")
			}
			terms++
			// One equality term per row (see writeKeyIn for why not a row
			// constructor IN list).
			for i, s := range rowsSQL {
				if i > 0 {
					b.WriteString(" OR ")
				}
				b.WriteString(s)
				b.args = append(b.args, rowsArgs[i]...)
			}
		}
		if ip.generated {
			for r, ok := range findable {
				if !ok {
					return nil, unsupported("row %d of INSERT … ON DUPLICATE KEY UPDATE has a generated key and no complete unique key; its row cannot be found afterwards", r+1)
				}
			}
		}
		if terms > 0 {
			ip.conflict, ip.conflictArgs = b.String(), b.args
		}
	}

	// Explicit keys: the query that reads the inserted rows back.
	if !ip.generated {
		b := &sqlBuf{user: p.args}
		b.WriteString("SELECT ")
		writeSelectList(b, t, quote(t.Name))
		b.WriteString(" FROM ")
		b.WriteString(quote(t.Name))
		b.WriteString(" WHERE ")
		var err error
		writeKeyIn(b, t, ip.pk, ip.rows, func(r, k int) {
			if err == nil {
				err = b.restore(x.Lists[r][pos(&t.Columns[ip.pk[k]])])
			}
		})
		if err != nil {
			return nil, err
		}
		ip.keyQuery, ip.keyArgs = b.String(), b.args
		if !ip.ignore && !ip.upsert && !d.readAfter {
			ip.derived = deriveInsert(t, cols, x.Lists, p.args)
		}
	} else {
		ip.otherKeys = make([][]restored, ip.rows)
		for r := range ip.rows {
			ip.otherKeys[r] = make([]restored, len(ip.pk))
			for k, j := range ip.pk {
				c := &t.Columns[j]
				if c.AutoIncrement {
					continue
				}
				b := &sqlBuf{user: p.args}
				if err := b.restore(x.Lists[r][pos(c)]); err != nil {
					return nil, err
				}
				ip.otherKeys[r][k] = restored{sql: b.String(), args: b.args}
			}
		}
	}
	return ip, nil
}

// keyValues restores the values row supplies for key as the condition
// "(`t`.`a` = e1 AND `t`.`b` = e2)". ok is
// false when the row cannot conflict on key (a NULL, or a generated
// AUTO_INCREMENT value).
func keyValues(t *Table, key Index, cols []*Column, pos func(*Column) int, row []ast.ExprNode, args []driver.NamedValue) (string, []any, bool, error) {
	b := &sqlBuf{user: args}
	b.WriteString("(")
	for i, name := range key.Columns {
		c, ok := t.Column(name)
		if !ok {
			return "", nil, false, unsupported("unique key %s names unknown column %s", key.Name, name)
		}
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(quote(t.Name) + "." + quote(c.Name) + " = ")
		j := pos(c)
		kind := valueDefault
		if j >= 0 {
			kind = inspectValue(row[j], args)
		}
		switch {
		case c.AutoIncrement && kind != valueSimple:
			return "", nil, false, nil
		case kind == valueNull:
			return "", nil, false, nil
		case kind == valueDefault:
			if c.HasDefault || !c.Nullable {
				return "", nil, false, unsupported("column %s of unique key %s takes its default; supply its value", c.Name, key.Name)
			}
			return "", nil, false, nil
		case kind == valueComplex:
			return "", nil, false, unsupported("value of unique-key column %s is an expression; pass a literal or a placeholder", c.Name)
		}
		if err := b.restore(row[j]); err != nil {
			return "", nil, false, err
		}
	}
	b.WriteString(")")
	return b.String(), b.args, true, nil
}

func (ip *insertPlan) imageQuery(where string, lock bool) string {
	b := &sqlBuf{}
	b.WriteString("SELECT ")
	writeSelectList(b, ip.table, quote(ip.table.Name))
	b.WriteString(" FROM ")
	b.WriteString(quote(ip.table.Name))
	b.WriteString(" WHERE ")
	b.WriteString(where)
	if lock {
		b.WriteString(" FOR UPDATE")
	}
	return b.String()
}

func (ip *insertPlan) read(ctx context.Context, conn driver.Conn, q string, args []any) ([]undo.Row, error) {
	res, err := queryRows(ctx, conn, q, args)
	if err != nil {
		return nil, err
	}
	cols := imageColumns(ip.table)
	rows := make([]undo.Row, 0, len(res))
	for _, r := range res {
		row, err := readRow(cols, r)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (ip *insertPlan) before(ctx context.Context, conn driver.Conn, p *Plan) error {
	ip.beforeKeys = make(map[string]bool)
	if ip.conflict == "" {
		return nil
	}
	rows, err := ip.read(ctx, conn, ip.imageQuery(ip.conflict, true), ip.conflictArgs)
	if err != nil {
		return fmt.Errorf("mysql: before image: %w", err)
	}
	for _, row := range rows {
		k, _ := keyOf(ip.table, ip.pk, row)
		if !ip.beforeKeys[k] {
			ip.beforeKeys[k] = true
			ip.existing = append(ip.existing, row)
			p.addKey(k)
		}
	}
	return nil
}

func (ip *insertPlan) after(ctx context.Context, conn driver.Conn, p *Plan, res driver.Result) error {
	var after []undo.Row
	var err error
	where, args := ip.conflict, ip.conflictArgs
	if ip.upsert && len(ip.existing) > 0 {
		// Rows found before may have moved away from the supplied unique
		// values; read them by primary key too.
		b := &sqlBuf{}
		writeKeyIn(b, ip.table, ip.pk, len(ip.existing), func(r, k int) {
			bindImage(b, &ip.table.Columns[ip.pk[k]], ip.existing[r][ip.pk[k]].Value)
		})
		if where != "" {
			where = "(" + where + ") OR " + b.String()
			args = append(append([]any(nil), args...), b.args...)
		} else {
			where, args = b.String(), b.args
		}
	}
	switch {
	case ip.upsert && where != "":
		after, err = ip.read(ctx, conn, ip.imageQuery(where, true), args)
	case ip.generated:
		after, err = ip.inserted(ctx, conn, res)
	case ip.derived != nil:
		after = ip.derived
	default:
		after, err = ip.read(ctx, conn, ip.keyQuery, ip.keyArgs)
	}
	if err != nil {
		return fmt.Errorf("mysql: after image: %w", err)
	}

	ins := undo.Record{Table: ip.table.Name, Op: undo.OpInsert, PrimaryKey: ip.table.PrimaryKey}
	upd := undo.Record{Table: ip.table.Name, Op: undo.OpUpdate, PrimaryKey: ip.table.PrimaryKey}
	beforeByKey := make(map[string]undo.Row, len(ip.existing))
	for _, row := range ip.existing {
		k, _ := keyOf(ip.table, ip.pk, row)
		beforeByKey[k] = row
	}
	seen := make(map[string]bool, len(after))
	for _, row := range after {
		k, _ := keyOf(ip.table, ip.pk, row)
		if seen[k] {
			continue
		}
		seen[k] = true
		if b, ok := beforeByKey[k]; ok {
			if ip.upsert && !b.Equal(row) {
				upd.Before = append(upd.Before, b)
				upd.After = append(upd.After, row)
			}
			continue
		}
		ins.After = append(ins.After, row)
	}
	if !ip.ignore && !ip.upsert {
		if got := len(ins.After); got != ip.rows {
			return fmt.Errorf("%w: INSERT of %d rows, %d found by key afterwards", ErrImageMismatch, ip.rows, got)
		}
		if res != nil {
			if n, err := res.RowsAffected(); err == nil && n != int64(ip.rows) {
				return fmt.Errorf("%w: INSERT of %d rows affected %d", ErrImageMismatch, ip.rows, n)
			}
		}
	}
	// Undo deletes inserted rows before it restores updated ones: an
	// upsert can move a unique value away from an old row and give it to
	// a new one, and restoring the old row first would collide.
	if len(upd.Before) > 0 {
		if err := p.addRecord(upd); err != nil {
			return err
		}
	}
	if len(ins.After) > 0 {
		if err := p.addRecord(ins); err != nil {
			return err
		}
	}
	return nil
}

// inserted reads rows with generated keys: LAST_INSERT_ID() is the first,
// and the statement's rows got consecutive values.
func (ip *insertPlan) inserted(ctx context.Context, conn driver.Conn, res driver.Result) ([]undo.Row, error) {
	var first uint64
	if res != nil {
		id, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		first = uint64(id)
	} else {
		rows, err := queryRows(ctx, conn, "SELECT LAST_INSERT_ID()", nil)
		if err != nil {
			return nil, err
		}
		if len(rows) == 1 && len(rows[0]) == 1 {
			switch v := rows[0][0].(type) {
			case int64:
				first = uint64(v)
			case uint64:
				first = v
			default:
				first, _ = strconv.ParseUint(str(v), 10, 64)
			}
		}
	}
	if first == 0 {
		return nil, fmt.Errorf("%w: INSERT generated no AUTO_INCREMENT value (NO_AUTO_VALUE_ON_ZERO?)", ErrImageMismatch)
	}
	b := &sqlBuf{}
	writeKeyIn(b, ip.table, ip.pk, ip.rows, func(r, k int) {
		c := &ip.table.Columns[ip.pk[k]]
		if !c.AutoIncrement {
			o := ip.otherKeys[r][k]
			b.WriteString(o.sql)
			b.args = append(b.args, o.args...)
			return
		}
		if r == 0 {
			b.bind("", first)
		} else {
			b.bind("? + "+strconv.Itoa(r)+" * @@SESSION.auto_increment_increment", first)
		}
	})
	return ip.read(ctx, conn, ip.imageQuery(b.String(), false), b.args)
}

// insertSelectPlan images INSERT … SELECT whose column list includes the
// whole primary key: before the statement it runs the SELECT itself, LOCK
// IN SHARE MODE (as the INSERT would read it), to learn the keys it will
// insert; afterwards it reads those rows by key.
type insertSelectPlan struct {
	table    *Table
	pk       []int // primary-key positions in table.Columns
	keyPos   []int // position of each primary-key column in the SELECT list
	query    string
	args     []any
	keys     [][]driver.Value
	keyCount int
}

func planInsertSelect(p *Plan, x *ast.InsertStmt, ip *insertPlan, cols []*Column) (planner, error) {
	t := ip.table
	if ip.ignore || ip.upsert {
		return nil, unsupported("INSERT IGNORE or ON DUPLICATE KEY UPDATE with SELECT; insert VALUES")
	}
	sel, ok := x.Select.(*ast.SelectStmt)
	if !ok {
		return nil, unsupported("INSERT … SELECT of a set operation; the keys it inserts cannot be known in advance")
	}
	if sel.With != nil || sel.Limit != nil || sel.SelectIntoOpt != nil || len(sel.WindowSpecs) > 0 || sel.Fields == nil {
		return nil, unsupported("INSERT … SELECT with WITH, LIMIT or windows: the rows it picks cannot be read in advance exactly")
	}
	for _, f := range sel.Fields.Fields {
		if f.WildCard != nil {
			return nil, unsupported("INSERT … SELECT *: name the selected columns")
		}
	}
	if len(sel.Fields.Fields) != len(cols) {
		return nil, unsupported("INSERT … SELECT selects %d values for %d columns", len(sel.Fields.Fields), len(cols))
	}
	sp := &insertSelectPlan{table: t, pk: ip.pk}
	for _, j := range ip.pk {
		c := &t.Columns[j]
		pos := -1
		for i, x := range cols {
			if x == c {
				pos = i
			}
		}
		if pos < 0 {
			return nil, unsupported("INSERT … SELECT without primary-key column %s: the keys of the inserted rows cannot be known before it runs (\"INSERT … SELECT without keys\")", c.Name)
		}
		sp.keyPos = append(sp.keyPos, pos)
	}
	if err := checkDeterministic(sel); err != nil {
		return nil, err
	}
	b := &sqlBuf{user: p.args}
	if err := b.restore(sel); err != nil {
		return nil, err
	}
	if sel.From != nil {
		b.WriteString(" LOCK IN SHARE MODE")
	}
	sp.query, sp.args = b.String(), b.args
	return sp, nil
}

func (sp *insertSelectPlan) before(ctx context.Context, conn driver.Conn, p *Plan) error {
	rows, err := queryRows(ctx, conn, sp.query, sp.args)
	if err != nil {
		return fmt.Errorf("mysql: keys of INSERT … SELECT: %w", err)
	}
	sp.keyCount = len(rows)
	for _, r := range rows {
		key := make([]driver.Value, len(sp.keyPos))
		for i, pos := range sp.keyPos {
			if pos >= len(r) {
				return fmt.Errorf("mysql: keys of INSERT … SELECT: %d columns", len(r))
			}
			key[i] = r[pos]
		}
		sp.keys = append(sp.keys, key)
	}
	return nil
}

func (sp *insertSelectPlan) after(ctx context.Context, conn driver.Conn, p *Plan, res driver.Result) error {
	if res != nil {
		if n, err := res.RowsAffected(); err == nil && n != int64(sp.keyCount) {
			return fmt.Errorf("%w: INSERT … SELECT inserted %d rows, its SELECT returned %d", ErrImageMismatch, n, sp.keyCount)
		}
	}
	rec := undo.Record{Table: sp.table.Name, Op: undo.OpInsert, PrimaryKey: sp.table.PrimaryKey}
	seen := make(map[string]bool)
	cols := imageColumns(sp.table)
	for keys := sp.keys; len(keys) > 0; {
		chunk := keys[:min(len(keys), maxKeysPerQuery)]
		keys = keys[len(chunk):]
		b := &sqlBuf{}
		writeKeyIn(b, sp.table, sp.pk, len(chunk), func(r, k int) { b.bind("", chunk[r][k]) })
		q := "SELECT " + selectList(sp.table) + " FROM " + quote(sp.table.Name) + " WHERE " + b.String()
		rows, err := queryRows(ctx, conn, q, b.args)
		if err != nil {
			return fmt.Errorf("mysql: after image: %w", err)
		}
		for _, r := range rows {
			row, err := readRow(cols, r)
			if err != nil {
				return err
			}
			k, _ := keyOf(sp.table, sp.pk, row)
			if !seen[k] {
				seen[k] = true
				rec.After = append(rec.After, row)
			}
		}
	}
	if len(rec.After) != sp.keyCount {
		return fmt.Errorf("%w: INSERT … SELECT of %d rows, %d found by key afterwards", ErrImageMismatch, sp.keyCount, len(rec.After))
	}
	if len(rec.After) == 0 {
		return nil
	}
	return p.addRecord(rec)
}

// selectList returns the image expressions of t's columns.
func selectList(t *Table) string {
	b := &sqlBuf{}
	writeSelectList(b, t, quote(t.Name))
	return b.String()
}
