package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// qi quotes a MySQL identifier.
func qi(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// TestQuotingThroughWrapper: a table whose name holds a backtick, a space
// and a reserved word, with columns named select, "a`b c" and from and a
// composite primary key over two of them, written by INSERT, UPDATE,
// DELETE and locked by SELECT … FOR UPDATE in one branch. Rolled back,
// the table is exactly as before; committed, it has the change and no
// undo log is left.
func TestQuotingThroughWrapper(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	const table, cSel, cAB, cFrom = "or`der s", "select", "a`b c", "from"
	tb := qi(table)
	create := fmt.Sprintf("CREATE TABLE %s (%s INT NOT NULL, %s VARCHAR(10) NOT NULL, %s VARCHAR(20) NULL, PRIMARY KEY (%s, %s))",
		tb, qi(cSel), qi(cAB), qi(cFrom), qi(cSel), qi(cAB))
	seedRows := fmt.Sprintf("INSERT INTO %s VALUES (1, 'x', 'one'), (1, 'y', 'one y'), (2, 'x', 'two'), (3, 'z', NULL)", tb)
	steps := []struct {
		sql   string
		args  []any
		query bool
	}{
		{fmt.Sprintf("INSERT INTO %s (%s, %s, %s) VALUES (?, ?, ?)", tb, qi(cSel), qi(cAB), qi(cFrom)), []any{4, "w`v", "four"}, false},
		{fmt.Sprintf("UPDATE %s SET %s = ? WHERE %s = ? AND %s = ?", tb, qi(cFrom), qi(cSel), qi(cAB)), []any{"uno", 1, "x"}, false},
		{fmt.Sprintf("UPDATE %s AS `o r` SET `o r`.%s = CONCAT(COALESCE(`o r`.%s, ''), ?) WHERE `o r`.%s = ?", tb, qi(cFrom), qi(cFrom), qi(cAB)), []any{"!", "z"}, false},
		{fmt.Sprintf("DELETE FROM %s WHERE %s = ?", tb, qi(cSel)), []any{2}, false},
		{fmt.Sprintf("SELECT %s FROM %s WHERE %s = ? FOR UPDATE", qi(cFrom), tb, qi(cSel)), []any{1}, true},
	}
	for _, interp := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpolateParams=%v", interp), func(t *testing.T) {
			d := e.newDB(t, []dbOption{interpolate(interp)})
			d.exec(create, seedRows)
			dump := func() [][]string { return quotedDump(t, d.raw, tb) }
			seeded := dump()
			for _, fail := range []bool{true, false} {
				var xid string
				err := e.tm.Do(context.Background(), tm.Options{Name: "quoting", Timeout: 10 * time.Second}, func(ctx context.Context) error {
					xid = xidOf(t, ctx)
					tx, err := d.db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					for _, s := range steps {
						if s.query {
							err = drain(tx.QueryContext(ctx, s.sql, s.args...))
						} else {
							_, err = tx.ExecContext(ctx, s.sql, s.args...)
						}
						if err != nil {
							return fmt.Errorf("%s: %w", s.sql, err)
						}
					}
					if err := tx.Commit(); err != nil {
						return err
					}
					if fail {
						return errRollback
					}
					return nil
				})
				want := xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
				if fail {
					want = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED
					if !errors.Is(err, errRollback) {
						t.Fatalf("Do = %v", err)
					}
				} else if err != nil {
					t.Fatalf("Do = %v", err)
				}
				if g := e.settled(xid); g.GetStatus() != want || g.GetParked() {
					t.Fatalf("global %v (parked %v, %q), want %v", g.GetStatus(), g.GetParked(), g.GetReason(), want)
				}
				got := dump()
				if fail {
					if !reflect.DeepEqual(got, seeded) {
						t.Errorf("after rollback:\n%v\nwant\n%v", got, seeded)
					}
				} else {
					wantRows := [][]string{{"1", "x", "uno"}, {"1", "y", "one y"}, {"3", "z", "!"}, {"4", "w`v", "four"}}
					if !reflect.DeepEqual(got, wantRows) {
						t.Errorf("after commit:\n%v\nwant\n%v", got, wantRows)
					}
				}
				eventually(t, func() error {
					if n, m := d.undoLogs(); n != 0 || m != 0 {
						return fmt.Errorf("undo_log has %d logs, %d markers, want none", n, m)
					}
					return nil
				})
			}
		})
	}
}

// quotedDump returns every row of the quoted table tb, sorted by its
// first two columns, NULL as "NULL".
func quotedDump(t *testing.T, db *sql.DB, tb string) [][]string {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + tb + " ORDER BY 1, 2")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
