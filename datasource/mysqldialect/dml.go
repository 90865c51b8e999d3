package mysqldialect

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/xact-io/xact/undo"
)

// dmlPlan images UPDATE and DELETE, single- and multi-table: the before
// image reads the target tables' rows with the statement's own table
// references, WHERE, ORDER BY and LIMIT, FOR UPDATE; the after image of an
// UPDATE reads the same rows again by primary key.
type dmlPlan struct {
	op      undo.Op
	multi   bool
	targets []*source // sources whose rows the statement changes
	query   string    // the before-image query
	args    []any
	// images per base table (several aliases of one table share one).
	tables []*tableImage
	// derive computes the after image of a single-table UPDATE instead of
	// reading it (derive.go); nil reads it.
	derive *derivation
}

type tableImage struct {
	table  *Table
	pk     []int
	before []undo.Row
	keys   map[string]bool
}

func (d *Dialect) planUpdate(ctx context.Context, conn driver.Conn, p *Plan) (planner, error) {
	x := p.st.node.(*ast.UpdateStmt)
	if x.With != nil {
		return nil, unsupported("UPDATE with a WITH clause; use a subquery or a join")
	}
	if x.TableRefs == nil {
		return nil, unsupported("UPDATE without a table")
	}
	srcs, err := collectSources(x.TableRefs.TableRefs, nil)
	if err != nil {
		return nil, err
	}
	if err := d.resolve(ctx, conn, srcs); err != nil {
		return nil, err
	}
	var targets []*source
	for _, a := range x.List {
		s, c, err := columnOwner(srcs, a.Column)
		if err != nil {
			return nil, err
		}
		if s.table == nil {
			return nil, unsupported("UPDATE of a derived table")
		}
		if s.table.isKey(c.Name) {
			return nil, unsupported("UPDATE assigns primary-key column %s.%s; its after image could not be found by key", s.table.Name, c.Name)
		}
		if s.table.CascadedBy && inUniqueKey(s.table, c.Name) {
			return nil, unsupported("UPDATE of %s.%s may cascade to child rows through a foreign key, which cannot be imaged", s.table.Name, c.Name)
		}
		if !containsSource(targets, s) {
			targets = append(targets, s)
		}
	}
	for _, s := range targets {
		if _, err := usableSource(s); err != nil {
			return nil, err
		}
		if s.table.hasTrigger("UPDATE") {
			return nil, unsupported("table %s has an UPDATE trigger whose writes cannot be imaged", s.table.Name)
		}
	}
	dp, err := newDMLPlan(p, undo.OpUpdate, len(srcs) > 1, targets, x.TableRefs, x.Where, x.Order, x.Limit)
	if err != nil {
		return nil, err
	}
	// UPDATE IGNORE leaves rows it cannot change (duplicate key, CHECK,
	// foreign key) as they were: read what it did.
	if len(srcs) == 1 && !x.IgnoreErr && !d.readAfter {
		dp.derive = deriveUpdate(x, srcs, targets[0].table, p.args)
	}
	return dp, nil
}

func (d *Dialect) planDelete(ctx context.Context, conn driver.Conn, p *Plan) (planner, error) {
	x := p.st.node.(*ast.DeleteStmt)
	if x.With != nil {
		return nil, unsupported("DELETE with a WITH clause; use a subquery or a join")
	}
	if x.TableRefs == nil {
		return nil, unsupported("DELETE without a table")
	}
	srcs, err := collectSources(x.TableRefs.TableRefs, nil)
	if err != nil {
		return nil, err
	}
	if err := d.resolve(ctx, conn, srcs); err != nil {
		return nil, err
	}
	var targets []*source
	if x.IsMultiTable {
		if x.Tables == nil {
			return nil, unsupported("multi-table DELETE without target tables")
		}
		for _, tn := range x.Tables.Tables {
			s := findSource(srcs, tn.Schema.O, tn.Name.O)
			if s == nil {
				return nil, unsupported("DELETE target %s is not a table of the statement", tn.Name.O)
			}
			if _, err := usableSource(s); err != nil {
				return nil, err
			}
			if !containsSource(targets, s) {
				targets = append(targets, s)
			}
		}
	} else {
		if len(srcs) != 1 {
			return nil, unsupported("single-table DELETE with %d tables", len(srcs))
		}
		targets = srcs
	}
	for _, s := range targets {
		if _, err := usableSource(s); err != nil {
			return nil, err
		}
		if s.table.hasTrigger("DELETE") {
			return nil, unsupported("table %s has a DELETE trigger whose writes cannot be imaged", s.table.Name)
		}
		if s.table.CascadedBy {
			return nil, unsupported("deleting from %s cascades to child rows through a foreign key, which cannot be imaged", s.table.Name)
		}
	}
	return newDMLPlan(p, undo.OpDelete, x.IsMultiTable, targets, x.TableRefs, x.Where, x.Order, x.Limit)
}

// orderCoversKey reports whether ORDER BY names every primary-key column
// of s, which makes the order total: then the image query and the
// statement, reading the same locked rows, pick the same first rows.
func orderCoversKey(order *ast.OrderByClause, s *source) bool {
	if order == nil {
		return false
	}
	for _, k := range s.table.PrimaryKey {
		found := false
		for _, item := range order.Items {
			c, ok := item.Expr.(*ast.ColumnNameExpr)
			if !ok || !strings.EqualFold(c.Name.Name.O, k) {
				continue
			}
			if c.Name.Table.O == "" || c.Name.Table.O == s.refName() || strings.EqualFold(c.Name.Table.O, s.refName()) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func containsSource(list []*source, s *source) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func inUniqueKey(t *Table, col string) bool {
	for _, k := range t.UniqueKeys {
		for _, c := range k.Columns {
			if strings.EqualFold(c, col) {
				return true
			}
		}
	}
	return false
}

// newDMLPlan builds the before-image query:
//
//	SELECT <target columns> FROM <refs> [WHERE …] [ORDER BY …] [LIMIT …] FOR UPDATE
//
// The statement's clauses are restored from its AST, so their placeholders
// map to the statement's arguments whatever their order.
func newDMLPlan(p *Plan, op undo.Op, multi bool, targets []*source, refs *ast.TableRefsClause,
	where ast.ExprNode, order *ast.OrderByClause, limit *ast.Limit) (*dmlPlan, error) {
	if len(targets) == 0 {
		return nil, unsupported("statement changes no table")
	}
	check := []ast.Node{refs}
	if where != nil {
		check = append(check, where)
	}
	if order != nil {
		check = append(check, order)
	}
	if limit != nil {
		check = append(check, limit)
	}
	if err := checkDeterministic(check...); err != nil {
		return nil, err
	}
	if limit != nil && (len(targets) != 1 || !orderCoversKey(order, targets[0])) {
		return nil, unsupported("LIMIT without the primary key in ORDER BY: the statement may pick other rows than its before-image query; add the primary-key columns to ORDER BY")
	}
	b := &sqlBuf{user: p.args}
	b.WriteString("SELECT ")
	for i, s := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		writeSelectList(b, s.table, s.qualifier())
	}
	b.WriteString(" FROM ")
	if err := b.restore(refs); err != nil {
		return nil, err
	}
	if where != nil {
		b.WriteString(" WHERE ")
		if err := b.restore(where); err != nil {
			return nil, err
		}
	}
	if order != nil {
		b.WriteString(" ")
		if err := b.restore(order); err != nil {
			return nil, err
		}
	}
	if limit != nil {
		b.WriteString(" ")
		if err := b.restore(limit); err != nil {
			return nil, err
		}
	}
	b.WriteString(" FOR UPDATE")
	dp := &dmlPlan{op: op, multi: multi, targets: targets, query: b.String(), args: b.args}
	for _, s := range targets {
		if dp.image(s.table) == nil {
			dp.tables = append(dp.tables, &tableImage{table: s.table, pk: pkIndexes(s.table), keys: map[string]bool{}})
		}
	}
	return dp, nil
}

func (dp *dmlPlan) image(t *Table) *tableImage {
	for _, ti := range dp.tables {
		if ti.table == t {
			return ti
		}
	}
	return nil
}

func (dp *dmlPlan) before(ctx context.Context, conn driver.Conn, p *Plan) error {
	res, err := queryRows(ctx, conn, dp.query, dp.args)
	if err != nil {
		return fmt.Errorf("mysql: before image: %w", err)
	}
	for _, vals := range res {
		off := 0
		for _, s := range dp.targets {
			n := len(s.table.Columns)
			if off+n > len(vals) {
				return fmt.Errorf("mysql: before image returned %d columns", len(vals))
			}
			row, err := readRow(imageColumns(s.table), vals[off:off+n])
			off += n
			if err != nil {
				return err
			}
			ti := dp.image(s.table)
			k, ok := keyOf(ti.table, ti.pk, row)
			if !ok || ti.keys[k] {
				// The NULL side of an outer join, or a row a join
				// repeats.
				continue
			}
			ti.keys[k] = true
			ti.before = append(ti.before, row)
			p.addKey(k)
		}
	}
	return nil
}

func (dp *dmlPlan) after(ctx context.Context, conn driver.Conn, p *Plan, res driver.Result) error {
	matched := 0
	for _, ti := range dp.tables {
		matched += len(ti.before)
	}
	if dp.op == undo.OpDelete {
		if res != nil {
			n, err := res.RowsAffected()
			if err == nil && n != int64(matched) {
				return fmt.Errorf("%w: DELETE removed %d rows, its before image holds %d", ErrImageMismatch, n, matched)
			}
		}
		for _, ti := range dp.tables {
			if len(ti.before) == 0 {
				continue
			}
			rec := undo.Record{Table: ti.table.Name, Op: undo.OpDelete, PrimaryKey: ti.table.PrimaryKey, Before: ti.before}
			if err := p.addRecord(rec); err != nil {
				return err
			}
		}
		return nil
	}
	changed := 0
	var recs []undo.Record
	for _, ti := range dp.tables {
		if len(ti.before) == 0 {
			continue
		}
		after, err := dp.afterImage(ctx, conn, ti)
		if err != nil {
			return err
		}
		byKey := make(map[string]undo.Row, len(after))
		for _, row := range after {
			k, _ := keyOf(ti.table, ti.pk, row)
			byKey[k] = row
		}
		rec := undo.Record{Table: ti.table.Name, Op: undo.OpUpdate, PrimaryKey: ti.table.PrimaryKey}
		for _, b := range ti.before {
			k, _ := keyOf(ti.table, ti.pk, b)
			a, ok := byKey[k]
			if !ok {
				return fmt.Errorf("%w: row %s of the before image is gone after the UPDATE", ErrImageMismatch, k)
			}
			if a.Equal(b) {
				if dp.derive == nil {
					// Matched but unchanged (read back): nothing to
					// undo; its lock key stays, as the statement locked
					// the row.
					continue
				}
				// Derived as unchanged: keep the record anyway. Should
				// the database have stored something else after all, the
				// rollback's dirty check finds a row that is neither
				// image and parks, where a dropped record would leave
				// the change without undo.
			} else {
				changed++
			}
			rec.Before = append(rec.Before, b)
			rec.After = append(rec.After, a)
		}
		if len(rec.Before) > 0 {
			recs = append(recs, rec)
		}
	}
	if res != nil {
		// Affected rows count changed rows, or matched rows with
		// CLIENT_FOUND_ROWS; any other number means rows outside the image.
		n, err := res.RowsAffected()
		if err == nil && n != int64(changed) && n != int64(matched) {
			return fmt.Errorf("%w: UPDATE affected %d rows, its images hold %d matched and %d changed", ErrImageMismatch, n, matched, changed)
		}
	}
	for _, r := range recs {
		if err := p.addRecord(r); err != nil {
			return err
		}
	}
	return nil
}

// afterImage reads the rows of ti's before image again by primary key, or
// derives them when the statement allows.
func (dp *dmlPlan) afterImage(ctx context.Context, conn driver.Conn, ti *tableImage) ([]undo.Row, error) {
	if dp.derive != nil {
		after := make([]undo.Row, len(ti.before))
		for i, b := range ti.before {
			a, ok := dp.derive.apply(ti.table, b)
			if !ok {
				after = nil
				break
			}
			after[i] = a
		}
		if after != nil {
			return after, nil
		}
	}
	after, err := rowsByKey(ctx, conn, ti.table, imageColumns(ti.table), ti.pk, ti.before, false)
	if err != nil {
		return nil, fmt.Errorf("mysql: after image: %w", err)
	}
	return after, nil
}
