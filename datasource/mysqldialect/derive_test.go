package mysqldialect

import (
	"context"
	"database/sql/driver"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/xact-io/xact/undo"
)

const deriveSchema = `
CREATE TABLE n (
  id BIGINT PRIMARY KEY,
  ti TINYINT NULL, tu TINYINT UNSIGNED NULL,
  si SMALLINT NULL, su SMALLINT UNSIGNED NULL,
  mi MEDIUMINT NULL, mu MEDIUMINT UNSIGNED NULL,
  i INT NULL, iu INT UNSIGNED NULL,
  bi BIGINT NULL, bu BIGINT UNSIGNED NULL,
  y YEAR NULL, d DECIMAL(10,2) NULL, s VARCHAR(10) NULL);
INSERT INTO n VALUES
  (1, 100, 200, 30000, 60000, 8000000, 16000000, 2000000000, 4000000000, 9223372036854775000, 18446744073709551000, 2000, 1.50, 'a'),
  (2, -100, 5, -30000, 5, -8000000, 5, -2000000000, 5, -9223372036854775000, 5, 2001, 2.50, 'b'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2002, 1.00, 'c');
CREATE TABLE stamped (id INT PRIMARY KEY, n INT NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
INSERT INTO stamped VALUES (1, 1, '2020-01-01 00:00:00');
CREATE TABLE gen (id INT PRIMARY KEY, n INT NOT NULL, twice INT AS (n * 2) VIRTUAL);
INSERT INTO gen (id, n) VALUES (1, 1)`

// errRollbackTx makes tx roll back.
var errRollbackTx = errors.New("roll back")

// TestDerivedAfterImage runs UPDATEs whose after image is derived and
// compares it with the row the database stored, read back on the same
// connection: in strict mode, in non-strict mode (where out-of-range
// results are clipped), with NO_UNSIGNED_SUBTRACTION, with literals and
// arguments, over NULLs, with both interpolateParams settings.
func TestDerivedAfterImage(t *testing.T) {
	cases := []struct {
		name string
		mode string // session sql_mode
		sql  string
		args []any
	}{
		{"add argument to every width", "", "UPDATE n SET ti = ti + ?, si = si + ?, mi = mi + ?, i = i + ?, bi = bi + ? WHERE id IN (1, 2, 3)", []any{7, 7, 7, 7, 7}},
		{"subtract argument from unsigned", "", "UPDATE n SET tu = tu - ?, su = su - ?, mu = mu - ?, iu = iu - ?, bu = bu - ? WHERE id IN (1, 3)", []any{3, 3, 3, 3, 3}},
		{"argument plus column", "", "UPDATE n SET i = ? + i WHERE id = 2", []any{-11}},
		{"literals", "", "UPDATE n SET i = i - 5, bu = (bu + 10), ti = 3 WHERE id <= 3", nil},
		{"assign argument", "", "UPDATE n SET bi = ?, bu = ? WHERE id = 3", []any{int64(math.MinInt64), uint64(math.MaxUint64)}},
		{"non-strict clips high", "NO_ENGINE_SUBSTITUTION", "UPDATE n SET ti = ti + ?, tu = tu + ?, si = si + ?, mu = mu + ?, iu = iu + ? WHERE id = 1", []any{100, 100, 10000, 1000000, 1000000000}},
		{"non-strict clips low", "NO_ENGINE_SUBSTITUTION", "UPDATE n SET ti = ti - ?, si = si - ?, mi = mi - ?, i = i - ? WHERE id = 2", []any{100, 10000, 1000000, 1000000000}},
		{"non-strict assignment out of range", "NO_ENGINE_SUBSTITUTION", "UPDATE n SET ti = ?, tu = ? WHERE id = 1", []any{1000, -5}},
		{"unsigned subtraction below zero", "NO_ENGINE_SUBSTITUTION,NO_UNSIGNED_SUBTRACTION", "UPDATE n SET tu = tu - ?, iu = iu - ? WHERE id = 2", []any{10, 10}},
		{"nothing changes", "", "UPDATE n SET i = i + ? WHERE id = 1", []any{0}},
	}
	for _, interp := range []bool{false, true} {
		e := newEnv(t, interpolate(interp))
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e.exec("DROP TABLE IF EXISTS n, stamped, gen")
				e.exec(strings.Split(deriveSchema, ";\n")...)
				checkImageCase(t, e, true, tc.mode, tc.sql, tc.args, true)
			})
		}
	}
}

// checkImageCase runs one statement in a transaction on e, with the
// session's sql_mode set to mode first if setMode, checks that its after
// images were derived (derived) or read (!derived), compares them with
// the stored rows, and commits (derived) or rolls back.
func checkImageCase(t *testing.T, e *env, setMode bool, mode, sql string, args []any, derived bool) {
	t.Helper()
	err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
		if setMode {
			if _, err := execute(ctx, conn, "SET SESSION sql_mode = ?", []any{mode}); err != nil {
				return err
			}
		}
		p, err := run(ctx, e.d, conn, sql, args...)
		if err != nil {
			return err
		}
		if got := derivedImages(p); got != derived {
			t.Errorf("after images of %q derived = %v, want %v", sql, got, derived)
		}
		checkAfterImages(ctx, t, e, conn, p)
		if !derived {
			return errRollbackTx
		}
		return nil
	})
	var want error // derived: committed
	if !derived {
		want = errRollbackTx
	}
	if err != want {
		t.Fatal(err)
	}
}

// derivedImages reports whether p derives its after images instead of
// reading them.
func derivedImages(p *Plan) bool {
	switch x := p.impl.(type) {
	case *dmlPlan:
		return x.derive != nil
	case *insertPlan:
		return x.derived != nil
	}
	return false
}

// checkAfterImages compares every after image of p's records with the
// stored row.
func checkAfterImages(ctx context.Context, t *testing.T, e *env, conn driver.Conn, p *Plan) {
	t.Helper()
	for _, r := range p.Records() {
		tbl, err := e.d.Table(ctx, conn, r.Table)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := rowsByKey(ctx, conn, tbl, imageColumns(tbl), pkIndexes(tbl), r.After, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(r.After) {
			t.Fatalf("%d stored rows for %d after images", len(stored), len(r.After))
		}
		byKey := make(map[string]undo.Row, len(stored))
		for _, row := range stored {
			k, _ := keyOf(tbl, pkIndexes(tbl), row)
			byKey[k] = row
		}
		for _, after := range r.After {
			k, _ := keyOf(tbl, pkIndexes(tbl), after)
			if row, ok := byKey[k]; !ok || !row.Equal(after) {
				t.Errorf("derived after image\n  %v\nstored row\n  %v", after, row)
			}
		}
	}
}

// TestAfterImageRead lists the UPDATEs that must read their after image:
// the database computes something the derivation does not model.
func TestAfterImageRead(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(deriveSchema, ";\n")...)
	cases := []struct {
		name string
		sql  string
		args []any
	}{
		{"ON UPDATE column", "UPDATE stamped SET n = n + ? WHERE id = 4", []any{1}},
		{"generated column", "UPDATE gen SET n = n + ? WHERE id = 4", []any{1}},
		{"string argument", "UPDATE n SET i = i + ? WHERE id = 4", []any{"1"}},
		{"float argument", "UPDATE n SET i = i + ? WHERE id = 4", []any{1.5}},
		{"decimal column", "UPDATE n SET d = d + ? WHERE id = 4", []any{1}},
		{"year column", "UPDATE n SET y = y + ? WHERE id = 4", []any{1}},
		{"string column", "UPDATE n SET s = ? WHERE id = 4", []any{"x"}},
		{"multiplication", "UPDATE n SET i = i * ? WHERE id = 4", []any{2}},
		{"other column", "UPDATE n SET i = bi + ? WHERE id = 4", []any{1}},
		{"column minus itself reversed", "UPDATE n SET i = ? - i WHERE id = 4", []any{1}},
		{"column set twice", "UPDATE n SET i = i + 1, i = i + 1 WHERE id = 4", nil},
		{"NULL argument", "UPDATE n SET i = ? WHERE id = 4", []any{nil}},
		{"function", "UPDATE n SET i = ABS(i) WHERE id = 4", nil},
		{"multi-table", "UPDATE n JOIN stamped ON stamped.id = n.id SET n.i = n.i + 1", nil},
		{"UPDATE IGNORE", "UPDATE IGNORE n SET i = i + ? WHERE id = 4", []any{1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkImageCase(t, e, false, "", tc.sql, tc.args, false)
		})
	}
	t.Run("dialect option reads every after image", func(t *testing.T) {
		d := New(WithAfterImagesRead())
		err := tx(t, e.db, func(ctx context.Context, conn driver.Conn) error {
			p, err := run(ctx, d, conn, "UPDATE n SET i = i + ? WHERE id = 1", 1)
			if err != nil {
				return err
			}
			if dp := p.impl.(*dmlPlan); dp.derive != nil {
				t.Error("after image derived with WithAfterImagesRead")
			}
			return errRollbackTx
		})
		if err != errRollbackTx {
			t.Fatal(err)
		}
	})
}

// TestDerivedImageRollsBack commits a branch whose after image was
// derived and rolls it back: the dirty check accepts the live row, the
// table is restored exactly.
func TestDerivedImageRollsBack(t *testing.T) {
	e := newEnv(t)
	e.exec(strings.Split(deriveSchema, ";\n")...)
	before := e.checksum("n")
	enc, keys, err := e.branch(e.db,
		q("UPDATE n SET bi = bi - ?, bu = bu + ?, ti = ti + 1 WHERE id IN (1, 2, 3)", 5, 5),
		q("UPDATE n SET i = ? WHERE id = 3", 42),
		// Derived as unchanged: kept as a record whose images are equal.
		q("UPDATE n SET i = i + ? WHERE id = 1", 0))
	if err != nil {
		t.Fatal(err)
	}
	log, err := undo.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Records) != 3 {
		t.Fatalf("%d records, want 3", len(log.Records))
	}
	if r := log.Records[2]; len(r.Before) != 1 || !r.Before[0].Equal(r.After[0]) {
		t.Errorf("record of the unchanging UPDATE = %+v, want one row with equal images", r)
	}
	if err := e.rollback(e.db, enc, keys); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := e.checksum("n"); got != before {
		t.Errorf("checksum after rollback %s, want %s", got, before)
	}
}

func TestGeneratedExtra(t *testing.T) {
	for extra, want := range map[string]bool{
		"virtual generated":   true, // MariaDB and MySQL
		"stored generated":    true,
		"persistent":          true, // older MariaDB
		"row start invisible": true,
		"row end invisible":   true,
		"default_generated":   false, // MySQL 8: DEFAULT CURRENT_TIMESTAMP
		"default_generated on update current_timestamp": false,
		"auto_increment": false,
		"":               false,
	} {
		if got := generatedExtra(extra); got != want {
			t.Errorf("generatedExtra(%q) = %v, want %v", extra, got, want)
		}
	}
}
