package datasource

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// A fake driver that records every call, in two flavours: a bare one with
// only the required interfaces, and a full one with every optional
// interface database/sql uses. The same program run on each directly and
// through the wrapper (outside global transactions) must make the same
// driver calls and get the same results: the wrapper's claimed interfaces
// behave like their absence where the inner driver lacks them.

type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
}

func (l *callLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

type fakeConnector struct {
	log  *callLog
	full bool
}

func (f *fakeConnector) Connect(context.Context) (driver.Conn, error) {
	f.log.add("Connect")
	if f.full {
		return &fullConn{bareConn{f.log}}, nil
	}
	return &bareConn{f.log}, nil
}

func (f *fakeConnector) Driver() driver.Driver { return nil }

type bareConn struct{ log *callLog }

func (c *bareConn) Prepare(q string) (driver.Stmt, error) {
	c.log.add("Prepare %s", q)
	return &bareStmt{c.log, q}, nil
}
func (c *bareConn) Close() error { c.log.add("Close"); return nil }
func (c *bareConn) Begin() (driver.Tx, error) {
	c.log.add("Begin")
	return fakeTx{c.log}, nil
}

type fakeTx struct{ log *callLog }

func (t fakeTx) Commit() error   { t.log.add("Commit"); return nil }
func (t fakeTx) Rollback() error { t.log.add("Rollback"); return nil }

type bareStmt struct {
	log *callLog
	q   string
}

func (s *bareStmt) Close() error  { s.log.add("Stmt.Close"); return nil }
func (s *bareStmt) NumInput() int { return -1 }
func (s *bareStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.log.add("Stmt.Exec %s %v", s.q, args)
	return driver.RowsAffected(1), nil
}
func (s *bareStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.log.add("Stmt.Query %s %v", s.q, args)
	return &fakeRows{}, nil
}

type fakeRows struct{ n int }

func (r *fakeRows) Columns() []string { return []string{"a"} }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.n > 0 {
		return io.EOF
	}
	r.n++
	dest[0] = int64(42)
	return nil
}

type fullConn struct{ bareConn }

func (c *fullConn) BeginTx(_ context.Context, o driver.TxOptions) (driver.Tx, error) {
	c.log.add("BeginTx %v %v", o.Isolation, o.ReadOnly)
	return fakeTx{c.log}, nil
}
func (c *fullConn) PrepareContext(_ context.Context, q string) (driver.Stmt, error) {
	c.log.add("PrepareContext %s", q)
	return &fullStmt{bareStmt{c.log, q}}, nil
}
func (c *fullConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		c.log.add("ExecContext %s skip", q)
		return nil, driver.ErrSkip
	}
	c.log.add("ExecContext %s", q)
	return driver.RowsAffected(2), nil
}
func (c *fullConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.log.add("QueryContext %s %v", q, args)
	return &fakeRows{}, nil
}
func (c *fullConn) Ping(context.Context) error { c.log.add("Ping"); return nil }
func (c *fullConn) ResetSession(context.Context) error {
	c.log.add("ResetSession")
	return nil
}
func (c *fullConn) IsValid() bool { c.log.add("IsValid"); return true }
func (c *fullConn) CheckNamedValue(nv *driver.NamedValue) error {
	c.log.add("CheckNamedValue %T", nv.Value)
	if u, ok := nv.Value.(uint64); ok {
		nv.Value = fmt.Sprint(u) // accept what the default would refuse
		return nil
	}
	return driver.ErrSkip
}

type fullStmt struct{ bareStmt }

func (s *fullStmt) ExecContext(_ context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.log.add("Stmt.ExecContext %s %v", s.q, args)
	return driver.RowsAffected(1), nil
}
func (s *fullStmt) QueryContext(_ context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.log.add("Stmt.QueryContext %s %v", s.q, args)
	return &fakeRows{}, nil
}

// exercise runs a program of database/sql calls and returns their
// results.
func exercise(db *sql.DB) []string {
	ctx := context.Background()
	var out []string
	note := func(what string, v any, err error) {
		out = append(out, fmt.Sprintf("%s: %v %v", what, v, err))
	}
	db.SetMaxOpenConns(1)
	res, err := db.ExecContext(ctx, "UPDATE x SET a = 1")
	note("exec", rowsAffected(res), err)
	res, err = db.ExecContext(ctx, "UPDATE x SET a = ?", 1)
	note("exec args", rowsAffected(res), err)
	res, err = db.ExecContext(ctx, "UPDATE x SET a = ?", uint64(1)<<63)
	note("exec uint64", rowsAffected(res), err)
	res, err = db.ExecContext(ctx, "UPDATE x SET a = ?", sql.Named("a", 1))
	note("exec named", rowsAffected(res), err)
	var a int
	err = db.QueryRowContext(ctx, "SELECT a FROM x WHERE a = ?", 7).Scan(&a)
	note("query", a, err)
	rows, err := db.QueryContext(ctx, "SELECT a FROM x")
	if err == nil {
		cts, _ := rows.ColumnTypes()
		note("scan type", cts[0].ScanType(), nil)
		rows.Close()
	}
	st, err := db.PrepareContext(ctx, "DELETE FROM x WHERE a = ?")
	if err == nil {
		res, err = st.ExecContext(ctx, 3)
		note("stmt exec", rowsAffected(res), err)
		st.Close()
	}
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		_, err = tx.ExecContext(ctx, "UPDATE x SET a = 2")
		note("tx exec", nil, err)
		note("tx commit", nil, tx.Commit())
	}
	tx, err = db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
	note("begin serializable", nil, err)
	if err == nil {
		tx.Rollback()
	}
	// Not Ping: the wrapper's also checks the undo_log table
	// (TestPingChecksUndoLogTable).
	return out
}

func rowsAffected(res sql.Result) int64 {
	if res == nil {
		return -1
	}
	n, _ := res.RowsAffected()
	return n
}

func TestDriverFidelity(t *testing.T) {
	leakCheck(t)
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("full=%v", full), func(t *testing.T) {
			rawLog, wrapLog := &callLog{}, &callLog{}
			raw := sql.OpenDB(&fakeConnector{log: rawLog, full: full})
			wantOut := exercise(raw)
			raw.Close()
			c, err := NewConnector(&fakeConnector{log: wrapLog, full: full})
			if err != nil {
				t.Fatal(err)
			}
			wrapped := sql.OpenDB(c)
			gotOut := exercise(wrapped)
			wrapped.Close()
			if !reflect.DeepEqual(gotOut, wantOut) {
				t.Errorf("results through the wrapper:\n%s\nwant\n%s", strings.Join(gotOut, "\n"), strings.Join(wantOut, "\n"))
			}
			if got, want := wrapLog.take(), rawLog.take(); !reflect.DeepEqual(got, want) {
				t.Errorf("driver calls through the wrapper:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestResetSessionRefusesOpenTransaction(t *testing.T) {
	log := &callLog{}
	c, err := NewConnector(&fakeConnector{log: log, full: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dc, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cn := dc.(connExecQuery).conn
	if _, err := cn.BeginTx(context.Background(), driver.TxOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := cn.ResetSession(context.Background()), driver.ErrBadConn; got != want {
		t.Errorf("ResetSession with an open transaction = %v, want %v", got, want)
	}
	if cn.tx != nil {
		t.Error("transaction state kept after ResetSession")
	}
	cn.bad = true
	if cn.IsValid() {
		t.Error("IsValid = true for a connection marked bad")
	}
}

func TestFirstWord(t *testing.T) {
	tests := []struct{ q, want string }{
		{"  create table x", "CREATE"},
		{"/* hint */ ALTER TABLE t", "ALTER"},
		{"-- c\nDROP TABLE t", "DROP"},
		{"# c\ntruncate t", "TRUNCATE"},
		{"(SELECT 1)", "SELECT"},
		{"/* open", ""},
	}
	for _, tt := range tests {
		if got := firstWord(tt.q); got != tt.want {
			t.Errorf("firstWord(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
}
