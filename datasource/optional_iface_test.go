package datasource

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Inner connections with each combination of the direct-execution
// interfaces, on top of the bare fake of driver_test.go.

type execCtxConn struct{ bareConn }

func (c *execCtxConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.log.add("ExecContext %s %d", q, len(args))
	return driver.RowsAffected(3), nil
}

type queryCtxConn struct{ bareConn }

func (c *queryCtxConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.log.add("QueryContext %s %d", q, len(args))
	return &fakeRows{}, nil
}

type execQueryCtxConn struct{ bareConn }

func (c *execQueryCtxConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.log.add("ExecContext %s %d", q, len(args))
	return driver.RowsAffected(3), nil
}

func (c *execQueryCtxConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.log.add("QueryContext %s %d", q, len(args))
	return &fakeRows{}, nil
}

// The deprecated forms, which database/sql still uses.

type execerConn struct{ bareConn }

func (c *execerConn) Exec(q string, args []driver.Value) (driver.Result, error) {
	c.log.add("Exec %s %d", q, len(args))
	return driver.RowsAffected(3), nil
}

type queryerConn struct{ bareConn }

func (c *queryerConn) Query(q string, args []driver.Value) (driver.Rows, error) {
	c.log.add("Query %s %d", q, len(args))
	return &fakeRows{}, nil
}

type kindConnector struct {
	log  *callLog
	conn func(*callLog) driver.Conn
}

func (k *kindConnector) Connect(context.Context) (driver.Conn, error) {
	k.log.add("Connect")
	return k.conn(k.log), nil
}

func (k *kindConnector) Driver() driver.Driver { return nil }

var innerKinds = []struct {
	name string
	conn func(*callLog) driver.Conn
}{
	{"both", func(l *callLog) driver.Conn { return &execQueryCtxConn{bareConn{l}} }},
	{"exec only", func(l *callLog) driver.Conn { return &execCtxConn{bareConn{l}} }},
	{"query only", func(l *callLog) driver.Conn { return &queryCtxConn{bareConn{l}} }},
	{"neither", func(l *callLog) driver.Conn { return &bareConn{l} }},
	{"deprecated Execer", func(l *callLog) driver.Conn { return &execerConn{bareConn{l}} }},
	{"deprecated Queryer", func(l *callLog) driver.Conn { return &queryerConn{bareConn{l}} }},
}

// TestOptionalInterfacesFollowInner: the wrapped connection claims
// ExecerContext and QueryerContext exactly when the inner connection has
// them (or their deprecated forms), and never the deprecated forms
// themselves; database/sql, which picks its path by these assertions,
// then makes the same calls on the inner driver as without the wrapper.
func TestOptionalInterfacesFollowInner(t *testing.T) {
	for _, k := range innerKinds {
		t.Run(k.name, func(t *testing.T) {
			inner := k.conn(&callLog{})
			_, ec := inner.(driver.ExecerContext)
			_, e := inner.(driver.Execer) //nolint:staticcheck // what database/sql looks for
			_, qc := inner.(driver.QueryerContext)
			_, q := inner.(driver.Queryer) //nolint:staticcheck // what database/sql looks for

			c, err := NewConnector(&kindConnector{log: &callLog{}, conn: k.conn})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wc, err := c.Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer wc.Close()
			if _, got := wc.(driver.ExecerContext); got != (ec || e) {
				t.Errorf("wrapped conn is ExecerContext = %v, inner has ExecerContext %v, Execer %v", got, ec, e)
			}
			if _, got := wc.(driver.QueryerContext); got != (qc || q) {
				t.Errorf("wrapped conn is QueryerContext = %v, inner has QueryerContext %v, Queryer %v", got, qc, q)
			}
			if _, got := wc.(driver.Execer); got { //nolint:staticcheck // must not be claimed
				t.Error("wrapped conn claims the deprecated Execer")
			}
			if _, got := wc.(driver.Queryer); got { //nolint:staticcheck // must not be claimed
				t.Error("wrapped conn claims the deprecated Queryer")
			}
			// The interfaces every wrapped connection has.
			for _, want := range []struct {
				name string
				ok   bool
			}{
				{"ConnBeginTx", is[driver.ConnBeginTx](wc)},
				{"ConnPrepareContext", is[driver.ConnPrepareContext](wc)},
				{"NamedValueChecker", is[driver.NamedValueChecker](wc)},
				{"SessionResetter", is[driver.SessionResetter](wc)},
				{"Validator", is[driver.Validator](wc)},
				{"Pinger", is[driver.Pinger](wc)},
			} {
				if !want.ok {
					t.Errorf("wrapped conn is not %s", want.name)
				}
			}
		})
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// TestDriverCallsPerInnerKind runs a program of database/sql calls on
// each kind of inner connection, directly and through the wrapper
// (outside global transactions): same results, same driver calls.
func TestDriverCallsPerInnerKind(t *testing.T) {
	leakCheck(t)
	program := func(db *sql.DB) []string {
		ctx := context.Background()
		var out []string
		note := func(what string, v any, err error) { out = append(out, fmt.Sprintf("%s: %v %v", what, v, err)) }
		db.SetMaxOpenConns(1)
		res, err := db.ExecContext(ctx, "UPDATE x SET a = 1")
		note("exec", rowsAffected(res), err)
		res, err = db.ExecContext(ctx, "UPDATE x SET a = ?", 1)
		note("exec args", rowsAffected(res), err)
		var a int
		err = db.QueryRowContext(ctx, "SELECT a FROM x").Scan(&a)
		note("query", a, err)
		err = db.QueryRowContext(ctx, "SELECT a FROM x WHERE a = ?", 7).Scan(&a)
		note("query args", a, err)
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			res, err = tx.ExecContext(ctx, "UPDATE x SET a = ?", 2)
			note("tx exec", rowsAffected(res), err)
			err = tx.QueryRowContext(ctx, "SELECT a FROM x").Scan(&a)
			note("tx query", a, err)
			note("tx commit", nil, tx.Commit())
		}
		return out
	}
	for _, k := range innerKinds {
		t.Run(k.name, func(t *testing.T) {
			rawLog, wrapLog := &callLog{}, &callLog{}
			raw := sql.OpenDB(&kindConnector{log: rawLog, conn: k.conn})
			want := program(raw)
			raw.Close()
			c, err := NewConnector(&kindConnector{log: wrapLog, conn: k.conn})
			if err != nil {
				t.Fatal(err)
			}
			wrapped := sql.OpenDB(c)
			got := program(wrapped)
			wrapped.Close()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("results through the wrapper:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if g, w := wrapLog.take(), rawLog.take(); !reflect.DeepEqual(g, w) {
				t.Errorf("driver calls through the wrapper:\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
			}
		})
	}
}
