package datasource

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/xact-io/xact/tm"
)

// comCounters reads the session's statement counters (Com_*) on c, outside
// any global scope so that the read goes to the database untouched.
func comCounters(t *testing.T, c *sql.Conn) map[string]int64 {
	t.Helper()
	rows, err := c.QueryContext(context.Background(), "SHOW SESSION STATUS LIKE 'Com\\_%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusedBeforeRunning: a statement AT mode cannot undo is refused
// before it reaches the database. On one pinned connection, the session's
// counter of that statement kind does not move when it is refused inside
// a branch (in a transaction, prepared in a transaction, on its own), and
// moves by one when the same session runs it outside any global
// transaction (so the counters are read where the statement would run).
// The table a refused CREATE TABLE names does not exist.
func TestRefusedBeforeRunning(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(2)
	d.exec("CREATE TABLE nopk (a INT, b INT)", "INSERT INTO nopk VALUES (1, 1)")
	tests := []struct {
		name    string
		sql     string
		counter string
		control string // runs on the same session outside global work; moves counter by one
	}{
		{"replace", "REPLACE INTO account VALUES (1, 5, NULL)", "Com_replace", ""},
		{"insert select without keys", "INSERT INTO nopk (a, b) SELECT 1, 2", "Com_insert_select", ""},
		{"update of a table without primary key", "UPDATE nopk SET b = 2", "Com_update", ""},
		{"create table", "CREATE TABLE made_in_branch (id INT PRIMARY KEY)", "Com_create_table", "CREATE TABLE IF NOT EXISTS account (id INT PRIMARY KEY)"},
	}
	watched := []string{"Com_replace", "Com_insert_select", "Com_update", "Com_create_table", "Com_insert", "Com_delete"}
	accounts, nopk := d.dump("account"), d.dump("nopk")
	for _, tt := range tests {
		for _, path := range []string{"tx", "tx-prepared", "autocommit"} {
			t.Run(tt.name+"/"+path, func(t *testing.T) {
				var stmtErr error
				err := e.tm.Do(context.Background(), tm.Options{Name: "refuse-before", Timeout: 10 * time.Second}, func(ctx context.Context) error {
					c, err := d.db.Conn(ctx)
					if err != nil {
						return err
					}
					defer c.Close()
					before := comCounters(t, c)
					stmtErr = refusedOn(ctx, c, path, tt.sql)
					after := comCounters(t, c)
					for _, k := range watched {
						if after[k] != before[k] {
							t.Errorf("%s moved from %d to %d: the refused statement reached the database", k, before[k], after[k])
						}
					}
					// The same session, outside global work, counts the
					// statement.
					control := tt.control
					if control == "" {
						control = tt.sql
					}
					ltx, err := c.BeginTx(context.Background(), nil)
					if err != nil {
						return err
					}
					if _, err := ltx.ExecContext(context.Background(), control); err != nil {
						t.Errorf("control %s: %v", control, err)
					}
					if err := ltx.Rollback(); err != nil {
						return err
					}
					if got := comCounters(t, c)[tt.counter]; got != after[tt.counter]+1 {
						t.Errorf("%s after running %q outside global work = %d, want %d", tt.counter, control, got, after[tt.counter]+1)
					}
					return stmtErr
				})
				if !errors.Is(stmtErr, ErrUnsupported) {
					t.Fatalf("%s = %v, want %v", tt.sql, stmtErr, ErrUnsupported)
				}
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("Do = %v, want %v", err, ErrUnsupported)
				}
				var n int
				if err := d.raw.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'made_in_branch'").Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Error("the refused CREATE TABLE created its table")
				}
				if got := d.dump("account"); !reflect.DeepEqual(got, accounts) {
					t.Errorf("account = %v, want %v", got, accounts)
				}
				if got := d.dump("nopk"); !reflect.DeepEqual(got, nopk) {
					t.Errorf("nopk = %v, want %v", got, nopk)
				}
				if n, m := d.undoLogs(); n != 0 || m != 0 {
					t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
				}
			})
		}
	}
}

// refusedOn runs q in the global scope of ctx on the pinned connection c,
// by path, and returns the statement's error (nil if it ran).
func refusedOn(ctx context.Context, c *sql.Conn, path, q string) error {
	if path == "autocommit" {
		_, err := c.ExecContext(ctx, q)
		return err
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if path == "tx-prepared" {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		_, err = st.ExecContext(ctx)
		return err
	}
	_, err = tx.ExecContext(ctx, q)
	return err
}
