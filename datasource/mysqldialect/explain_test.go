package mysqldialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/undo"
)

// recorder is a driver connection that records every statement sent
// through it. Tests use it with interpolateParams on, so the dialect never
// takes the prepared-statement path (which would escape the record).
type recorder struct {
	driver.Conn
	t     testing.TB
	stmts []recorded
}

type recorded struct {
	sql  string
	args []any
}

func (r *recorder) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	r.record(q, args)
	return r.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (r *recorder) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	r.record(q, args)
	return r.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (r *recorder) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	r.t.Errorf("recorder: statement prepared, not recorded: %s", q)
	return r.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (r *recorder) record(q string, args []driver.NamedValue) {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.Value
	}
	r.stmts = append(r.stmts, recorded{q, vals})
}

var (
	_ driver.QueryerContext     = (*recorder)(nil)
	_ driver.ExecerContext      = (*recorder)(nil)
	_ driver.ConnPrepareContext = (*recorder)(nil)
)

// keyShape is a table shape for TestKeyStatementsUseIndex: its DDL and
// the values of row i (key columns first, then v and s).
type keyShape struct {
	name string
	ddl  string
	key  []string // the row-key columns
	// other is a unique key besides the row key, for upserts that
	// conflict on either.
	other string
	row   func(i int) []any
}

func keyShapes() []keyShape {
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return []keyShape{
		{
			name: "pk1",
			ddl:  "CREATE TABLE pk1 (id BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL, s VARCHAR(32))",
			key:  []string{"id"},
			row:  func(i int) []any { return []any{int64(i), 0, "s"} },
		},
		{
			// The ledger of issue 9: (xid, side).
			name: "pk2",
			ddl: "CREATE TABLE pk2 (xid VARCHAR(128) NOT NULL, side CHAR(1) NOT NULL, v INT NOT NULL, s VARCHAR(32), " +
				"PRIMARY KEY (xid, side))",
			key: []string{"xid", "side"},
			row: func(i int) []any { return []any{fmt.Sprintf("node:1:r7.%d", i/2), string("DC"[i%2]), 0, "s"} },
		},
		{
			name: "pk3",
			ddl: "CREATE TABLE pk3 (region CHAR(2) CHARACTER SET latin1 NOT NULL, day DATE NOT NULL, seq INT UNSIGNED NOT NULL, " +
				"v INT NOT NULL, s VARCHAR(32), PRIMARY KEY (region, day, seq))",
			key: []string{"region", "day", "seq"},
			row: func(i int) []any {
				return []any{string(rune('a'+i%7)) + "x", day.AddDate(0, 0, i%11).Format("2006-01-02"), uint64(i), 0, "s"}
			},
		},
		{
			// Exact numerics, bytes, fractional times and a binary
			// collation in one key.
			name: "mixed",
			ddl: "CREATE TABLE mixed (amount DECIMAL(12,2) NOT NULL, tag VARBINARY(16) NOT NULL, at DATETIME(6) NOT NULL, " +
				"name VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, v INT NOT NULL, s VARCHAR(32), " +
				"PRIMARY KEY (amount, tag, at, name))",
			key: []string{"amount", "tag", "at", "name"},
			row: func(i int) []any {
				return []any{fmt.Sprintf("%d.%02d", i%13, i%100), []byte{byte(i), byte(i >> 8), 0xff},
					day.Add(time.Duration(i) * 1500 * time.Microsecond).Format("2006-01-02 15:04:05.000000"),
					fmt.Sprintf("Näme-%d", i), 0, "s"}
			},
		},
		{
			// No primary key: the unique NOT NULL key is the row key.
			name: "ukey",
			ddl: "CREATE TABLE ukey (code VARCHAR(20) NOT NULL, n INT NOT NULL, v INT NOT NULL, s VARCHAR(32), " +
				"UNIQUE KEY uk (code, n))",
			key: []string{"code", "n"},
			row: func(i int) []any { return []any{fmt.Sprintf("c%d", i%17), i, 0, "s"} },
		},
		{
			// A primary key and a second unique key: upserts conflict on
			// either.
			name: "twokeys",
			ddl: "CREATE TABLE twokeys (id INT NOT NULL, email VARCHAR(64) NOT NULL, v INT NOT NULL, s VARCHAR(32), " +
				"PRIMARY KEY (id), UNIQUE KEY email (email))",
			key:   []string{"id"},
			other: "email",
			row:   func(i int) []any { return []any{i, fmt.Sprintf("u%d@example.com", i), 0, "s"} },
		},
	}
}

// TestKeyStatementsUseIndex EXPLAINs every statement AT sends for a
// branch on tables of several key shapes — the before images, the after
// images, the rows an upsert may hit, SELECT … FOR UPDATE's key query,
// and at rollback the dirty check and the compensating DELETE, UPDATE and
// INSERT — and fails on a full table or index scan. Under REPEATABLE READ
// a locking scan locks every row and gap it passes: one such statement
// serializes every writer of the table behind a rollback and deadlocks
// two rollbacks with each other.
func TestKeyStatementsUseIndex(t *testing.T) {
	e := newEnv(t, interpolate(true))
	const rows = 2000
	for _, sh := range keyShapes() {
		t.Run(sh.name, func(t *testing.T) {
			e.exec(sh.ddl)
			cols := append(append([]string{}, sh.key...), "v", "s")
			if sh.other != "" {
				cols = []string{sh.key[0], sh.other, "v", "s"}
			}
			insert := func(n int) (string, []any) {
				var b strings.Builder
				var args []any
				fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", sh.name, strings.Join(cols, ", "))
				for i := range n {
					if i > 0 {
						b.WriteString(", ")
					}
					b.WriteString("(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")")
					args = append(args, sh.row(i)...)
				}
				return b.String(), args
			}
			fill, args := insert(rows)
			if _, err := e.db.Exec(fill, args...); err != nil {
				t.Fatalf("fill %s: %v", sh.name, err)
			}
			e.exec("ANALYZE TABLE " + sh.name)

			keyWhere := strings.Join(sh.key, " = ? AND ") + " = ?"
			keyArgs := func(i int) []any { return sh.row(i)[:len(sh.key)] }
			if sh.other != "" {
				keyArgs = func(i int) []any { return sh.row(i)[:1] }
			}
			newRow := func(i int) (string, []any) {
				r := sh.row(rows + i)
				return "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")", r
			}
			ins1, insArgs1 := newRow(1)
			ins2, insArgs2 := newRow(2)
			ins3, insArgs3 := newRow(3)
			existing := sh.row(8)
			list := strings.Join(cols, ", ")
			stmts := []stmt{
				// Integer arithmetic: after image derived; then a string
				// column: after image read by key.
				q("UPDATE "+sh.name+" SET v = v + 1 WHERE "+keyWhere, keyArgs(5)...),
				q("UPDATE "+sh.name+" SET s = CONCAT(s, 'x') WHERE "+keyWhere, keyArgs(6)...),
				// Several rows at once, by a non-key range: the after images
				// of many keys in one query.
				q("UPDATE "+sh.name+" SET s = 'many' WHERE "+keyWhere+" OR "+keyWhere, append(keyArgs(20), keyArgs(21)...)...),
				q("DELETE FROM "+sh.name+" WHERE "+keyWhere, keyArgs(7)...),
				q("INSERT INTO "+sh.name+" ("+list+") VALUES "+ins1+", "+ins2, append(insArgs1, insArgs2...)...),
				// An upsert that updates one row and inserts another.
				q("INSERT INTO "+sh.name+" ("+list+") VALUES (?"+strings.Repeat(", ?", len(cols)-1)+"), "+ins3+
					" ON DUPLICATE KEY UPDATE v = v + 10", append(existing, insArgs3...)...),
				q("SELECT v FROM "+sh.name+" WHERE "+keyWhere+" FOR UPDATE", keyArgs(9)...),
			}
			user := make(map[string]bool)
			for _, s := range stmts {
				user[s.sql] = true
			}

			sum := e.checksum(sh.name)
			rec := &recorder{t: t}
			var log undo.Log
			var keys []string
			err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
				rec.Conn = conn
				for _, s := range stmts {
					p, err := run(ctx, e.d, rec, s.sql, s.args...)
					if err != nil {
						return fmt.Errorf("%s: %w", s.sql, err)
					}
					log.Records = append(log.Records, p.Records()...)
					keys = append(keys, p.LockKeys()...)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("branch: %v", err)
			}
			err = tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
				rec.Conn = conn
				return e.d.Undo(ctx, rec, &log, keys)
			})
			if err != nil {
				t.Fatalf("Undo: %v", err)
			}
			if got := e.checksum(sh.name); got != sum {
				t.Errorf("after rollback %s, want %s", got, sum)
			}

			explained := map[string]int{}
			for _, s := range rec.stmts {
				kind := statementKind(s.sql)
				if kind == "" || user[s.sql] || strings.Contains(s.sql, "information_schema") ||
					strings.Contains(s.sql, "`undo_log`") || strings.Contains(s.sql, "@@") {
					continue
				}
				explained[kind]++
				plan := explain(t, e.db, s)
				for _, p := range plan {
					if p.table == "" || p.table == "NULL" {
						continue
					}
					if p.typ == "ALL" || p.typ == "index" || p.key == "" {
						t.Errorf("%s\nargs %v\nscans %s: type %s, key %q (%s)", s.sql, s.args, p.table, p.typ, p.key, p.extra)
					}
				}
			}
			// The test proves nothing unless each kind of statement was
			// seen: images and dirty checks (SELECT … FOR UPDATE), after
			// images (SELECT), and the compensations.
			for _, kind := range []string{"SELECT FOR UPDATE", "SELECT", "DELETE", "UPDATE"} {
				if explained[kind] == 0 {
					t.Errorf("no %s statement was explained; statements seen: %d", kind, len(rec.stmts))
				}
			}
			t.Logf("explained %v", explained)
		})
	}
}

// statementKind classifies a statement AT sent, "" for ones without a
// plan (INSERT, SET, transaction control).
func statementKind(q string) string {
	up := strings.ToUpper(strings.TrimSpace(q))
	switch {
	case strings.HasPrefix(up, "SELECT") && strings.Contains(up, "FOR UPDATE"):
		return "SELECT FOR UPDATE"
	case strings.HasPrefix(up, "SELECT"):
		return "SELECT"
	case strings.HasPrefix(up, "DELETE"):
		return "DELETE"
	case strings.HasPrefix(up, "UPDATE"):
		return "UPDATE"
	}
	return ""
}

type planRow struct{ table, typ, key, extra string }

// explain runs EXPLAIN for a recorded statement.
func explain(t *testing.T, db *sql.DB, s recorded) []planRow {
	t.Helper()
	rows, err := db.Query("EXPLAIN "+s.sql, s.args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", s.sql, err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []planRow
	for rows.Next() {
		vals := make([]sql.NullString, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var p planRow
		for i, n := range names {
			switch strings.ToLower(n) {
			case "table":
				p.table = vals[i].String
			case "type":
				p.typ = vals[i].String
			case "key":
				p.key = vals[i].String
			case "extra":
				p.extra = vals[i].String
			}
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
