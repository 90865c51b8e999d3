package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseKind(t *testing.T) {
	tests := []struct {
		sql       string
		kind      Kind
		returning bool
		params    int
	}{
		{"SELECT 1", KindOther, false, 0},
		{"select * from t where a = ? for update", KindSelectForUpdate, false, 1},
		{"SELECT * FROM t LOCK IN SHARE MODE", KindOther, false, 0},
		{"SELECT * FROM t FOR UPDATE SKIP LOCKED", KindSelectForUpdate, false, 0},
		{"INSERT INTO t VALUES (?, ?)", KindInsert, false, 2},
		{"INSERT INTO t SET a = 1", KindInsert, false, 0},
		{"UPDATE t SET a = ? WHERE b = ?", KindUpdate, false, 2},
		{"DELETE FROM t", KindDelete, false, 0},
		{"DELETE FROM t WHERE id = ? RETURNING id, `returning`", KindDelete, true, 1},
		{"INSERT INTO t (a) VALUES ('returning') RETURNING a", KindInsert, true, 0},
		{"INSERT INTO t (a) VALUES (1) /* c */ returning *", KindInsert, true, 0},
		{"DELETE FROM t WHERE a = ? RETURNING a + ?, '?'", KindDelete, true, 2},
		{"SHOW TABLES", KindOther, false, 0},
		{"SET @a = 1", KindOther, false, 0},
		{"EXPLAIN UPDATE t SET a = 1", KindOther, false, 0},
		{"DO SLEEP(0)", KindOther, false, 0},
		{"CREATE TABLE t (a INT)", KindDDL, false, 0},
		{"RENAME TABLE a TO b", KindDDL, false, 0},
		{"REPLACE INTO t VALUES (1)", KindUnsupported, false, 0},
		{"BEGIN", KindUnsupported, false, 0},
		{"SAVEPOINT s1", KindSavepoint, false, 0},
		{"ROLLBACK TO s1", KindSavepoint, false, 0},
		{"ROLLBACK", KindUnsupported, false, 0},
		{"SELECT 1 LIMIT ROWS EXAMINED 5", KindOther, false, -1}, // MariaDB-only syntax, read-only
		{"/*!40101 SELECT 1 */", KindOther, false, 0},
	}
	for _, tt := range tests {
		st, err := Parse(tt.sql)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.sql, err)
			continue
		}
		if got := st.Kind(); got != tt.kind {
			t.Errorf("Parse(%q).Kind() = %v, want %v", tt.sql, got, tt.kind)
		}
		if got := st.Returning(); got != tt.returning {
			t.Errorf("Parse(%q).Returning() = %v, want %v", tt.sql, got, tt.returning)
		}
		if got := st.NumInput(); got != tt.params {
			t.Errorf("Parse(%q).NumInput() = %d, want %d", tt.sql, got, tt.params)
		}
	}
}

func TestParseSavepoint(t *testing.T) {
	tests := []struct {
		sql  string
		op   SavepointOp
		name string
		key  string
	}{
		{"SAVEPOINT s1", SavepointSet, "s1", "s1"},
		{"savepoint `Sp 1`", SavepointSet, "Sp 1", "sp 1"},
		{"SAVEPOINT `a``b`;", SavepointSet, "a`b", "a`b"},
		{"SAVEPOINT sp0xc000123456", SavepointSet, "sp0xc000123456", "sp0xc000123456"},
		{"ROLLBACK TO A", SavepointRollback, "A", "a"},
		{"ROLLBACK TO SAVEPOINT `x`", SavepointRollback, "x", "x"},
		{"rollback work to savepoint X", SavepointRollback, "X", "x"},
		{"/* c */ ROLLBACK WORK TO y", SavepointRollback, "y", "y"},
		{"RELEASE SAVEPOINT Q", SavepointRelease, "Q", "q"},
	}
	for _, tt := range tests {
		st, err := Parse(tt.sql)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.sql, err)
			continue
		}
		sp := st.Savepoint()
		if st.Kind() != KindSavepoint || sp.Op != tt.op || sp.Name != tt.name || sp.Key() != tt.key {
			t.Errorf("Parse(%q) = %v %v %q (key %q), want %v %v %q (key %q)", tt.sql, st.Kind(), sp.Op, sp.Name, sp.Key(), KindSavepoint, tt.op, tt.name, tt.key)
		}
		if _, err := New().PrepareStatement(context.Background(), failConn{}, st, nil); err == nil {
			t.Errorf("PrepareStatement(%q) = nil error, want a refusal to plan a savepoint", tt.sql)
		}
	}

	// Still refused in a branch, each with its own reason.
	refused := []struct{ sql, reason string }{
		{"BEGIN", "BeginTx"},
		{"START TRANSACTION", "BeginTx"},
		{"COMMIT", "Tx.Commit"},
		{"COMMIT AND CHAIN", "Tx.Commit"},
		{"ROLLBACK", "Tx.Rollback"},
		{"ROLLBACK WORK", "Tx.Rollback"},
		{"ROLLBACK AND CHAIN", "Tx.Rollback"},
		{"SAVEPOINT ``", "empty name"},
		{"ROLLBACK TO SAVEPOINT ``", "empty name"},
		{"SAVEPOINT `é`", "not ASCII"},
		{"ROLLBACK TO `É`", "not ASCII"},
		{"RELEASE SAVEPOINT `ß`", "not ASCII"},
		{"SET autocommit = 0", "autocommit"},
		{"LOCK TABLES t WRITE", "LOCK"},
	}
	for _, tt := range refused {
		st, err := Parse(tt.sql)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.sql, err)
			continue
		}
		if st.Kind() != KindUnsupported || !strings.Contains(st.reason, tt.reason) {
			t.Errorf("Parse(%q) = %v (%q), want %v naming %q", tt.sql, st.Kind(), st.reason, KindUnsupported, tt.reason)
		}
		if st.Savepoint() != (Savepoint{}) {
			t.Errorf("Parse(%q).Savepoint() = %+v, want none", tt.sql, st.Savepoint())
		}
	}
}

func TestParseRefused(t *testing.T) {
	for _, sql := range []string{
		"UPDATE t SET a = 1 WHERE b = 2; DELETE FROM t",
		"UPDATE t SET a = 1 RETURNING a",
		"SELECT 1 LIMIT ROWS EXAMINED 5 FOR UPDATE",
		"REPLACE INTO t VALUES (1) RETURNING a",
		"this is not sql",
		"",
	} {
		if _, err := Parse(sql); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Parse(%q) = %v, want ErrUnsupported", sql, err)
		}
	}
	if got := Classify("ALTER TABLE t ADD c INT"); got != KindDDL {
		t.Errorf("Classify(ALTER) = %v, want %v", got, KindDDL)
	}
	if got := Classify("garbage"); got != KindUnsupported {
		t.Errorf("Classify(garbage) = %v, want %v", got, KindUnsupported)
	}
}

// seeded returns a dialect whose cache knows t(a PK, b, c VARCHAR) and
// u(x, y PK (x, y)), so that plans can be built without a database.
func seeded() *Dialect {
	d := New(WithMetadataTTL(0))
	col := func(name, typ string, cl class) Column {
		return Column{Name: name, DataType: typ, ColumnType: typ, class: cl, Nullable: true}
	}
	t := &Table{Schema: "db", Name: "t", Engine: "InnoDB", PrimaryKey: []string{"a"},
		Columns: []Column{col("a", "int", classInt), col("b", "int", classInt), col("c", "varchar", classString)}}
	t.Columns[0].AutoIncrement, t.AutoIncrement = true, "a"
	t.Columns[2].Charset, t.Columns[2].Collation = "utf8mb4", "utf8mb4_bin"
	t.UniqueKeys = []Index{{Name: "uc", Columns: []string{"c"}}}
	u := &Table{Schema: "db", Name: "u", Engine: "InnoDB", PrimaryKey: []string{"x", "y"},
		Columns: []Column{col("x", "int", classInt), col("y", "timestamp", classTemporal), col("z", "float", classFloat)}}
	d.mu.tables["t"], d.mu.tables["u"] = t, u
	return d
}

// failConn is a driver connection on which everything fails.
type failConn struct{}

var errFail = errors.New("failConn")

func (failConn) Prepare(string) (driver.Stmt, error) { return nil, errFail }
func (failConn) Close() error                        { return nil }
func (failConn) Begin() (driver.Tx, error)           { return nil, errFail }

func args(n int) []driver.NamedValue {
	a := make([]driver.NamedValue, n)
	for i := range a {
		a[i] = driver.NamedValue{Ordinal: i + 1, Value: int64(100 + i)}
	}
	return a
}

// TestBeforeImageSQL checks the rebuilt queries and that each "?" gets
// the argument it had in the statement, whatever order the clauses are
// written in.
func TestBeforeImageSQL(t *testing.T) {
	tests := []struct {
		sql      string
		wantSQL  string
		wantArgs []any
	}{
		{
			"UPDATE t SET b = ? WHERE c = ? ORDER BY b, a LIMIT ?",
			"SELECT `t`.`a`, `t`.`b`, CAST(`t`.`c` AS BINARY) FROM `t` WHERE `c`=? ORDER BY `b`,`a` LIMIT ? FOR UPDATE",
			[]any{int64(101), int64(102)},
		},
		{
			"UPDATE t AS q JOIN u ON u.x = q.a + ? SET q.b = ?, u.z = ? WHERE q.c IN (?, ?) AND u.x BETWEEN ? AND ?",
			"SELECT `q`.`a`, `q`.`b`, CAST(`q`.`c` AS BINARY), `u`.`x`, CAST(`u`.`y` AS CHAR), CAST(`u`.`z` AS DOUBLE) FROM `t` AS `q` JOIN `u` ON `u`.`x`=`q`.`a`+? WHERE `q`.`c` IN (?,?) AND `u`.`x` BETWEEN ? AND ? FOR UPDATE",
			[]any{int64(100), int64(103), int64(104), int64(105), int64(106)},
		},
		{
			"DELETE FROM t WHERE b = 'it''s \\\\ ?' AND c = ?",
			"SELECT `t`.`a`, `t`.`b`, CAST(`t`.`c` AS BINARY) FROM `t` WHERE `b`='it''s \\\\ ?' AND `c`=? FOR UPDATE",
			[]any{int64(100)},
		},
		{
			"DELETE t FROM t JOIN u ON u.x = t.a WHERE u.z > ?",
			"SELECT `t`.`a`, `t`.`b`, CAST(`t`.`c` AS BINARY) FROM `t` JOIN `u` ON `u`.`x`=`t`.`a` WHERE `u`.`z`>? FOR UPDATE",
			[]any{int64(100)},
		},
		{
			"SELECT b FROM t WHERE c = ? LIMIT ? OFFSET ? FOR UPDATE NOWAIT",
			"SELECT `t`.`a` FROM `t` WHERE `c`=? LIMIT ?,? FOR UPDATE NOWAIT",
			[]any{int64(100), int64(102), int64(101)},
		},
		{
			"DELETE FROM t WHERE c = TRIM(LEADING ? FROM c) OR c = TRIM(? FROM b)",
			"SELECT `t`.`a`, `t`.`b`, CAST(`t`.`c` AS BINARY) FROM `t` WHERE `c`=TRIM(LEADING ? FROM `c`) OR `c`=TRIM(? FROM `b`) FOR UPDATE",
			[]any{int64(100), int64(101)},
		},
		{
			"INSERT INTO t (b, c) VALUES (?, ?) ON DUPLICATE KEY UPDATE b = ?",
			"(`t`.`c` = ?)",
			[]any{int64(101)},
		},
	}
	d := seeded()
	for _, tt := range tests {
		p, err := d.Prepare(context.Background(), failConn{}, tt.sql, args(strings.Count(tt.sql, "?")-strings.Count(tt.sql, "\\\\ ?")))
		if err != nil {
			t.Errorf("Prepare(%q) = %v", tt.sql, err)
			continue
		}
		var gotSQL string
		var gotArgs []any
		switch x := p.impl.(type) {
		case *dmlPlan:
			gotSQL, gotArgs = x.query, x.args
		case *lockPlan:
			gotSQL, gotArgs = x.query, x.args
		case *insertPlan:
			gotSQL, gotArgs = x.conflict, x.conflictArgs
		}
		if gotSQL != tt.wantSQL {
			t.Errorf("Prepare(%q) query =\n%s\nwant\n%s", tt.sql, gotSQL, tt.wantSQL)
		}
		if !reflect.DeepEqual(gotArgs, tt.wantArgs) {
			t.Errorf("Prepare(%q) args = %v, want %v", tt.sql, gotArgs, tt.wantArgs)
		}
	}
}

func TestLex(t *testing.T) {
	toks := lex("SELECT 'a''b\\'c', \"x\", `q``q`, (1, (2)) -- c\n# d\n/* e */ /*!50000 RETURNING */ z")
	var got []string
	for _, tk := range toks {
		got = append(got, tk.text)
	}
	want := []string{"SELECT", `'a''b\'c'`, ",", `"x"`, ",", "`q``q`", ",", "(", "1", ",", "(", "2", ")", ")", "RETURNING", "z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lex = %q, want %q", got, want)
	}
	if got := returningOffsets(toks); len(got) != 1 {
		t.Errorf("returningOffsets = %v, want one", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"UPDATE t SET b = ? WHERE c = ? ORDER BY b LIMIT ?",
		"UPDATE t AS q JOIN u ON u.x = q.a SET q.b = ?, u.z = 1 WHERE q.c IN (?, ?)",
		"DELETE t, u FROM t JOIN u ON u.x = t.a WHERE u.z > ?",
		"DELETE FROM t WHERE a = ? RETURNING a",
		"INSERT INTO t (b, c) VALUES (?, ?), (1, 'x') ON DUPLICATE KEY UPDATE b = VALUES(b)",
		"INSERT IGNORE INTO u VALUES (1, '2020-01-01', 1.5) RETURNING x",
		"INSERT INTO t SET a = ?, c = ?",
		"SELECT * FROM t JOIN u ON u.x = t.a WHERE t.b = ? GROUP BY t.c FOR UPDATE",
		"SELECT TRIM(LEADING ? FROM c) FROM t WHERE c = TRIM(? FROM c) FOR UPDATE",
		"/*!50000 DELETE */ FROM t WHERE a = 1",
	} {
		f.Add(s)
	}
	d := seeded()
	f.Fuzz(func(t *testing.T, sql string) {
		st, err := Parse(sql)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Parse(%q) = %v, not ErrUnsupported", sql, err)
			}
			return
		}
		n := max(st.NumInput(), 0)
		p, err := d.PrepareStatement(context.Background(), failConn{}, st, args(n))
		if err != nil {
			return
		}
		_ = p.Before(context.Background(), failConn{})
	})
}

func FuzzLex(f *testing.F) {
	f.Add("SELECT 'a''b\\'c', `q``q` /*!50000 RETURNING */ -- x\n# y\n/* z")
	f.Add("INSERT INTO t VALUES (')') RETURNING (a)")
	f.Fuzz(func(t *testing.T, s string) {
		prev := -1
		for _, tk := range lex(s) {
			if tk.pos <= prev || tk.pos+len(tk.text) > len(s) || s[tk.pos:tk.pos+len(tk.text)] != tk.text || tk.depth < 0 {
				t.Fatalf("lex(%q): bad token %+v after offset %d", s, tk, prev)
			}
			prev = tk.pos
		}
	})
}

// BenchmarkPrepare measures parsing and planning one UPDATE (metadata
// cached, no database round trip).
func BenchmarkPrepare(b *testing.B) {
	d := seeded()
	a := args(3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Prepare(context.Background(), failConn{}, "UPDATE t SET b = b + ? WHERE c = ? AND a > ?", a); err != nil {
			b.Fatal(err)
		}
	}
}
