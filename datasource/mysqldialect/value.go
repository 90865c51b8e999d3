package mysqldialect

import (
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/xact-io/xact/undo"
)

// How values are captured (see DESIGN.md, I10: a rollback restores the
// before image exactly).
//
// Image queries do not read columns as the application does: each column
// is read through an expression chosen by its type (Column.selectExpr) so
// that the value arriving is exact and independent of the driver's
// settings (parseTime, loc, interpolateParams, text or binary protocol)
// and of the session (time_zone, character_set_results):
//
//   - integers, DECIMAL, DOUBLE, BIT, YEAR, binary strings: as they are;
//     the driver hands over int64/uint64/float64 or the server's exact text.
//   - FLOAT: CAST(c AS DOUBLE), because the text protocol prints FLOAT with
//     six significant digits; the double holds the float exactly.
//   - DATE, DATETIME, TIME: CAST(c AS CHAR), the server's text with the
//     column's fractional digits (zero dates included), never a time.Time.
//   - TIMESTAMP: UNIX_TIMESTAMP(c), the stored instant, which does not
//     depend on time_zone; kept as UTC text. Writing it back needs a
//     session in UTC, which Undo arranges.
//   - character strings (CHAR, VARCHAR, TEXT, ENUM, SET, JSON): CAST(c AS
//     BINARY), the bytes as stored in the column's charset, untouched by
//     character_set_results; written back by CONVERT(UNHEX(?) USING
//     charset) COLLATE collation with the bytes as hex text, which no
//     protocol or connection charset alters.
//
// toValue turns what the driver returns for such an expression into an
// undo.Value, accepting every form go-sql-driver/mysql uses for it.
func (c *Column) toValue(v driver.Value) (undo.Value, error) {
	if v == nil {
		return undo.Null(), nil
	}
	bad := func() (undo.Value, error) {
		return undo.Value{}, fmt.Errorf("mysql: column %s: unexpected %T value from the driver", c.Name, v)
	}
	switch c.class {
	case classInt:
		switch x := v.(type) {
		case int64:
			return undo.Int(x), nil
		case []byte, string:
			n, err := strconv.ParseInt(str(x), 10, 64)
			if err != nil {
				return undo.Value{}, fmt.Errorf("mysql: column %s: %w", c.Name, err)
			}
			return undo.Int(n), nil
		}
	case classUint:
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return bad()
			}
			return undo.Uint(uint64(x)), nil
		case uint64:
			return undo.Uint(x), nil
		case []byte, string:
			n, err := strconv.ParseUint(str(x), 10, 64)
			if err != nil {
				return undo.Value{}, fmt.Errorf("mysql: column %s: %w", c.Name, err)
			}
			return undo.Uint(n), nil
		}
	case classBit:
		switch x := v.(type) {
		case []byte:
			if len(x) > 8 {
				return bad()
			}
			var n uint64
			for _, b := range x {
				n = n<<8 | uint64(b)
			}
			return undo.Uint(n), nil
		case int64:
			return undo.Uint(uint64(x)), nil
		case uint64:
			return undo.Uint(x), nil
		}
	case classDecimal:
		switch x := v.(type) {
		case []byte, string:
			d := undo.Decimal(str(x))
			if err := d.Validate(); err != nil {
				return undo.Value{}, fmt.Errorf("mysql: column %s: %w", c.Name, err)
			}
			return d, nil
		}
	case classFloat, classDouble:
		switch x := v.(type) {
		case float64:
			return undo.Float(x), nil
		case float32:
			return undo.Float(float64(x)), nil
		case []byte, string:
			f, err := strconv.ParseFloat(str(x), 64)
			if err != nil {
				return undo.Value{}, fmt.Errorf("mysql: column %s: %w", c.Name, err)
			}
			return undo.Float(f), nil
		}
	case classTemporal:
		switch x := v.(type) {
		case []byte, string:
			t := undo.Time(str(x))
			if err := t.Validate(); err != nil {
				return undo.Value{}, fmt.Errorf("mysql: column %s: %w", c.Name, err)
			}
			return t, nil
		}
	case classTimestamp:
		switch x := v.(type) {
		case int64:
			return c.timestamp(strconv.FormatInt(x, 10))
		case []byte, string:
			return c.timestamp(str(x))
		}
	case classString:
		switch x := v.(type) {
		case []byte, string:
			return undo.String(str(x)), nil
		}
	case classText:
		switch x := v.(type) {
		case []byte, string:
			return undo.String(str(x)), nil
		}
	case classBytes:
		switch x := v.(type) {
		case []byte:
			return undo.Bytes(x), nil
		case string:
			return undo.Bytes([]byte(x)), nil
		}
	}
	return bad()
}

// timestamp turns UNIX_TIMESTAMP's "seconds[.fraction]" into UTC text
// with the column's fractional digits; 0 is the zero TIMESTAMP.
func (c *Column) timestamp(s string) (undo.Value, error) {
	secText, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secText, 10, 64)
	if err != nil || sec < 0 || sec > math.MaxInt32*2 || strings.Trim(frac, "0123456789") != "" {
		return undo.Value{}, fmt.Errorf("mysql: column %s: bad UNIX_TIMESTAMP %q", c.Name, s)
	}
	for len(frac) < c.Precision {
		frac += "0"
	}
	var text string
	if sec == 0 && strings.Trim(frac, "0") == "" {
		text = "0000-00-00 00:00:00"
	} else {
		text = time.Unix(sec, 0).UTC().Format(time.DateTime)
	}
	if frac != "" {
		text += "." + frac
	}
	return undo.Time(text), nil
}

// readRow turns one row of an image query into an image: cols[i] was read
// from vals[i].
func readRow(cols []*Column, vals []driver.Value) (undo.Row, error) {
	if len(vals) != len(cols) {
		return nil, fmt.Errorf("mysql: image query returned %d columns, want %d", len(vals), len(cols))
	}
	row := make(undo.Row, len(cols))
	for i, c := range cols {
		v, err := c.toValue(vals[i])
		if err != nil {
			return nil, err
		}
		row[i] = undo.Field{Name: c.Name, Value: v}
	}
	return row, nil
}

// accepts reports whether a value of kind k can be an image of the column:
// the kind its class captures, or NULL. Rollback checks it so that a
// column whose type changed since the image (or a forged log) fails
// instead of being written with a converted value.
func (c *Column) accepts(k undo.Kind) bool {
	if k == undo.KindNull {
		return true
	}
	switch c.class {
	case classInt:
		return k == undo.KindInt
	case classUint, classBit:
		return k == undo.KindUint
	case classDecimal:
		return k == undo.KindDecimal
	case classFloat, classDouble:
		return k == undo.KindFloat
	case classTemporal, classTimestamp:
		return k == undo.KindTime
	case classString, classText:
		return k == undo.KindString
	case classBytes:
		return k == undo.KindBytes
	}
	return false
}
