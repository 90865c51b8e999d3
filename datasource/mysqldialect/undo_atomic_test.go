package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"testing"

	"github.com/xact-io/xact/undo"
)

// TestUndoDirtyAfterCleanReplay: the branch's clean record comes last, so
// the reverse replay restores it first and only then meets the dirty row.
// Inside the compensating transaction the clean row is seen restored; the
// transaction is rolled back on the error and every table is exactly as
// before the rollback attempt: the compensation is one local transaction,
// not a statement-by-statement commit.
func TestUndoDirtyAfterCleanReplay(t *testing.T) {
	tests := []struct {
		name   string
		stmt   stmt
		meddle string
		key    string
	}{
		{"updated row changed again", q("UPDATE acct SET bal = 0 WHERE id = 1"), "UPDATE acct SET bal = 5 WHERE id = 1", "acct:1"},
		{"updated row deleted", q("UPDATE acct SET bal = 0 WHERE id = 1"), "DELETE FROM acct WHERE id = 1", "acct:1"},
		{"inserted row changed", q("INSERT INTO acct (id, name, bal) VALUES (9, 'z', 1)"), "UPDATE acct SET name = 'Z' WHERE id = 9", "acct:9"},
		{"deleted key reused", q("DELETE FROM acct WHERE id = 2"), "INSERT INTO acct VALUES (2, 'bob2', 1)", "acct:2"},
	}
	const items = "SELECT CONCAT_WS(':', ord, line, qty) FROM item ORDER BY ord, line"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.exec(strings.Split(baseSchema, ";\n")...)
			itemsBefore := itemRows(t, e, items)
			// The dirty statement first, the clean one last: replayed in
			// reverse, the clean record is compensated first.
			enc, keys, err := e.branch(e.db, tt.stmt, q("UPDATE item SET qty = 0"))
			if err != nil {
				t.Fatal(err)
			}
			e.exec(tt.meddle)
			sum, dump := e.checksum("acct", "item"), strings.Join(e.dump("acct"), ",")+"|"+strings.Join(e.dump("item"), ",")
			itemsBranch := itemRows(t, e, items)

			log, err := undo.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			var seenInside string
			err = tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
				uerr := e.d.Undo(ctx, conn, log, keys)
				rows, err := queryRows(ctx, conn, items, nil)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range rows {
					got = append(got, str(r[0]))
				}
				seenInside = strings.Join(got, " ")
				return uerr
			})
			var de *undo.DirtyError
			if !errors.As(err, &de) || !errors.Is(err, undo.ErrDirty) {
				t.Fatalf("rollback = %v, want an *undo.DirtyError", err)
			}
			if de.Key != tt.key {
				t.Errorf("dirty key = %q, want %q", de.Key, tt.key)
			}
			if !strings.Contains(err.Error(), "record 0 ") {
				t.Errorf("rollback failed at %v, want at record 0 (the dirty one, after record 1)", err)
			}
			// The clean record was replayed in the transaction before the
			// dirty one failed...
			if seenInside != itemsBefore {
				t.Errorf("items inside the failed compensation = %q, want %q (record 1 replayed first)", seenInside, itemsBefore)
			}
			// ... and the failed transaction took it back.
			if got := itemRows(t, e, items); got != itemsBranch {
				t.Errorf("items after the failed rollback = %q, want %q", got, itemsBranch)
			}
			if got := e.checksum("acct", "item"); got != sum {
				t.Errorf("a failed rollback changed data: %s, want %s", got, sum)
			}
			if got := strings.Join(e.dump("acct"), ",") + "|" + strings.Join(e.dump("item"), ","); got != dump {
				t.Errorf("tables after the failed rollback =\n%s\nwant\n%s", got, dump)
			}
		})
	}
}

func itemRows(t *testing.T, e *env, q string) string {
	t.Helper()
	rows, err := e.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}
