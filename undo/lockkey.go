package undo

import (
	"strconv"
	"strings"
)

// LockKey returns the canonical row key of the row of table whose primary
// key is pk: the escaped table name, a colon, and the escaped key values
// separated by commas ("orders:42", "order_items:42,7"). Escaping writes
// every byte outside printable ASCII and each of % , : ; as %XX (upper-case
// hex), so distinct rows have distinct keys and a key never contains a
// separator of its own; NULL, which a primary key cannot hold, is %N.
// The resource id is not part of the key: the TC scopes keys by resource.
//
// A value's text is its canonical form: decimal integers, the shortest
// round-trip form of a float, a decimal or time value's text, and the raw
// bytes of a string.
func LockKey(table string, pk ...Value) string {
	var b strings.Builder
	escape(&b, table)
	b.WriteByte(':')
	for i, v := range pk {
		if i > 0 {
			b.WriteByte(',')
		}
		switch v.kind {
		case KindNull:
			b.WriteString("%N")
		case KindInt:
			b.WriteString(strconv.FormatInt(int64(v.num), 10))
		case KindUint:
			b.WriteString(strconv.FormatUint(v.num, 10))
		case KindFloat:
			escape(&b, strconv.FormatFloat(v.Float(), 'g', -1, 64))
		default:
			escape(&b, v.text)
		}
	}
	return b.String()
}

const hexDigits = "0123456789ABCDEF"

func escape(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == ',' || c == ':' || c == ';' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

// LockKeyTable returns the table of a canonical lock key (LockKey): the
// part before the first colon, unescaped; "" for a key without a colon. An
// escape that is not %XX is kept as it is, so that any string gives
// something to show (the datasource names the table in lock-conflict
// errors).
func LockKeyTable(key string) string {
	i := strings.IndexByte(key, ':')
	if i < 0 {
		return ""
	}
	return unescape(key[:i])
}

// unescape undoes escape.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for j := 0; j < len(s); j++ {
		if s[j] == '%' && j+2 < len(s) {
			if v, err := strconv.ParseUint(s[j+1:j+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				j += 2
				continue
			}
		}
		b.WriteByte(s[j])
	}
	return b.String()
}
