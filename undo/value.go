package undo

import (
	"fmt"
	"math"
	"strconv"
)

// Kind is the kind of a Value. The set is closed: an undo log never names
// a type that is not one of these, and a decoder rejects any other.
type Kind uint8

// The kinds of values. The numbers are part of the encoding.
const (
	KindNull    Kind = 0 // SQL NULL
	KindInt     Kind = 1 // signed integer, exact (TINYINT..BIGINT, YEAR)
	KindUint    Kind = 2 // unsigned integer, exact (... UNSIGNED, BIT)
	KindDecimal Kind = 3 // exact decimal as text: -?digits[.digits]
	KindFloat   Kind = 4 // IEEE 754 double, bit-exact (FLOAT, DOUBLE)
	KindBytes   Kind = 5 // binary string (BINARY, VARBINARY, BLOB, spatial)
	KindString  Kind = 6 // character string as the bytes stored in its column's charset
	KindTime    Kind = 7 // temporal value as text: DATE, DATETIME, TIMESTAMP (UTC) or TIME
)

var kindNames = [...]string{"null", "int", "uint", "decimal", "float", "bytes", "string", "time"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one column value of an image. The zero Value is NULL. Values are
// comparable: == is exact equality (same kind, same bits, same bytes).
type Value struct {
	kind Kind
	num  uint64 // int (two's complement), uint or float bits
	text string // decimal, bytes, string or time payload
}

// Null returns the SQL NULL value.
func Null() Value { return Value{} }

// Int returns a signed integer value.
func Int(v int64) Value { return Value{kind: KindInt, num: uint64(v)} }

// Uint returns an unsigned integer value.
func Uint(v uint64) Value { return Value{kind: KindUint, num: v} }

// Float returns a floating-point value; its bits are kept exactly.
func Float(v float64) Value { return Value{kind: KindFloat, num: math.Float64bits(v)} }

// Decimal returns an exact decimal value from its text, as MySQL prints it
// ("-12.340"). The text is checked by Validate and by Encode.
func Decimal(text string) Value { return Value{kind: KindDecimal, text: text} }

// Bytes returns a binary string value; b is copied.
func Bytes(b []byte) Value { return Value{kind: KindBytes, text: string(b)} }

// String returns a character string value holding the bytes as stored in
// the column's character set (not necessarily UTF-8).
func String(s string) Value { return Value{kind: KindString, text: s} }

// Time returns a temporal value from its text: "2006-01-02",
// "2006-01-02 15:04:05[.ffffff]" (TIMESTAMP values in UTC) or
// "[-]hhh:mm:ss[.ffffff]", with as many fractional digits as the column
// has. The text is checked by Validate and by Encode.
func Time(text string) Value { return Value{kind: KindTime, text: text} }

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is NULL.
func (v Value) IsNull() bool { return v.kind == KindNull }

// Int returns the value of a KindInt value, and 0 for other kinds.
func (v Value) Int() int64 {
	if v.kind != KindInt {
		return 0
	}
	return int64(v.num)
}

// Uint returns the value of a KindUint value, and 0 for other kinds.
func (v Value) Uint() uint64 {
	if v.kind != KindUint {
		return 0
	}
	return v.num
}

// Float returns the value of a KindFloat value, and 0 for other kinds.
func (v Value) Float() float64 {
	if v.kind != KindFloat {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Text returns the payload of a decimal, bytes, string or time value, and
// "" for other kinds.
func (v Value) Text() string { return v.text }

// Arg returns v as a database/sql/driver argument: nil, int64, uint64,
// float64, string (decimal, string, time) or []byte (bytes). go-sql-driver/
// mysql accepts uint64 arguments directly.
func (v Value) Arg() any {
	switch v.kind {
	case KindInt:
		return int64(v.num)
	case KindUint:
		return v.num
	case KindFloat:
		return math.Float64frombits(v.num)
	case KindBytes:
		return []byte(v.text)
	case KindDecimal, KindString, KindTime:
		return v.text
	default:
		return nil
	}
}

// String formats v for messages and tests: NULL, 42, 42u, 1.5f, 1.50d,
// b"..", "..", t"..".
func (v Value) String() string {
	switch v.kind {
	case KindNull:
		return "NULL"
	case KindInt:
		return strconv.FormatInt(int64(v.num), 10)
	case KindUint:
		return strconv.FormatUint(v.num, 10) + "u"
	case KindFloat:
		return strconv.FormatFloat(math.Float64frombits(v.num), 'g', -1, 64) + "f"
	case KindDecimal:
		return v.text + "d"
	case KindBytes:
		return "b" + strconv.Quote(v.text)
	case KindString:
		return strconv.Quote(v.text)
	case KindTime:
		return "t" + strconv.Quote(v.text)
	default:
		return v.kind.String()
	}
}

// Validate checks that v is well formed: a known kind, a decimal or time
// text in the accepted syntax.
func (v Value) Validate() error {
	switch v.kind {
	case KindNull, KindInt, KindUint, KindFloat:
		if v.text != "" {
			return fmt.Errorf("undo: %s value with text", v.kind)
		}
		if v.kind == KindNull && v.num != 0 {
			return fmt.Errorf("undo: null value with bits")
		}
		return nil
	case KindBytes, KindString:
		if v.num != 0 {
			return fmt.Errorf("undo: %s value with bits", v.kind)
		}
		return nil
	case KindDecimal:
		if !validDecimal(v.text) {
			return fmt.Errorf("%w: decimal %q", ErrMalformed, truncate(v.text))
		}
		return nil
	case KindTime:
		if !validTime(v.text) {
			return fmt.Errorf("%w: time %q", ErrMalformed, truncate(v.text))
		}
		return nil
	default:
		return fmt.Errorf("%w: value kind %d", ErrMalformed, v.kind)
	}
}

// maxDecimalLen bounds a decimal's text: 65 digits, a point and a sign.
const maxDecimalLen = 67

// validDecimal accepts -?[0-9]+(\.[0-9]+)?, the form MySQL prints.
func validDecimal(s string) bool {
	if len(s) == 0 || len(s) > maxDecimalLen {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	digits, point := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point && digits > 0:
			point, digits = true, 0
		default:
			return false
		}
	}
	return digits > 0
}

// maxTimeLen bounds a temporal value's text ("-838:59:59.000000" and
// "2006-01-02 15:04:05.000000" are the longest MySQL prints).
const maxTimeLen = 32

// validTime accepts the characters MySQL uses to print temporal values.
// It is a guard against garbage, not a calendar check: the database
// parses the text when it is written back.
func validTime(s string) bool {
	if len(s) == 0 || len(s) > maxTimeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '-', c == ':', c == ' ', c == '.':
		default:
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
