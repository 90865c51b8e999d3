package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/xact-io/xact/tm"
)

// schema is the statement matrix's tables; reset empties and seeds them
// (TRUNCATE also resets AUTO_INCREMENT, so generated keys repeat).
var schema = []string{
	"CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(32) NOT NULL, n INT NULL, UNIQUE KEY uv (v))",
	"CREATE TABLE ai (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(32) NOT NULL, at DATETIME(3) NULL)",
	"CREATE TABLE cp (a INT NOT NULL, b VARCHAR(8) NOT NULL, qty DECIMAL(10,2) NOT NULL, PRIMARY KEY (a, b))",
	"CREATE TABLE child (id BIGINT PRIMARY KEY, t_id BIGINT NOT NULL, x INT NOT NULL)",
}

var seed = []string{
	"TRUNCATE t", "TRUNCATE ai", "TRUNCATE cp", "TRUNCATE child",
	"INSERT INTO t VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', NULL)",
	"INSERT INTO ai (v, at) VALUES ('a', '2024-02-29 12:00:00.125'), ('b', NULL)",
	"INSERT INTO cp VALUES (1, 'x', 1.50), (1, 'y', 2.25), (2, 'x', 3.00)",
	"INSERT INTO child VALUES (1, 1, 5), (2, 2, 6), (3, 1, 7)",
}

var tables = []string{"t", "ai", "cp", "child"}

// statementCases are the statement kinds the dialect supports, each with
// arguments. query marks statements that return rows.
var statementCases = []struct {
	name  string
	sql   string
	args  []any
	query bool
}{
	{"insert", "INSERT INTO t (id, v, n) VALUES (?, ?, ?)", []any{10, "ten", 100}, false},
	{"insert multi-row", "INSERT INTO t (id, v, n) VALUES (?, ?, ?), (?, ?, NULL)", []any{10, "ten", 100, 11, "eleven"}, false},
	{"insert auto-increment", "INSERT INTO ai (v, at) VALUES (?, ?), (?, NULL)", []any{"c", "2025-01-01 00:00:00.5", "d"}, false},
	{"insert composite key", "INSERT INTO cp (a, b, qty) VALUES (?, ?, ?)", []any{3, "z", "9.99"}, false},
	{"insert select", "INSERT INTO t (id, v, n) SELECT id + 100, CONCAT(v, ?), n FROM t WHERE id < ?", []any{"+", 3}, false},
	{"insert ignore", "INSERT IGNORE INTO t (id, v, n) VALUES (?, ?, ?), (?, ?, ?)", []any{20, "one", 1, 21, "new", 2}, false},
	{"upsert updates", "INSERT INTO t (id, v, n) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE n = COALESCE(n, 0) + VALUES(n)", []any{1, "one", 5}, false},
	{"upsert inserts", "INSERT INTO t (id, v, n) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE n = VALUES(n)", []any{30, "thirty", 3}, false},
	{"update", "UPDATE t SET n = n + ? WHERE id = ?", []any{1, 2}, false},
	{"update to null", "UPDATE t SET n = NULL, v = ? WHERE id = ?", []any{"uno", 1}, false},
	{"update many", "UPDATE t SET v = CONCAT(v, ?) WHERE id IN (?, ?)", []any{"!", 1, 3}, false},
	{"update order limit", "UPDATE t SET n = ? ORDER BY id DESC LIMIT 2", []any{7}, false},
	{"update composite key", "UPDATE cp SET qty = qty * ? WHERE a = ?", []any{"2", 1}, false},
	{"update multi-table", "UPDATE t JOIN child ON child.t_id = t.id SET t.n = COALESCE(t.n, 0) + child.x, child.x = child.x + 1 WHERE t.id = ?", []any{1}, false},
	{"update temporal", "UPDATE ai SET at = ? WHERE id = ?", []any{"1999-12-31 23:59:59.999", 1}, false},
	{"update nothing", "UPDATE t SET n = 1 WHERE id = ?", []any{999}, false},
	{"delete", "DELETE FROM t WHERE id = ?", []any{2}, false},
	{"delete composite key", "DELETE FROM cp WHERE a = ? AND b = ?", []any{1, "y"}, false},
	{"delete multi-table", "DELETE child FROM child JOIN t ON t.id = child.t_id WHERE t.v = ?", []any{"one"}, false},
	{"delete all", "DELETE FROM child", nil, false},
	{"delete order limit", "DELETE FROM t WHERE id > ? ORDER BY id DESC LIMIT 2", []any{0}, false},
	{"insert returning", "INSERT INTO ai (v) VALUES (?) RETURNING id, v", []any{"r"}, true},
	{"delete returning", "DELETE FROM t WHERE id = ? RETURNING id, v", []any{3}, true},
	{"select for update", "SELECT id, v FROM t WHERE id = ? FOR UPDATE", []any{1}, true},
}

// TestStatements runs every supported statement kind through every path
// (in a transaction, as a prepared statement in a transaction, and
// directly on the DB as its own branch) with both interpolateParams
// settings. After a commit the change is there and the undo logs are
// gone; after a rollback every table is exactly as it was.
func TestStatements(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	for _, interp := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpolateParams=%v", interp), func(t *testing.T) {
			d := e.newDB(t, []dbOption{interpolate(interp)})
			d.exec(schema...)
			for _, tc := range statementCases {
				t.Run(tc.name, func(t *testing.T) {
					d.exec(seed...)
					seeded := d.dumpAll()
					// The reference: the statement in a plain local
					// transaction.
					runPlain(t, d.raw, tc.sql, tc.args, tc.query)
					want := d.dumpAll()

					for _, path := range []string{"tx", "prepared", "autocommit"} {
						for _, fail := range []bool{false, true} {
							name := path + "/commit"
							if fail {
								name = path + "/rollback"
							}
							t.Run(name, func(t *testing.T) {
								d.exec(seed...)
								err := e.tm.Do(context.Background(), tm.Options{Name: tc.name, Timeout: 10 * time.Second}, func(ctx context.Context) error {
									if err := runGlobal(ctx, d.db, path, tc.sql, tc.args, tc.query); err != nil {
										return err
									}
									if fail {
										return errRollback
									}
									return nil
								})
								if fail && !errors.Is(err, errRollback) || !fail && err != nil {
									t.Fatalf("Do = %v", err)
								}
								got := d.dumpAll()
								wantNow := want
								if fail {
									wantNow = seeded
								}
								if !reflect.DeepEqual(got, wantNow) {
									t.Errorf("tables =\n%v\nwant\n%v", got, wantNow)
								}
								if n, m := d.undoLogs(); n != 0 || m != 0 {
									t.Errorf("undo_log has %d logs and %d markers, want none", n, m)
								}
							})
						}
					}
				})
			}
		})
	}
}

func (d *database) dumpAll() map[string][][]string {
	out := make(map[string][][]string, len(tables))
	for _, tb := range tables {
		out[tb] = d.dump(tb)
	}
	return out
}

func runPlain(t *testing.T, db *sql.DB, q string, args []any, query bool) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if query {
		rows, err := tx.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
		}
		rows.Close()
	} else if _, err := tx.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// runGlobal runs one statement by path: "tx" (ExecContext/QueryContext
// in a transaction), "prepared" (PrepareContext in a transaction), or
// "autocommit" (directly on the DB).
func runGlobal(ctx context.Context, db *sql.DB, path, q string, args []any, query bool) error {
	type execQuerier interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}
	var eq execQuerier = db
	var tx *sql.Tx
	if path != "autocommit" {
		var err error
		if tx, err = db.BeginTx(ctx, nil); err != nil {
			return err
		}
		defer tx.Rollback()
		eq = tx
	}
	run := func() error {
		if path == "prepared" {
			st, err := tx.PrepareContext(ctx, q)
			if err != nil {
				return err
			}
			defer st.Close()
			if query {
				return drain(st.QueryContext(ctx, args...))
			}
			_, err = st.ExecContext(ctx, args...)
			return err
		}
		if query {
			return drain(eq.QueryContext(ctx, q, args...))
		}
		_, err := eq.ExecContext(ctx, q, args...)
		return err
	}
	if err := run(); err != nil {
		return err
	}
	if tx != nil {
		return tx.Commit()
	}
	return nil
}

func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// TestBranchOfManyStatements: one branch that inserts, updates the row it
// inserted, updates a row twice and deletes another rolls back to exactly
// the state before it (records are undone in reverse).
func TestBranchOfManyStatements(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.exec(schema...)
	d.exec(seed...)
	seeded := d.dumpAll()
	steps := []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO t (id, v, n) VALUES (?, ?, ?)", []any{10, "ten", 1}},
		{"UPDATE t SET n = n + 1, v = 'TEN' WHERE id = ?", []any{10}},
		{"UPDATE t SET n = COALESCE(n, 0) + 1 WHERE id IN (?, ?)", []any{2, 3}},
		{"UPDATE t SET n = n * 2 WHERE id = ?", []any{2}},
		{"DELETE FROM t WHERE id = ?", []any{1}},
		{"INSERT INTO t (id, v, n) VALUES (?, ?, ?)", []any{1, "one again", 0}},
		{"INSERT INTO ai (v) VALUES (?), (?)", []any{"x", "y"}},
		{"DELETE FROM ai WHERE v = ?", []any{"x"}},
		{"UPDATE cp SET qty = qty + 1", nil},
		{"DELETE FROM child WHERE t_id = ?", []any{1}},
	}
	for _, fail := range []bool{true, false} {
		err := e.tm.Do(context.Background(), tm.Options{Name: "many", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			tx, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			for _, s := range steps {
				if _, err := tx.ExecContext(ctx, s.sql, s.args...); err != nil {
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
		if fail {
			if !errors.Is(err, errRollback) {
				t.Fatalf("Do = %v", err)
			}
			if got := d.dumpAll(); !reflect.DeepEqual(got, seeded) {
				t.Errorf("after rollback =\n%v\nwant\n%v", got, seeded)
			}
		} else {
			if err != nil {
				t.Fatalf("Do = %v", err)
			}
			if got := d.dump("t"); fmt.Sprint(got) != "[[1 one again 0] [2 two 42] [3 three 1] [10 TEN 2]]" {
				t.Errorf("after commit t = %v", got)
			}
		}
		if n, m := d.undoLogs(); n != 0 || m != 0 {
			t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
		}
	}
}
