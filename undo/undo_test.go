package undo

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// sample is a log with every value kind, every op and a composite key.
func sample() *Log {
	return &Log{Records: []Record{
		{
			Table: "orders", Op: OpInsert, PrimaryKey: []string{"id"},
			After: []Row{
				{{"id", Int(1)}, {"amount", Decimal("12.50")}, {"note", String("caf\xc3\xa9 \xf0\x9f\x98\x80")}, {"created", Time("2024-01-02 03:04:05.123456")}},
				{{"id", Int(-2)}, {"amount", Decimal("-0.01")}, {"note", Null()}, {"created", Time("0000-00-00 00:00:00.000000")}},
			},
		},
		{
			Table: "stock", Op: OpUpdate, PrimaryKey: []string{"sku", "warehouse"},
			Before: []Row{{{"sku", String("A`1")}, {"warehouse", Uint(math.MaxUint64)}, {"qty", Float(0.1)}, {"blob", Bytes([]byte{0, 1, 0xff})}, {"t", Time("-838:59:59")}}},
			After:  []Row{{{"sku", String("A`1")}, {"warehouse", Uint(math.MaxUint64)}, {"qty", Float(math.Inf(-1))}, {"blob", Bytes(nil)}, {"t", Time("00:00:00")}}},
		},
		{
			Table: "select", Op: OpDelete, PrimaryKey: []string{"a b"},
			Before: []Row{{{"a b", Int(math.MinInt64)}, {"y", Int(2024)}, {"f", Float(math.Copysign(0, -1))}}},
		},
	}}
}

func TestValueAccessors(t *testing.T) {
	tests := []struct {
		v        Value
		kind     Kind
		arg      any
		str      string
		validate bool
	}{
		{Null(), KindNull, nil, "NULL", true},
		{Value{}, KindNull, nil, "NULL", true},
		{Int(-7), KindInt, int64(-7), "-7", true},
		{Uint(math.MaxUint64), KindUint, uint64(math.MaxUint64), "18446744073709551615u", true},
		{Float(1.5), KindFloat, 1.5, "1.5f", true},
		{Decimal("-12.340"), KindDecimal, "-12.340", "-12.340d", true},
		{Decimal("1e5"), KindDecimal, "1e5", "1e5d", false},
		{Decimal("1."), KindDecimal, "1.", "1.d", false},
		{Decimal(".5"), KindDecimal, ".5", ".5d", false},
		{Decimal(""), KindDecimal, "", "d", false},
		{Decimal("-"), KindDecimal, "-", "-d", false},
		{Decimal(strings.Repeat("9", 68)), KindDecimal, strings.Repeat("9", 68), strings.Repeat("9", 68) + "d", false},
		{Bytes([]byte("a\x00")), KindBytes, []byte("a\x00"), `b"a\x00"`, true},
		{String("é"), KindString, "é", `"é"`, true},
		{Time("2024-01-02"), KindTime, "2024-01-02", `t"2024-01-02"`, true},
		{Time("2024-01-02T03:04:05Z"), KindTime, "2024-01-02T03:04:05Z", `t"2024-01-02T03:04:05Z"`, false},
		{Time(""), KindTime, "", `t""`, false},
		{Value{kind: 99}, Kind(99), nil, "kind(99)", false},
	}
	for _, tt := range tests {
		if got := tt.v.Kind(); got != tt.kind {
			t.Errorf("%v.Kind() = %v, want %v", tt.v, got, tt.kind)
		}
		got := tt.v.Arg()
		if b, ok := got.([]byte); ok {
			if string(b) != string(tt.arg.([]byte)) {
				t.Errorf("%v.Arg() = %q, want %q", tt.v, b, tt.arg)
			}
		} else if got != tt.arg {
			t.Errorf("%v.Arg() = %#v, want %#v", tt.v, got, tt.arg)
		}
		if got := tt.v.String(); got != tt.str {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
		if err := tt.v.Validate(); (err == nil) != tt.validate {
			t.Errorf("%v.Validate() = %v, want ok=%v", tt.v, err, tt.validate)
		}
	}
}

func TestValueEquality(t *testing.T) {
	tests := []struct {
		a, b Value
		want bool
	}{
		{Int(1), Int(1), true},
		{Int(1), Uint(1), false},
		{Float(0), Float(math.Copysign(0, -1)), false},
		{Float(math.NaN()), Float(math.NaN()), true}, // bit-exact
		{Bytes([]byte("a")), String("a"), false},
		{Decimal("1.0"), Decimal("1.00"), false},
		{Null(), Value{}, true},
		{Bytes(nil), Bytes([]byte{}), true},
	}
	for _, tt := range tests {
		if got := tt.a == tt.b; got != tt.want {
			t.Errorf("%v == %v: %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	if got, want := Int(-5).Uint(), uint64(0); got != want {
		t.Errorf("Int(-5).Uint() = %d, want %d", got, want)
	}
	if got, want := Uint(5).Int(), int64(0); got != want {
		t.Errorf("Uint(5).Int() = %d, want %d", got, want)
	}
	if got, want := Int(5).Float(), 0.0; got != want {
		t.Errorf("Int(5).Float() = %v, want %v", got, want)
	}
}

func TestRecordLockKeys(t *testing.T) {
	l := sample()
	var got []string
	for i := range l.Records {
		keys, err := l.Records[i].LockKeys()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, keys...)
	}
	want := []string{"orders:1", "orders:-2", "stock:A`1,18446744073709551615", "select:-9223372036854775808"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("LockKeys = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	row := func(id int64, v Value) Row { return Row{{"id", Int(id)}, {"v", v}} }
	tests := []struct {
		name string
		rec  Record
		want error
	}{
		{"ok", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Null())}}, nil},
		{"empty table", Record{Table: "", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"bad utf8 table", Record{Table: "\xff", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"bad op", Record{Table: "t", Op: 9, PrimaryKey: []string{"id"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"insert with before", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, Before: []Row{row(1, Null())}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"delete without before", Record{Table: "t", Op: OpDelete, PrimaryKey: []string{"id"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"update unpaired", Record{Table: "t", Op: OpUpdate, PrimaryKey: []string{"id"}, Before: []Row{row(1, Null())}, After: []Row{row(2, Null())}}, ErrMalformed},
		{"update uneven", Record{Table: "t", Op: OpUpdate, PrimaryKey: []string{"id"}, Before: []Row{row(1, Null())}}, ErrMalformed},
		{"no pk", Record{Table: "t", Op: OpInsert, After: []Row{row(1, Null())}}, ErrMalformed},
		{"pk not a column", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"x"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"pk repeated", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id", "id"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"null pk", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"v"}, After: []Row{row(1, Null())}}, ErrMalformed},
		{"duplicate key", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Null()), row(1, Int(2))}}, ErrMalformed},
		{"rows differ", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Null()), {{"id", Int(2)}, {"w", Null()}}}}, ErrMalformed},
		{"rows differ in length", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Null()), {{"id", Int(2)}}}}, ErrMalformed},
		{"column repeated", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{{{"id", Int(1)}, {"id", Int(1)}}}}, ErrMalformed},
		{"bad decimal", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Decimal("x"))}}, ErrMalformed},
		{"no columns", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{{}}}, ErrMalformed},
		{"value too large", Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: []Row{row(1, Bytes(make([]byte, 11)))}}, ErrTooLarge},
	}
	lim := DefaultLimits
	lim.MaxValueSize = 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rec.Validate(lim)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}
