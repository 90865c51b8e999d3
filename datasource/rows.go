package datasource

import (
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
)

// rows is a result set read into memory: the rows of a statement whose
// after image must be read before its rows are returned (RETURNING), of an
// autocommit branch that commits before it returns, and of a statement
// the wrapper had to prepare itself.
//
// It answers the column-type questions with what the inner rows answered
// while they were open, and with database/sql's defaults for the
// questions the inner rows could not answer, so callers see the same
// sql.ColumnType either way.
type rows struct {
	cols []string
	data [][]driver.Value
	pos  int
	// Column types, captured per column when the inner rows had them.
	scanTypes  []reflect.Type
	dbTypes    []string
	lengths    []colLength
	nullables  []colNullable
	precisions []colPrecision
}

type colLength struct {
	n  int64
	ok bool
}

type colNullable struct {
	nullable, ok bool
}

type colPrecision struct {
	precision, scale int64
	ok               bool
}

var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
)

// bufferRows reads every row of r, copying byte slices (drivers reuse
// their buffers), and closes r.
func bufferRows(r driver.Rows) (*rows, error) {
	b := &rows{cols: append([]string(nil), r.Columns()...)}
	n := len(b.cols)
	if t, ok := r.(driver.RowsColumnTypeScanType); ok {
		b.scanTypes = make([]reflect.Type, n)
		for i := range n {
			b.scanTypes[i] = t.ColumnTypeScanType(i)
		}
	}
	if t, ok := r.(driver.RowsColumnTypeDatabaseTypeName); ok {
		b.dbTypes = make([]string, n)
		for i := range n {
			b.dbTypes[i] = t.ColumnTypeDatabaseTypeName(i)
		}
	}
	if t, ok := r.(driver.RowsColumnTypeLength); ok {
		b.lengths = make([]colLength, n)
		for i := range n {
			b.lengths[i].n, b.lengths[i].ok = t.ColumnTypeLength(i)
		}
	}
	if t, ok := r.(driver.RowsColumnTypeNullable); ok {
		b.nullables = make([]colNullable, n)
		for i := range n {
			b.nullables[i].nullable, b.nullables[i].ok = t.ColumnTypeNullable(i)
		}
	}
	if t, ok := r.(driver.RowsColumnTypePrecisionScale); ok {
		b.precisions = make([]colPrecision, n)
		for i := range n {
			p := &b.precisions[i]
			p.precision, p.scale, p.ok = t.ColumnTypePrecisionScale(i)
		}
	}
	for {
		dest := make([]driver.Value, n)
		err := r.Next(dest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.Close()
			return nil, err
		}
		for i, v := range dest {
			if s, ok := v.([]byte); ok {
				dest[i] = append([]byte(nil), s...)
			}
		}
		b.data = append(b.data, dest)
	}
	if err := r.Close(); err != nil {
		return nil, err
	}
	return b, nil
}

// Columns implements driver.Rows.
func (r *rows) Columns() []string { return r.cols }

// Close implements driver.Rows.
func (r *rows) Close() error {
	r.data, r.pos = nil, 0
	return nil
}

// Next implements driver.Rows.
func (r *rows) Next(dest []driver.Value) error {
	if r.pos >= len(r.data) {
		return io.EOF
	}
	copy(dest, r.data[r.pos])
	r.pos++
	return nil
}

// ColumnTypeScanType implements driver.RowsColumnTypeScanType.
func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if r.scanTypes == nil {
		return reflect.TypeFor[any]()
	}
	return r.scanTypes[i]
}

// ColumnTypeDatabaseTypeName implements
// driver.RowsColumnTypeDatabaseTypeName.
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if r.dbTypes == nil {
		return ""
	}
	return r.dbTypes[i]
}

// ColumnTypeLength implements driver.RowsColumnTypeLength.
func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if r.lengths == nil {
		return 0, false
	}
	return r.lengths[i].n, r.lengths[i].ok
}

// ColumnTypeNullable implements driver.RowsColumnTypeNullable.
func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if r.nullables == nil {
		return false, false
	}
	return r.nullables[i].nullable, r.nullables[i].ok
}

// ColumnTypePrecisionScale implements driver.RowsColumnTypePrecisionScale.
func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if r.precisions == nil {
		return 0, 0, false
	}
	p := r.precisions[i]
	return p.precision, p.scale, p.ok
}
