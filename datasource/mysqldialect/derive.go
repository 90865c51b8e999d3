package mysqldialect

import (
	"database/sql/driver"
	"math/big"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/xact-io/xact/undo"
)

// A derivation computes the after image of a single-table UPDATE from its
// before image, sparing the query that would read it back. It exists only
// for the statements whose result the database cannot make differ from
// plain integer arithmetic: every assignment sets an integer column to an
// integer (c = n) or moves it by one (c = c + n, c = c - n, c = n + c),
// with n a literal or an argument of Go type int64 or uint64, and the
// table has no generated column, no column with ON UPDATE, and no UPDATE
// trigger (planUpdate refuses those). The database either computes the
// exact sum, or fails the statement (arithmetic beyond BIGINT's range is
// an error in every SQL mode, so is an out-of-range store in strict mode),
// or clips the result to the column's range (non-strict mode); the
// derivation computes the exact sum and clips it, which is what was
// stored whenever the statement succeeded. Every other UPDATE reads its
// after image.
//
// A derived image that is wrong would not lose data: the rollback's dirty
// check compares the live row with the after image and parks the branch
// instead of overwriting a row it does not recognize. For that, a row
// derived as unchanged keeps its record (dmlPlan.after): were it dropped,
// a change the database made anyway would have no undo. UPDATE IGNORE,
// which may leave rows unchanged, reads its after image.
type derivation struct {
	cols []derivedColumn
}

type derivedColumn struct {
	pos  int      // position in the table's columns
	self bool     // c = c + n (true) or c = n (false)
	n    *big.Int // the operand, negated for c = c - n
}

// integer column ranges by data type.
var intBits = map[string]uint{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}

// deriveUpdate returns the derivation of x's after image for its only
// target table t, or nil if it has none.
func deriveUpdate(x *ast.UpdateStmt, srcs []*source, t *Table, args []driver.NamedValue) *derivation {
	for i := range t.Columns {
		if c := &t.Columns[i]; c.Generated || c.OnUpdate {
			return nil
		}
	}
	dv := &derivation{}
	seen := map[int]bool{}
	for _, a := range x.List {
		_, c, err := columnOwner(srcs, a.Column)
		if err != nil || !integerColumn(c) {
			return nil
		}
		pos := columnPos(t, c)
		if pos < 0 || seen[pos] {
			// Assignments run left to right and see earlier ones: a
			// column set twice is left to the database.
			return nil
		}
		seen[pos] = true
		dc, ok := deriveExpr(a.Expr, srcs, c, args)
		if !ok {
			return nil
		}
		dc.pos = pos
		dv.cols = append(dv.cols, dc)
	}
	if len(dv.cols) == 0 {
		return nil
	}
	return dv
}

func integerColumn(c *Column) bool {
	return (c.class == classInt || c.class == classUint) && intBits[c.DataType] != 0
}

func columnPos(t *Table, c *Column) int {
	for i := range t.Columns {
		if &t.Columns[i] == c {
			return i
		}
	}
	return -1
}

// deriveExpr recognizes n, c + n, n + c and c - n for column c.
func deriveExpr(e ast.ExprNode, srcs []*source, c *Column, args []driver.NamedValue) (derivedColumn, bool) {
	e = unparen(e)
	if n, ok := integerOperand(e, args); ok {
		return derivedColumn{n: n}, true
	}
	b, ok := e.(*ast.BinaryOperationExpr)
	if !ok || b.Op != opcode.Plus && b.Op != opcode.Minus {
		return derivedColumn{}, false
	}
	l, r := unparen(b.L), unparen(b.R)
	if isColumn(l, srcs, c) {
		if n, ok := integerOperand(r, args); ok {
			if b.Op == opcode.Minus {
				n.Neg(n)
			}
			return derivedColumn{self: true, n: n}, true
		}
	}
	if b.Op == opcode.Plus && isColumn(r, srcs, c) {
		if n, ok := integerOperand(l, args); ok {
			return derivedColumn{self: true, n: n}, true
		}
	}
	return derivedColumn{}, false
}

func unparen(e ast.ExprNode) ast.ExprNode {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

func isColumn(e ast.ExprNode, srcs []*source, c *Column) bool {
	x, ok := e.(*ast.ColumnNameExpr)
	if !ok {
		return false
	}
	_, oc, err := columnOwner(srcs, x.Name)
	return err == nil && oc == c
}

// integerOperand returns the value of an integer literal or of an
// argument of Go type int64 or uint64. Strings, floats and decimals are
// converted by the database's own rules (a string operand makes the
// arithmetic DOUBLE), so they are not integers here.
func integerOperand(e ast.ExprNode, args []driver.NamedValue) (*big.Int, bool) {
	switch x := e.(type) {
	case *param:
		if x.index >= len(args) {
			return nil, false
		}
		switch v := args[x.index].Value.(type) {
		case int64:
			return big.NewInt(v), true
		case uint64:
			return new(big.Int).SetUint64(v), true
		}
	case *test_driver.ValueExpr:
		switch x.Kind() {
		case test_driver.KindInt64:
			return big.NewInt(x.GetInt64()), true
		case test_driver.KindUint64:
			return new(big.Int).SetUint64(x.GetUint64()), true
		}
	}
	return nil, false
}

// apply returns the after image of before, and false if it cannot (a
// value of an unexpected kind).
func (dv *derivation) apply(t *Table, before undo.Row) (undo.Row, bool) {
	after := make(undo.Row, len(before))
	copy(after, before)
	for _, dc := range dv.cols {
		if dc.pos >= len(after) {
			return nil, false
		}
		c := &t.Columns[dc.pos]
		v := new(big.Int).Set(dc.n)
		if dc.self {
			cur := after[dc.pos].Value
			switch cur.Kind() {
			case undo.KindNull:
				continue // NULL + n is NULL
			case undo.KindInt:
				v.Add(v, big.NewInt(cur.Int()))
			case undo.KindUint:
				v.Add(v, new(big.Int).SetUint64(cur.Uint()))
			default:
				return nil, false
			}
		}
		val, ok := clip(c, v)
		if !ok {
			return nil, false
		}
		after[dc.pos].Value = val
	}
	return after, true
}

// clip stores v in integer column c as the database does outside strict
// mode: values beyond the column's range become its nearest bound.
func clip(c *Column, v *big.Int) (undo.Value, bool) {
	bits := intBits[c.DataType]
	if bits == 0 {
		return undo.Value{}, false
	}
	if c.class == classUint {
		hi := new(big.Int).Lsh(big.NewInt(1), bits)
		hi.Sub(hi, big.NewInt(1))
		switch {
		case v.Sign() < 0:
			v.SetInt64(0)
		case v.Cmp(hi) > 0:
			v.Set(hi)
		}
		return undo.Uint(v.Uint64()), true
	}
	hi := new(big.Int).Lsh(big.NewInt(1), bits-1)
	lo := new(big.Int).Neg(hi)
	hi.Sub(hi, big.NewInt(1))
	switch {
	case v.Cmp(lo) < 0:
		v.Set(lo)
	case v.Cmp(hi) > 0:
		v.Set(hi)
	}
	return undo.Int(v.Int64()), true
}
