package undo

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Limits bound what Encode writes and Decode accepts, so that a corrupt or
// hostile rollback_info cannot exhaust memory.
type Limits struct {
	MaxSize      int // bytes of one encoded log
	MaxRecords   int // records in one log
	MaxRows      int // rows in one image (before or after) of a record
	MaxFields    int // columns of a record
	MaxValueSize int // bytes of one value
}

// DefaultLimits are the limits of Encode and Decode: 1 GiB per log (MySQL's
// largest packet), 65536 records, 1<<20 rows per image, 4096 columns
// (MySQL's per-table maximum) and 1 GiB per value.
var DefaultLimits = Limits{
	MaxSize:      1 << 30,
	MaxRecords:   1 << 16,
	MaxRows:      1 << 20,
	MaxFields:    4096,
	MaxValueSize: 1 << 30,
}

// The encoding, version 1. Integers are varints (encoding/binary: Uvarint,
// and zig-zag Varint for signed values); a string is a uvarint length and
// its bytes.
//
//	log     = magic "XU", version 0x01, uvarint #records, record*, crc32c (4 bytes LE of all before it)
//	record  = op byte, string table, uvarint #columns, string column*,
//	          uvarint #pk, uvarint pk-column-index*,
//	          uvarint #before, row*, uvarint #after, row*
//	row     = value per column
//	value   = kind byte, payload: null -; int varint; uint uvarint; float 8 bytes LE bits;
//	          decimal, bytes, string, time: string
//
// Column names are written once per record; a primary key is a list of
// column indexes. Nothing in the encoding names a Go or SQL type.
const (
	version1 = 1
	magic0   = 'X'
	magic1   = 'U'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode encodes l within DefaultLimits.
func Encode(l *Log) ([]byte, error) { return DefaultLimits.Encode(l) }

// Decode decodes b within DefaultLimits.
func Decode(b []byte) (*Log, error) { return DefaultLimits.Decode(b) }

// Encode validates l and encodes it. A log that Encode accepts, Decode
// with the same limits accepts and returns equal.
func (lim Limits) Encode(l *Log) ([]byte, error) {
	if err := l.Validate(lim); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 256)
	b = append(b, magic0, magic1, version1)
	b = binary.AppendUvarint(b, uint64(len(l.Records)))
	for i := range l.Records {
		r := &l.Records[i]
		b = append(b, byte(r.Op))
		b = appendString(b, r.Table)
		cols := r.Columns()
		b = binary.AppendUvarint(b, uint64(len(cols)))
		index := make(map[string]int, len(cols))
		for j, c := range cols {
			b = appendString(b, c)
			index[c] = j
		}
		b = binary.AppendUvarint(b, uint64(len(r.PrimaryKey)))
		for _, k := range r.PrimaryKey {
			b = binary.AppendUvarint(b, uint64(index[k]))
		}
		for _, rows := range [][]Row{r.Before, r.After} {
			b = binary.AppendUvarint(b, uint64(len(rows)))
			for _, row := range rows {
				for _, f := range row {
					b = appendValue(b, f.Value)
				}
			}
		}
		if len(b) > lim.MaxSize {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxSize)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if len(b) > lim.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(b), lim.MaxSize)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v Value) []byte {
	b = append(b, byte(v.kind))
	switch v.kind {
	case KindInt:
		return binary.AppendVarint(b, int64(v.num))
	case KindUint:
		return binary.AppendUvarint(b, v.num)
	case KindFloat:
		return binary.LittleEndian.AppendUint64(b, v.num)
	case KindDecimal, KindBytes, KindString, KindTime:
		return appendString(b, v.text)
	}
	return b
}

// Decode decodes an encoded log, checking its checksum, its version, the
// limits and every record invariant (see Record.Validate). It never
// panics and never allocates much more than len(b).
func (lim Limits) Decode(b []byte) (*Log, error) {
	if len(b) > lim.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(b), lim.MaxSize)
	}
	if len(b) < 3+1+4 || b[0] != magic0 || b[1] != magic1 {
		return nil, fmt.Errorf("%w: not an xact undo log", ErrMalformed)
	}
	if b[2] != version1 {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[2])
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, ErrChecksum
	}
	d := decoder{b: body[3:], lim: lim}
	n := d.count(lim.MaxRecords, 1, "records")
	l := &Log{Records: make([]Record, 0, n)}
	for i := 0; i < n && d.err == nil; i++ {
		l.Records = append(l.Records, d.record())
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	if err := l.Validate(lim); err != nil {
		return nil, err
	}
	return l, nil
}

// decoder reads from b; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	lim Limits
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// count reads a count that may not exceed limit, nor the number of items
// of at least minSize bytes that the rest of the input can hold.
func (d *decoder) count(limit, minSize int, what string) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if v > uint64(limit) {
		if d.err == nil {
			d.err = fmt.Errorf("%w: %d %s (limit %d)", ErrTooLarge, v, what, limit)
		}
		return 0
	}
	if minSize > 0 && v > uint64(len(d.b)/minSize) {
		d.fail("%d %s in %d bytes", v, what, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(limit int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(limit) {
		d.err = fmt.Errorf("%w: value of %d bytes (limit %d)", ErrTooLarge, n, limit)
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) record() Record {
	var r Record
	r.Op = Op(d.byte1())
	r.Table = d.bytes(maxNameLen)
	ncol := d.count(d.lim.MaxFields, 1, "columns")
	cols := make([]string, 0, ncol)
	for i := 0; i < ncol && d.err == nil; i++ {
		cols = append(cols, d.bytes(maxNameLen))
	}
	npk := d.count(ncol, 1, "primary-key columns")
	for i := 0; i < npk && d.err == nil; i++ {
		j := d.uvarint()
		if j >= uint64(len(cols)) {
			d.fail("primary-key column index %d of %d", j, len(cols))
			break
		}
		r.PrimaryKey = append(r.PrimaryKey, cols[j])
	}
	r.Before = d.rows(cols)
	r.After = d.rows(cols)
	return r
}

func (d *decoder) rows(cols []string) []Row {
	minRow := max(len(cols), 1) // a value takes at least its kind byte
	n := d.count(d.lim.MaxRows, minRow, "rows")
	if n == 0 || d.err != nil {
		return nil
	}
	rows := make([]Row, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		row := make(Row, len(cols))
		for j, c := range cols {
			row[j] = Field{Name: c, Value: d.value()}
		}
		rows = append(rows, row)
	}
	return rows
}

func (d *decoder) value() Value {
	k := Kind(d.byte1())
	switch k {
	case KindNull:
		return Value{}
	case KindInt:
		return Int(d.varint())
	case KindUint:
		return Uint(d.uvarint())
	case KindFloat:
		if len(d.b) < 8 {
			d.fail("truncated")
			return Value{}
		}
		v := binary.LittleEndian.Uint64(d.b)
		d.b = d.b[8:]
		return Float(math.Float64frombits(v))
	case KindDecimal, KindBytes, KindString, KindTime:
		return Value{kind: k, text: d.bytes(d.lim.MaxValueSize)}
	default:
		if d.err == nil {
			d.fail("value kind %d", k)
		}
		return Value{}
	}
}
