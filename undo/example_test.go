package undo_test

import (
	"fmt"

	"github.com/xact-io/xact/undo"
)

func Example() {
	// What an UPDATE of one row left behind.
	rec := undo.Record{
		Table: "accounts", Op: undo.OpUpdate, PrimaryKey: []string{"id"},
		Before: []undo.Row{{{Name: "id", Value: undo.Int(7)}, {Name: "balance", Value: undo.Decimal("10.00")}}},
		After:  []undo.Row{{{Name: "id", Value: undo.Int(7)}, {Name: "balance", Value: undo.Decimal("4.50")}}},
	}
	keys, _ := rec.LockKeys()
	fmt.Println(keys)

	// Phase one stores the encoded log; rollback decodes it.
	b, _ := undo.Encode(&undo.Log{Records: []undo.Record{rec}})
	log, _ := undo.Decode(b)
	rec = log.Records[0]

	// The row as it is now: unchanged since the branch, so it is undone.
	current := []undo.Row{{{Name: "id", Value: undo.Int(7)}, {Name: "balance", Value: undo.Decimal("4.50")}}}
	todo, _ := rec.Check(current)
	live := &undo.Table{Name: "accounts", PrimaryKey: []string{"id"}, Columns: []undo.Column{{Name: "id"}, {Name: "balance"}}}
	stmts, _ := rec.Compensation(live, todo)
	for _, s := range stmts {
		fmt.Println(s.SQL, s.Args)
	}
	// Output:
	// [accounts:7]
	// UPDATE `accounts` SET `balance` = ? WHERE `id` = ? [10.00 7]
}
