package mysqldialect

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/undo"
)

const baseSchema = `
CREATE TABLE acct (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL, bal DECIMAL(10,2) NOT NULL, UNIQUE KEY uk_name (name));
INSERT INTO acct VALUES (1, 'ann', 10.00), (2, 'bob', 20.00), (3, 'cy', 30.00);
CREATE TABLE item (ord INT, line INT, qty INT, PRIMARY KEY (ord, line));
INSERT INTO item VALUES (1, 1, 5), (1, 2, 6), (2, 1, 7);
CREATE TABLE ` + "`select` (`a``b c` INT PRIMARY KEY, `from` VARCHAR(10))" + `;
INSERT INTO ` + "`select` VALUES (1, 'x'), (2, 'y')"

func formatRows(rows []undo.Row) string {
	var parts []string
	for _, r := range rows {
		var vals []string
		for _, f := range r {
			vals = append(vals, f.Value.String())
		}
		parts = append(parts, "("+strings.Join(vals, " ")+")")
	}
	return strings.Join(parts, "")
}

func formatRecords(recs []undo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprintf("%s %s %s->%s", r.Op, r.Table, formatRows(r.Before), formatRows(r.After)))
	}
	return out
}

func TestStatements(t *testing.T) {
	tests := []struct {
		name    string
		setup   []string
		sql     string
		args    []any
		kind    Kind
		records []string
		keys    []string
	}{
		{
			name:    "update with where, order by, limit and placeholders everywhere",
			sql:     "UPDATE acct SET bal = bal + ?, name = CONCAT(name, ?) WHERE bal BETWEEN ? AND ? ORDER BY bal DESC, id LIMIT ?",
			args:    []any{1, "!", 15, 100, 1},
			kind:    KindUpdate,
			records: []string{`update acct (3 "cy" 30.00d)->(3 "cy!" 31.00d)`},
			keys:    []string{"acct:3"},
		},
		{
			name:    "update matching nothing",
			sql:     "UPDATE acct SET bal = 0 WHERE id = ?",
			args:    []any{99},
			kind:    KindUpdate,
			records: nil,
			keys:    nil,
		},
		{
			name:    "update changing nothing keeps the lock",
			sql:     "UPDATE acct SET bal = bal WHERE id IN (?, ?)",
			args:    []any{1, 2},
			kind:    KindUpdate,
			records: nil,
			keys:    []string{"acct:1", "acct:2"},
		},
		{
			name:    "update with literals only",
			sql:     "UPDATE acct SET name = 'o''neil\\\\x' WHERE name = 'ann'",
			kind:    KindUpdate,
			records: []string{`update acct (1 "ann" 10.00d)->(1 "o'neil\\x" 10.00d)`},
			keys:    []string{"acct:1"},
		},
		{
			name:    "update composite key",
			sql:     "UPDATE item SET qty = qty * 2 WHERE ord = ?",
			args:    []any{1},
			kind:    KindUpdate,
			records: []string{`update item (1 1 5)(1 2 6)->(1 1 10)(1 2 12)`},
			keys:    []string{"item:1,1", "item:1,2"},
		},
		{
			name:    "delete with order by and limit",
			sql:     "DELETE FROM acct WHERE bal > ? ORDER BY bal, acct.id LIMIT 1",
			args:    []any{10},
			kind:    KindDelete,
			records: []string{`delete acct (2 "bob" 20.00d)->`},
			keys:    []string{"acct:2"},
		},

		{
			name:    "insert generated keys",
			sql:     "INSERT INTO acct (name, bal) VALUES (?, ?), (?, ?)",
			args:    []any{"dee", "1.5", "eve", 2},
			kind:    KindInsert,
			records: []string{`insert acct ->(4 "dee" 1.50d)(5 "eve" 2.00d)`},
			keys:    []string{"acct:4", "acct:5"},
		},
		{
			name:    "insert generated keys with step 3",
			setup:   []string{"SET SESSION auto_increment_increment = 3"},
			sql:     "INSERT INTO acct (id, name, bal) VALUES (NULL, ?, 1), (0, ?, 2), (DEFAULT, 'z', 3)",
			args:    []any{"dee", "eve"},
			kind:    KindInsert,
			records: []string{`insert acct ->(4 "dee" 1.00d)(7 "eve" 2.00d)(10 "z" 3.00d)`},
			keys:    []string{"acct:4", "acct:7", "acct:10"},
		},
		{
			name:    "insert explicit keys, no column list",
			sql:     "INSERT INTO acct VALUES (?, ?, ?), (-7, 'neg', 0)",
			args:    []any{100, "hund", "9.99"},
			kind:    KindInsert,
			records: []string{`insert acct ->(-7 "neg" 0.00d)(100 "hund" 9.99d)`},
			keys:    []string{"acct:-7", "acct:100"},
		},
		{
			name:    "insert set",
			sql:     "INSERT INTO item SET ord = ?, line = 9, qty = ?",
			args:    []any{5, 1},
			kind:    KindInsert,
			records: []string{`insert item ->(5 9 1)`},
			keys:    []string{"item:5,9"},
		},
		{
			name:    "insert ignore skips an existing key",
			sql:     "INSERT IGNORE INTO item (ord, line, qty) VALUES (1, 1, 99), (3, 1, 1)",
			kind:    KindInsert,
			records: []string{`insert item ->(3 1 1)`},
			keys:    []string{"item:1,1", "item:3,1"},
		},
		{
			name: "upsert by primary key, by unique key, and new",
			sql:  "INSERT INTO acct (id, name, bal) VALUES (1, 'x', 1), (50, 'bob', 2), (60, 'new', 3) ON DUPLICATE KEY UPDATE bal = bal + VALUES(bal)",
			kind: KindInsert,
			records: []string{
				`update acct (1 "ann" 10.00d)(2 "bob" 20.00d)->(1 "ann" 11.00d)(2 "bob" 22.00d)`,
				`insert acct ->(60 "new" 3.00d)`,
			},
			keys: []string{"acct:1", "acct:2", "acct:60"},
		},
		{
			name: "upsert with generated keys found by unique key",
			sql:  "INSERT INTO acct (name, bal) VALUES (?, 5), (?, 6) ON DUPLICATE KEY UPDATE bal = 0",
			args: []any{"cy", "fay"},
			kind: KindInsert,
			records: []string{
				`update acct (3 "cy" 30.00d)->(3 "cy" 0.00d)`,
				`insert acct ->(4 "fay" 6.00d)`,
			},
			keys: []string{"acct:3", "acct:4"},
		},
		{
			name:    "upsert where a later row meets an earlier one",
			sql:     "INSERT INTO acct (id, name, bal) VALUES (70, 'p', 1), (71, 'p', 2) ON DUPLICATE KEY UPDATE bal = VALUES(bal)",
			kind:    KindInsert,
			records: []string{`insert acct ->(70 "p" 2.00d)`},
			keys:    []string{"acct:70"},
		},
		{
			name:    "insert generated keys into a composite key",
			setup:   []string{"CREATE TABLE ten (tenant INT, id INT AUTO_INCREMENT, v INT, PRIMARY KEY (tenant, id), KEY (id))"},
			sql:     "INSERT INTO ten (tenant, v) VALUES (?, 1), (?, 2)",
			args:    []any{5, 6},
			kind:    KindInsert,
			records: []string{`insert ten ->(5 1 1)(6 2 2)`},
			keys:    []string{"ten:5,1", "ten:6,2"},
		},
		{
			name:    "multi-table update",
			sql:     "UPDATE acct a JOIN item i ON i.ord = a.id SET a.bal = a.bal - i.qty, i.qty = 0 WHERE a.id = ?",
			args:    []any{2},
			kind:    KindUpdate,
			records: []string{`update acct (2 "bob" 20.00d)->(2 "bob" 13.00d)`, `update item (2 1 7)->(2 1 0)`},
			keys:    []string{"acct:2", "item:2,1"},
		},
		{
			name:    "multi-table update reading a view",
			setup:   []string{"CREATE OR REPLACE VIEW v_item AS SELECT ord, SUM(qty) AS total FROM item GROUP BY ord"},
			sql:     "UPDATE acct a JOIN v_item v ON v.ord = a.id SET a.bal = v.total WHERE a.id = ?",
			args:    []any{1},
			kind:    KindUpdate,
			records: []string{`update acct (1 "ann" 10.00d)->(1 "ann" 11.00d)`},
			keys:    []string{"acct:1"},
		},
		{
			name:    "multi-table delete",
			sql:     "DELETE a, i FROM acct AS a LEFT JOIN item AS i ON i.ord = a.id WHERE a.id >= ?",
			args:    []any{2},
			kind:    KindDelete,
			records: []string{`delete acct (2 "bob" 20.00d)(3 "cy" 30.00d)->`, `delete item (2 1 7)->`},
			keys:    []string{"acct:2", "item:2,1", "acct:3"},
		},
		{
			name:    "multi-table delete using",
			sql:     "DELETE FROM i USING item AS i JOIN acct AS a ON a.id = i.ord WHERE a.name = ?",
			args:    []any{"ann"},
			kind:    KindDelete,
			records: []string{`delete item (1 1 5)(1 2 6)->`},
			keys:    []string{"item:1,1", "item:1,2"},
		},
		{
			name:    "insert select with keys",
			sql:     "INSERT INTO item (qty, ord, line) SELECT bal, id + ?, 1 FROM acct WHERE bal > ? ORDER BY id",
			args:    []any{10, 15},
			kind:    KindInsert,
			records: []string{`insert item ->(12 1 20)(13 1 30)`},
			keys:    []string{"item:12,1", "item:13,1"},
		},
		{
			name: "insert select of nothing",
			sql:  "INSERT INTO item (ord, line, qty) SELECT id, 1, 1 FROM acct WHERE id < 0",
			kind: KindInsert,
		},
		{
			name: "select for update",
			sql:  "SELECT name FROM acct WHERE bal > ? ORDER BY id LIMIT ? OFFSET ? FOR UPDATE",
			args: []any{5, 2, 1},
			kind: KindSelectForUpdate,
			keys: []string{"acct:2", "acct:3"},
		},
		{
			name: "select for update over a join and an aggregate",
			sql:  "SELECT a.name, SUM(i.qty) FROM acct a LEFT JOIN item i ON i.ord = a.id GROUP BY a.name LIMIT 1 FOR UPDATE",
			kind: KindSelectForUpdate,
			keys: []string{"acct:1", "item:1,1", "item:1,2", "acct:2", "item:2,1", "acct:3"},
		},

		{
			name: "plain select",
			sql:  "SELECT * FROM acct WHERE id = ?",
			args: []any{1},
			kind: KindOther,
		},
		{
			name:    "delete returning",
			sql:     "DELETE FROM acct WHERE id = ? RETURNING id, name",
			args:    []any{3},
			kind:    KindDelete,
			records: []string{`delete acct (3 "cy" 30.00d)->`},
			keys:    []string{"acct:3"},
		},
		{
			name:    "delete returning with a placeholder in the list",
			sql:     "DELETE FROM acct WHERE id = ? RETURNING id * ?",
			args:    []any{2, 10},
			kind:    KindDelete,
			records: []string{`delete acct (2 "bob" 20.00d)->`},
			keys:    []string{"acct:2"},
		},
		{
			name:    "insert returning with generated keys",
			sql:     "INSERT INTO acct (name, bal) VALUES ('r1', 1), ('r2', 2) RETURNING id",
			kind:    KindInsert,
			records: []string{`insert acct ->(4 "r1" 1.00d)(5 "r2" 2.00d)`},
			keys:    []string{"acct:4", "acct:5"},
		},
		{
			name:    "identifiers that need quoting",
			sql:     "UPDATE `select` SET `from` = ? WHERE `a``b c` = ?",
			args:    []any{"z", 2},
			kind:    KindUpdate,
			records: []string{`update select (2 "y")->(2 "z")`},
			keys:    []string{"select:2"},
		},
	}
	for _, ip := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("interpolate=%v/%s", ip, tt.name), func(t *testing.T) {
				e := newEnv(t, interpolate(ip))
				e.exec(strings.Split(baseSchema, ";\n")...)
				tables := []string{"acct", "item", "select"}
				sum0 := e.checksum(tables...)
				var log undo.Log
				var keys []string
				err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
					for _, s := range tt.setup {
						if _, err := execute(ctx, conn, s, nil); err != nil {
							return err
						}
					}
					p, err := run(ctx, e.d, conn, tt.sql, tt.args...)
					if err != nil {
						return err
					}
					if got := p.Kind(); got != tt.kind {
						t.Errorf("Kind() = %v, want %v", got, tt.kind)
					}
					log.Records, keys = p.Records(), p.LockKeys()
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := formatRecords(log.Records); !slices.Equal(got, tt.records) {
					t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.records, "\n"))
				}
				if !slices.Equal(keys, tt.keys) {
					t.Errorf("lock keys = %q, want %q", keys, tt.keys)
				}
				enc, err := undo.Encode(&log)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.rollback(e.db, enc, keys); err != nil {
					t.Fatalf("rollback: %v", err)
				}
				if got := e.checksum(tables...); got != sum0 {
					t.Errorf("after rollback: %s, want %s", got, sum0)
				}
			})
		}
	}
}

// TestStringKeys: character and binary primary keys are matched through
// their bind expressions (charset, collation) in after images and at
// rollback; an upsert finds a row whose key differs only in case.
func TestStringKeys(t *testing.T) {
	for _, ip := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpolate=%v", ip), func(t *testing.T) {
			e := newEnv(t, interpolate(ip))
			e.exec(
				"CREATE TABLE sk (k VARCHAR(20) COLLATE utf8mb4_unicode_ci PRIMARY KEY, v INT)",
				"INSERT INTO sk VALUES ('Äpfel', 1), ('b 😀', 2)",
				"CREATE TABLE lk (k VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_german1_ci PRIMARY KEY, v INT)",
				"INSERT INTO lk VALUES ('é', 1), ('x', 2)",
				"CREATE TABLE bk (k VARBINARY(16) PRIMARY KEY, v INT)",
				"INSERT INTO bk VALUES (x'00ff10', 1)",
			)
			tables := []string{"sk", "lk", "bk"}
			sum0 := e.checksum(tables...)
			var recs []undo.Record
			var keys []string
			err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
				for _, s := range []stmt{
					q("UPDATE sk SET v = v + 1"),
					q("UPDATE lk SET v = 9 WHERE k = ?", "é"),
					q("DELETE FROM lk WHERE k = 'x'"),
					q("UPDATE bk SET v = 5"),
					q("INSERT INTO sk VALUES (?, 7), ('neu', 8) ON DUPLICATE KEY UPDATE v = VALUES(v)", "äpfel"),
				} {
					p, err := run(ctx, e.d, conn, s.sql, s.args...)
					if err != nil {
						return fmt.Errorf("%s: %w", s.sql, err)
					}
					recs = append(recs, p.Records()...)
					keys = append(keys, p.LockKeys()...)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				`update sk ("Äpfel" 1)("b 😀" 2)->("Äpfel" 2)("b 😀" 3)`,
				`update lk ("\xe9" 1)->("\xe9" 9)`,
				`delete lk ("x" 2)->`,
				`update bk (b"\x00\xff\x10" 1)->(b"\x00\xff\x10" 5)`,
				`update sk ("Äpfel" 2)->("Äpfel" 7)`,
				`insert sk ->("neu" 8)`,
			}
			if got := formatRecords(recs); !slices.Equal(got, want) {
				t.Errorf("records =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			wantKeys := []string{"sk:%C3%84pfel", "sk:b%20%F0%9F%98%80", "lk:%E9", "lk:x", "bk:%00%FF%10", "sk:%C3%84pfel", "sk:neu"}
			if !slices.Equal(keys, wantKeys) {
				t.Errorf("lock keys = %q, want %q", keys, wantKeys)
			}
			enc, err := undo.Encode(&undo.Log{Records: recs})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.rollback(e.db, enc, keys); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			if got := e.checksum(tables...); got != sum0 {
				t.Errorf("after rollback: %s, want %s", got, sum0)
			}
		})
	}
}

// TestMetadataCache: metadata is cached, refreshed after the TTL, and
// dropped by Invalidate.
func TestMetadataCache(t *testing.T) {
	e := newEnv(t)
	e.exec("CREATE TABLE m (id INT PRIMARY KEY, a INT)")
	now := time.Unix(1000, 0)
	e.d = New(WithMetadataTTL(time.Minute))
	e.d.now = func() time.Time { return now }
	cols := func() int {
		var n int
		err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
			tb, err := e.d.Table(ctx, conn, "m")
			n = len(tb.Columns)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := cols(), 2; got != want {
		t.Fatalf("columns = %d, want %d", got, want)
	}
	e.exec("ALTER TABLE m ADD COLUMN b INT")
	if got, want := cols(), 2; got != want {
		t.Errorf("columns within the TTL = %d, want the cached %d", got, want)
	}
	now = now.Add(2 * time.Minute)
	if got, want := cols(), 3; got != want {
		t.Errorf("columns after the TTL = %d, want %d", got, want)
	}
	e.exec("ALTER TABLE m ADD COLUMN c INT")
	e.d.Invalidate("m")
	if got, want := cols(), 4; got != want {
		t.Errorf("columns after Invalidate = %d, want %d", got, want)
	}
}

// TestConcurrentPlans plans one parsed statement from several connections
// at once (the race detector checks the shared AST).
func TestConcurrentPlans(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(baseSchema, ";\n")...)
	st, err := Parse("UPDATE item SET qty = qty + 1 WHERE ord = ? AND line = ?")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
				p, err := e.d.PrepareStatement(ctx, conn, st, nv([]any{1 + i%2, 1 + i/2}))
				if err != nil {
					return err
				}
				return p.Before(ctx, conn)
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
