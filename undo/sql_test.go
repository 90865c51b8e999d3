package undo

import (
	"errors"
	"reflect"
	"testing"
)

func liveTable() *Table {
	return &Table{
		Name: "select",
		Columns: []Column{
			{Name: "a`b"},
			{Name: "k 2", Bind: "CONVERT(UNHEX(?) USING utf8mb4) COLLATE utf8mb4_bin", Hex: true},
			{Name: "v"},
			{Name: "g", Generated: true},
		},
		PrimaryKey: []string{"a`b", "k 2"},
	}
}

func TestCompensation(t *testing.T) {
	r1 := Row{{"a`b", Int(1)}, {"k 2", String("x")}, {"v", Decimal("1.5")}, {"g", Int(3)}}
	r1b := Row{{"a`b", Int(1)}, {"k 2", String("x")}, {"v", Null()}, {"g", Int(3)}}
	r2 := Row{{"a`b", Int(2)}, {"k 2", String("y")}, {"v", Null()}, {"g", Null()}}
	const cv = "CONVERT(UNHEX(?) USING utf8mb4) COLLATE utf8mb4_bin"
	tests := []struct {
		name string
		rec  Record
		want []Statement
	}{
		{
			name: "insert is undone by delete",
			rec:  Record{Table: "select", Op: OpInsert, PrimaryKey: []string{"a`b", "k 2"}, After: []Row{r1, r2}},
			want: []Statement{{
				SQL:  "DELETE FROM `select` WHERE (`a``b` = ? AND `k 2` = " + cv + ") OR (`a``b` = ? AND `k 2` = " + cv + ")",
				Args: []any{int64(1), "78", int64(2), "79"},
				Rows: 2,
			}},
		},
		{
			name: "delete is undone by insert without generated columns",
			rec:  Record{Table: "select", Op: OpDelete, PrimaryKey: []string{"a`b", "k 2"}, Before: []Row{r1, r2}},
			want: []Statement{{
				SQL:  "INSERT INTO `select` (`a``b`, `k 2`, `v`) VALUES (?, " + cv + ", ?), (?, " + cv + ", ?)",
				Args: []any{int64(1), "78", "1.5", int64(2), "79", nil},
				Rows: 2,
			}},
		},
		{
			name: "update is undone by update of every writable column",
			rec:  Record{Table: "select", Op: OpUpdate, PrimaryKey: []string{"a`b", "k 2"}, Before: []Row{r1, r2}, After: []Row{r1b, r2}},
			want: []Statement{{
				SQL:  "UPDATE `select` SET `v` = ? WHERE `a``b` = ? AND `k 2` = " + cv,
				Args: []any{"1.5", int64(1), "78"},
				Rows: 1,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pairs, err := tt.rec.Pairs()
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.rec.Compensation(liveTable(), pairs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compensation() =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestCompensationBatches(t *testing.T) {
	var rows []Row
	for i := range 600 {
		rows = append(rows, Row{{"id", Int(int64(i))}})
	}
	rec := Record{Table: "t", Op: OpInsert, PrimaryKey: []string{"id"}, After: rows}
	pairs, _ := rec.Pairs()
	got, err := rec.Compensation(&Table{Name: "t", Columns: []Column{{Name: "id"}}, PrimaryKey: []string{"id"}}, pairs)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range got {
		n += s.Rows
		if int64(len(s.Args)) != s.Rows {
			t.Errorf("statement with %d args for %d rows", len(s.Args), s.Rows)
		}
	}
	if len(got) != 3 || n != 600 {
		t.Errorf("got %d statements for %d rows, want 3 for 600", len(got), n)
	}
}

func TestCompensationSchema(t *testing.T) {
	row := Row{{"id", Int(1)}, {"gone", Int(2)}}
	rec := Record{Table: "t", Op: OpDelete, PrimaryKey: []string{"id"}, Before: []Row{row}}
	pairs, _ := rec.Pairs()
	tests := []struct {
		name  string
		table *Table
		want  error
	}{
		{"nil table", nil, ErrSchema},
		{"other table", &Table{Name: "u", Columns: []Column{{Name: "id"}, {Name: "gone"}}, PrimaryKey: []string{"id"}}, ErrSchema},
		{"column dropped", &Table{Name: "t", Columns: []Column{{Name: "id"}}, PrimaryKey: []string{"id"}}, ErrSchema},
		{"key changed", &Table{Name: "t", Columns: []Column{{Name: "id"}, {Name: "gone"}}, PrimaryKey: []string{"gone"}}, ErrSchema},
		{"key widened", &Table{Name: "t", Columns: []Column{{Name: "id"}, {Name: "gone"}}, PrimaryKey: []string{"id", "gone"}}, ErrSchema},
		{"case of names may differ", &Table{Name: "T", Columns: []Column{{Name: "ID"}, {Name: "Gone"}}, PrimaryKey: []string{"ID"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rec.Compensation(tt.table, pairs)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Compensation() = %v, want %v", err, tt.want)
			}
		})
	}
	bad := &Table{Name: "t", Columns: []Column{{Name: "id", Bind: "? + ?"}, {Name: "gone"}}, PrimaryKey: []string{"id"}}
	if _, err := rec.Compensation(bad, pairs); err == nil {
		t.Error("Compensation with a two-placeholder bind = nil error")
	}
}

func TestQuoteIdent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"t", "`t`"},
		{"a`b", "`a``b`"},
		{"``", "``````"},
		{"a b", "`a b`"},
	}
	for _, tt := range tests {
		if got := QuoteIdent(tt.in); got != tt.want {
			t.Errorf("QuoteIdent(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDeleteLogsSQL(t *testing.T) {
	if got, want := DeleteLogsSQL(2), "DELETE FROM `undo_log` WHERE (`xid` = ? AND `branch_id` = ?) OR (`xid` = ? AND `branch_id` = ?)"; got != want {
		t.Errorf("DeleteLogsSQL(2) = %q, want %q", got, want)
	}
	if got := DeleteLogsSQL(0); got != "" {
		t.Errorf("DeleteLogsSQL(0) = %q, want empty", got)
	}
}
