package mysqldialect

import (
	"database/sql/driver"
	"math/big"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/test_driver"

	"github.com/xact-io/xact/undo"
)

// An INSERT's after images can be derived, sparing the query that reads
// the rows back, when the database cannot store anything but the values
// the statement gives. deriveInsert allows only:
//
//   - a plain INSERT … VALUES (not IGNORE, not an upsert) with explicit
//     keys, into a table without generated columns, whose column list
//     names every column of the table (no defaults);
//   - integer columns given an integer literal or an int64/uint64
//     argument within the column's range (a value out of range is clipped
//     outside strict mode, and a clipped AUTO_INCREMENT key makes the
//     server generate another: those read the row back);
//   - VARCHAR and CHAR columns in an ASCII-compatible character set
//     (utf8mb4, utf8mb3, latin1, ascii) given a string or []byte
//     argument of ASCII bytes that fits the column's length; a CHAR value
//     must fill the column and not end in a space (MySQL strips a CHAR's
//     trailing spaces when it reads it, and PAD_CHAR_TO_FULL_LENGTH pads
//     a shorter one). Every client
//     character set encodes ASCII the same, so the stored bytes are the
//     argument's. String literals are not used: what the server makes of
//     backslashes depends on NO_BACKSLASH_ESCAPES;
//   - NULL (a NULL literal or a nil argument) in a nullable column.
//
// Anything else reads the rows back. The INSERT's affected-row count is
// still checked. The rules leave out every case where the server could
// store another key than the statement gives (the key is what the undo
// finds the row by, and a wrong one would leave the row behind); a wrong
// non-key column only makes the rollback's dirty check park the branch.
// They assume what the rest of AT does: metadata no older than its TTL
// (a trigger or type change made within it is not seen) and a client
// character set that encodes ASCII as itself (every one MySQL offers but
// swe7).
func deriveInsert(t *Table, cols []*Column, lists [][]ast.ExprNode, args []driver.NamedValue) []undo.Row {
	if len(cols) != len(t.Columns) {
		return nil
	}
	at := make([]int, len(t.Columns)) // statement position of each table column
	for i := range t.Columns {
		c := &t.Columns[i]
		if c.Generated {
			return nil
		}
		at[i] = -1
		for j, sc := range cols {
			if sc == c {
				at[i] = j
			}
		}
		if at[i] < 0 {
			return nil
		}
	}
	rows := make([]undo.Row, len(lists))
	for r, list := range lists {
		row := make(undo.Row, len(t.Columns))
		for i := range t.Columns {
			c := &t.Columns[i]
			v, ok := storedValue(c, list[at[i]], args)
			if !ok {
				return nil
			}
			row[i] = undo.Field{Name: c.Name, Value: v}
		}
		rows[r] = row
	}
	return rows
}

// asciiCharsets are the character sets in which ASCII text is stored as
// its own bytes.
var asciiCharsets = map[string]bool{"utf8mb4": true, "utf8mb3": true, "utf8": true, "latin1": true, "ascii": true}

// storedValue returns the image of what column c stores for value e, and
// false if the database could store something else.
func storedValue(c *Column, e ast.ExprNode, args []driver.NamedValue) (undo.Value, bool) {
	e = unparen(e)
	if isNull(e, args) {
		return undo.Null(), c.Nullable
	}
	if integerColumn(c) {
		n, ok := integerOperand(e, args)
		if !ok {
			return undo.Value{}, false
		}
		// A value out of the column's range is clipped outside strict
		// mode, and a clipped AUTO_INCREMENT value (0) makes the server
		// generate one: only values that fit are known to be stored.
		want := new(big.Int).Set(n)
		v, ok := clip(c, n)
		if !ok || n.Cmp(want) != 0 {
			return undo.Value{}, false
		}
		return v, true
	}
	if c.class != classString || (c.DataType != "varchar" && c.DataType != "char") || !asciiCharsets[c.Charset] {
		return undo.Value{}, false
	}
	p, ok := e.(*param)
	if !ok || p.index >= len(args) {
		return undo.Value{}, false
	}
	var s string
	switch x := args[p.index].Value.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	default:
		return undo.Value{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return undo.Value{}, false
		}
	}
	n, ok := declaredLength(c.ColumnType)
	if !ok || len(s) > n || c.DataType == "char" && (len(s) != n || s[n-1] == ' ') {
		return undo.Value{}, false
	}
	return undo.String(s), true
}

// isNull reports a NULL literal or a nil argument.
func isNull(e ast.ExprNode, args []driver.NamedValue) bool {
	switch x := e.(type) {
	case *param:
		return x.index < len(args) && args[x.index].Value == nil
	case *test_driver.ValueExpr:
		return x.Kind() == test_driver.KindNull
	}
	return false
}

// declaredLength reads n from a column type "varchar(n)" or "char(n)".
func declaredLength(columnType string) (int, bool) {
	_, rest, ok := strings.Cut(columnType, "(")
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, ")")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}
