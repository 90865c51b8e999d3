package undo

import (
	"testing"
	"unicode/utf8"
)

func TestLockKey(t *testing.T) {
	tests := []struct {
		table string
		pk    []Value
		want  string
	}{
		{"orders", []Value{Int(42)}, "orders:42"},
		{"order_items", []Value{Int(42), Uint(7)}, "order_items:42,7"},
		{"t", []Value{String("a,b:c;d%e f")}, "t:a%2Cb%3Ac%3Bd%25e%20f"},
		{"weird:table,name", []Value{String("")}, "weird%3Atable%2Cname:"},
		{"t", []Value{String(""), String("")}, "t:,"},
		{"t", []Value{Bytes([]byte{0, 0xff, 'A'})}, "t:%00%FFA"},
		{"t", []Value{String("é")}, "t:%C3%A9"},
		{"t", []Value{Decimal("-1.50")}, "t:-1.50"},
		{"t", []Value{Float(0.1)}, "t:0.1"},
		{"t", []Value{Time("2024-01-02 03:04:05")}, "t:2024-01-02%2003%3A04%3A05"},
		{"t", []Value{Null()}, "t:%N"},
	}
	for _, tt := range tests {
		if got := LockKey(tt.table, tt.pk...); got != tt.want {
			t.Errorf("LockKey(%q, %v) = %q, want %q", tt.table, tt.pk, got, tt.want)
		}
	}
}

func TestLockKeyTable(t *testing.T) {
	tests := []struct{ key, want string }{
		{"account:1", "account"},
		{"order%3Aitems:1,2", "order:items"},
		{"caf%C3%A9:x", "café"},
		{"nocolon", ""},
		{":1", ""},
		{"bad%ZZescape%4:1", "bad%ZZescape%4"}, // not %XX: kept as it is
	}
	for _, tt := range tests {
		if got := LockKeyTable(tt.key); got != tt.want {
			t.Errorf("LockKeyTable(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// FuzzLockKey checks that LockKeyTable reads back the table of every key
// LockKey makes, that a key holds exactly one colon and one comma fewer
// than it has values, and that LockKeyTable takes any string.
func FuzzLockKey(f *testing.F) {
	f.Add("orders", "42", int64(7))
	f.Add("weird:table,name", "a,b:c;d%e f", int64(-1))
	f.Add("caf\xc3\xa9", "\x00\xff", int64(0))
	f.Add("%3A", "%N", int64(1))
	f.Fuzz(func(t *testing.T, table, s string, n int64) {
		key := LockKey(table, String(s), Int(n), Bytes([]byte(s)))
		if got := LockKeyTable(key); got != table {
			t.Errorf("LockKeyTable(LockKey(%q, …)) = %q (key %q), want the table back", table, got, key)
		}
		colons, commas := 0, 0
		for i := 0; i < len(key); i++ {
			switch c := key[i]; {
			case c == ':':
				colons++
			case c == ',':
				commas++
			case c <= ' ' || c >= 0x7f:
				t.Fatalf("LockKey(%q, %q, %d) = %q holds byte 0x%02x", table, s, n, key, c)
			}
		}
		if colons != 1 || commas != 2 || !utf8.ValidString(key) {
			t.Errorf("LockKey(%q, %q, %d) = %q: %d colons, %d commas; want 1 and 2, ASCII", table, s, n, key, colons, commas)
		}
		_ = LockKeyTable(s) // any string: no panic
	})
}
