package mysqldialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/undo"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// env is one test database, reached with chosen driver settings.
type env struct {
	t   testing.TB
	cfg *gomysql.Config
	db  *sql.DB
	d   *Dialect
}

type envOption func(*gomysql.Config)

func interpolate(on bool) envOption { return func(c *gomysql.Config) { c.InterpolateParams = on } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	cfg := mysqltest.Config(t)
	for _, o := range opts {
		o(cfg)
	}
	return &env{t: t, cfg: cfg, db: mysqltest.Open(t, cfg), d: New()}
}

// with returns a pool on the same database with other settings.
func (e *env) with(opts ...envOption) *sql.DB {
	cfg := e.cfg.Clone()
	for _, o := range opts {
		o(cfg)
	}
	return mysqltest.Open(e.t, cfg)
}

func (e *env) exec(stmts ...string) {
	e.t.Helper()
	for _, s := range stmts {
		if _, err := e.db.Exec(s); err != nil {
			e.t.Fatalf("%s: %v", s, err)
		}
	}
}

// tx runs fn on a driver connection of db inside a local transaction and
// commits if fn returns nil, else rolls back and returns fn's error.
func tx(t testing.TB, db *sql.DB, fn func(ctx context.Context, conn driver.Conn) error) error {
	t.Helper()
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var fnErr error
	err = c.Raw(func(dc any) error {
		conn := dc.(driver.Conn)
		txn, err := conn.(driver.ConnBeginTx).BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if fnErr = fn(ctx, conn); fnErr != nil {
			return txn.Rollback()
		}
		return txn.Commit()
	})
	if err != nil {
		t.Fatal(err)
	}
	return fnErr
}

func nv(args []any) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		switch x := a.(type) {
		case int:
			a = int64(x)
		}
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// run does what the datasource wrapper does for one statement in a
// branch: plan, before, execute, after.
func run(ctx context.Context, d *Dialect, conn driver.Conn, query string, args ...any) (*Plan, error) {
	p, err := d.Prepare(ctx, conn, query, nv(args))
	if err != nil {
		return nil, err
	}
	if err := p.Before(ctx, conn); err != nil {
		return nil, err
	}
	var res driver.Result
	if p.Returning() || p.Kind() == KindSelectForUpdate || p.Kind() == KindOther {
		if _, err := queryRows(ctx, conn, query, nvArgs(args)); err != nil {
			return nil, err
		}
	} else {
		if res, err = execute(ctx, conn, query, nvArgs(args)); err != nil {
			return nil, err
		}
	}
	if err := p.After(ctx, conn, res); err != nil {
		return nil, err
	}
	return p, nil
}

func nvArgs(args []any) []any {
	out := make([]any, len(args))
	for i, v := range nv(args) {
		out[i] = v.Value
	}
	return out
}

// branch runs statements as one branch and commits; it returns the
// encoded undo log and the lock keys, as phase one would store and
// register them.
func (e *env) branch(db *sql.DB, stmts ...stmt) ([]byte, []string, error) {
	e.t.Helper()
	var log undo.Log
	var keys []string
	err := tx(e.t, db, func(ctx context.Context, conn driver.Conn) error {
		for _, s := range stmts {
			p, err := run(ctx, e.d, conn, s.sql, s.args...)
			if err != nil {
				return err
			}
			log.Records = append(log.Records, p.Records()...)
			keys = append(keys, p.LockKeys()...)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	b, err := undo.Encode(&log)
	if err != nil {
		e.t.Fatalf("Encode: %v", err)
	}
	return b, keys, nil
}

type stmt struct {
	sql  string
	args []any
}

func q(sql string, args ...any) stmt { return stmt{sql, args} }

// rollback decodes an undo log and compensates it in a new local
// transaction on db.
func (e *env) rollback(db *sql.DB, enc []byte, keys []string) error {
	e.t.Helper()
	log, err := undo.Decode(enc)
	if err != nil {
		e.t.Fatalf("Decode: %v", err)
	}
	return tx(e.t, db, func(ctx context.Context, conn driver.Conn) error {
		return e.d.Undo(ctx, conn, log, keys)
	})
}

// checksum returns CHECKSUM TABLE of each table, which covers the stored
// bytes of every row.
func (e *env) checksum(tables ...string) string {
	e.t.Helper()
	var out []string
	for _, t := range tables {
		var name string
		var sum sql.NullInt64
		if err := e.db.QueryRow("CHECKSUM TABLE "+quote(t)).Scan(&name, &sum); err != nil {
			e.t.Fatalf("CHECKSUM TABLE %s: %v", t, err)
		}
		out = append(out, fmt.Sprintf("%s=%d", t, sum.Int64))
	}
	return strings.Join(out, " ")
}

// dump returns the rows of table as text (HEX of each column's bytes, and
// exact forms of floats and timestamps), sorted, for readable diffs.
func (e *env) dump(table string) []string {
	e.t.Helper()
	rows, err := e.db.Query("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table)
	if err != nil {
		e.t.Fatal(err)
	}
	var exprs []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			e.t.Fatal(err)
		}
		col := quote(name)
		switch typ {
		case "float", "double":
			exprs = append(exprs, "IFNULL(CONCAT(CAST("+col+" AS DOUBLE)), 'NULL')")
		case "timestamp":
			exprs = append(exprs, "IFNULL(CONCAT(UNIX_TIMESTAMP("+col+")), 'NULL')")
		default:
			exprs = append(exprs, "IFNULL(HEX(CAST("+col+" AS BINARY)), 'NULL')")
		}
	}
	rows.Close()
	rows, err = e.db.Query("SELECT CONCAT_WS('|', " + strings.Join(exprs, ", ") + ") FROM " + quote(table))
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func isUnsupported(err error) bool { return errors.Is(err, ErrUnsupported) }
