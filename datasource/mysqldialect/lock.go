package mysqldialect

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// lockPlan finds the keys of the rows a SELECT … FOR UPDATE locks:
//
//	SELECT <primary keys of the locked tables> FROM <from> [WHERE …] [ORDER BY … LIMIT …] FOR UPDATE …
//
// A query that groups or aggregates drops ORDER BY and LIMIT, which only
// widens the set (more keys are checked, never fewer).
type lockPlan struct {
	targets []*source
	query   string
	args    []any
}

func (d *Dialect) planLock(ctx context.Context, conn driver.Conn, p *Plan) (planner, error) {
	x := p.st.node.(*ast.SelectStmt)
	if x.With != nil {
		return nil, unsupported("SELECT … FOR UPDATE with a WITH clause; lock the base tables directly")
	}
	if x.From == nil {
		return &lockPlan{}, nil
	}
	srcs, err := collectSources(x.From.TableRefs, nil)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		if s.name == nil {
			return nil, unsupported("SELECT … FOR UPDATE over a derived table; its rows' keys cannot be found")
		}
	}
	if err := d.resolve(ctx, conn, srcs); err != nil {
		return nil, err
	}
	targets := srcs
	if len(x.LockInfo.Tables) > 0 {
		targets = nil
		for _, tn := range x.LockInfo.Tables {
			s := findSource(srcs, tn.Schema.O, tn.Name.O)
			if s == nil {
				return nil, unsupported("FOR UPDATE OF %s: not a table of the query", tn.Name.O)
			}
			if !containsSource(targets, s) {
				targets = append(targets, s)
			}
		}
	}
	for _, s := range targets {
		if _, err := usableSource(s); err != nil {
			return nil, err
		}
	}
	check := []ast.Node{x.From}
	if x.Where != nil {
		check = append(check, x.Where)
	}
	if err := checkDeterministic(check...); err != nil {
		return nil, err
	}

	b := &sqlBuf{user: p.args}
	b.WriteString("SELECT ")
	n := 0
	for _, s := range targets {
		for _, j := range pkIndexes(s.table) {
			if n > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(s.table.Columns[j].selectExpr(s.qualifier()))
		}
	}
	b.WriteString(" FROM ")
	if err := b.restore(x.From); err != nil {
		return nil, err
	}
	if x.Where != nil {
		b.WriteString(" WHERE ")
		if err := b.restore(x.Where); err != nil {
			return nil, err
		}
	}
	if !x.Distinct && x.GroupBy == nil && x.Having == nil && !aggregates(x.Fields) {
		if x.OrderBy != nil {
			b.WriteString(" ")
			if err := b.restore(x.OrderBy); err != nil {
				return nil, err
			}
		}
		if x.Limit != nil {
			b.WriteString(" ")
			if err := b.restore(x.Limit); err != nil {
				return nil, err
			}
		}
	}
	b.WriteString(" FOR UPDATE")
	switch x.LockInfo.LockType {
	case ast.SelectLockForUpdateNoWait:
		b.WriteString(" NOWAIT")
	case ast.SelectLockForUpdateSkipLocked:
		b.WriteString(" SKIP LOCKED")
	case ast.SelectLockForUpdateWaitN:
		b.WriteString(" WAIT " + strconv.FormatUint(x.LockInfo.WaitSec, 10))
	}
	return &lockPlan{targets: targets, query: b.String(), args: b.args}, nil
}

// aggregates reports whether a select list uses aggregate or window
// functions.
func aggregates(f *ast.FieldList) bool {
	if f == nil {
		return false
	}
	found := false
	f.Accept(&visitor{enter: func(n ast.Node) bool {
		switch n.(type) {
		case *ast.AggregateFuncExpr, *ast.WindowFuncExpr:
			found = true
		case *ast.SubqueryExpr:
			return true
		}
		return found
	}})
	return found
}

func (lp *lockPlan) before(ctx context.Context, conn driver.Conn, p *Plan) error {
	if lp.query == "" {
		return nil
	}
	rows, err := queryRows(ctx, conn, lp.query, lp.args)
	if err != nil {
		return fmt.Errorf("mysql: lock keys: %w", err)
	}
	for _, vals := range rows {
		off := 0
		for _, s := range lp.targets {
			pk := pkIndexes(s.table)
			cols := make([]*Column, len(pk))
			for i, j := range pk {
				cols[i] = &s.table.Columns[j]
			}
			if off+len(pk) > len(vals) {
				return fmt.Errorf("mysql: lock-key query returned %d columns", len(vals))
			}
			row, err := readRow(cols, vals[off:off+len(pk)])
			off += len(pk)
			if err != nil {
				return err
			}
			seq := make([]int, len(pk))
			for i := range seq {
				seq[i] = i
			}
			if k, ok := keyOf(s.table, seq, row); ok {
				p.addKey(k)
			}
		}
	}
	return nil
}

func (lp *lockPlan) after(context.Context, driver.Conn, *Plan, driver.Result) error { return nil }
