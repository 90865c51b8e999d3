package datasource

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
	"github.com/xact-io/xact/undo"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// leakCheck fails the test if goroutines started during it outlive its
// cleanups. Call it first, so that its cleanup runs last.
func leakCheck(t testing.TB) {
	t.Helper()
	// The shared server and its admin pool start on first use and live
	// until TestMain ends.
	_ = mysqltest.DSN(t)
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// env is a coordinator on Badger, reached over real gRPC by a transaction
// manager and a resource manager, and any number of databases.
type env struct {
	t     testing.TB
	srv   *tctest.Server
	conn  *grpc.ClientConn
	tm    *tm.Manager
	rm    *rm.Client
	admin xactpb.AdminClient
}

func newEnv(t testing.TB, opts ...tctest.Option) *env {
	t.Helper()
	opts = append([]tctest.Option{tctest.WithBadger(), tctest.WithConfig(func(c *tc.Config) {
		c.DecisionWait = 2 * time.Second
	})}, opts...)
	srv := tctest.Start(t, opts...)
	conn := srv.Conn(t)
	e := &env{t: t, srv: srv, conn: conn, tm: tm.New(conn), admin: xactpb.NewAdminClient(conn)}
	e.rm = rm.New(conn, rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond), rm.WithActionTimeout(10*time.Second))
	t.Cleanup(func() { e.rm.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.rm.Start(ctx); err != nil {
		t.Fatalf("rm Start: %v", err)
	}
	return e
}

// database is one test database: raw is a plain pool (the "non-global
// writer" and the test's eyes), db the same database through the wrapper.
type database struct {
	t        testing.TB
	e        *env
	cfg      *gomysql.Config
	raw      *sql.DB
	db       *sql.DB
	c        *Connector
	resource string
}

func withAfterRegister(f func(xid string, branchID int64)) Option {
	return func(c *config) error { c.hooks.afterRegister = f; return nil }
}

type dbOption func(*gomysql.Config)

func interpolate(on bool) dbOption { return func(c *gomysql.Config) { c.InterpolateParams = on } }

// newDB creates a database with the undo_log table and opens it through
// the wrapper with e's RM.
func (e *env) newDB(t testing.TB, dopts []dbOption, opts ...Option) *database {
	t.Helper()
	cfg := mysqltest.Config(t)
	for _, o := range dopts {
		o(cfg)
	}
	d := &database{t: t, e: e, cfg: cfg, raw: mysqltest.Open(t, cfg)}
	d.exec(undo.LogTableDDL)
	inner, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.resource = ResourceID(cfg)
	opts = append([]Option{WithRM(e.rm), WithResourceID(d.resource), WithLockWait(time.Second, 5*time.Millisecond)}, opts...)
	c, err := NewConnector(inner, opts...)
	if err != nil {
		t.Fatalf("NewConnector: %v", err)
	}
	d.c = c
	d.db = sql.OpenDB(c)
	t.Cleanup(func() {
		if err := d.db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

func (d *database) exec(stmts ...string) {
	d.t.Helper()
	for _, s := range stmts {
		if _, err := d.raw.Exec(s); err != nil {
			d.t.Fatalf("%s: %v", s, err)
		}
	}
}

// dump returns every row of table as text, in primary-key order (NULL as
// "NULL"), for exact comparisons of before and after.
func (d *database) dump(table string) [][]string {
	d.t.Helper()
	rows, err := d.raw.Query("SELECT * FROM `" + table + "` ORDER BY 1")
	if err != nil {
		d.t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			d.t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = string(v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		d.t.Fatal(err)
	}
	return out
}

// undoLogs counts undo_log rows by status, once no global transaction is
// in its first phase-two round: an AT-only commit answers at its decision
// and deletes its undo logs after.
func (d *database) undoLogs() (normal, markers int) {
	d.t.Helper()
	if d.e != nil {
		d.e.settleCommits()
	}
	if err := d.raw.QueryRow("SELECT COALESCE(SUM(log_status = 0), 0), COALESCE(SUM(log_status = 1), 0) FROM undo_log").Scan(&normal, &markers); err != nil {
		d.t.Fatal(err)
	}
	return normal, markers
}

func (d *database) balance(id int) int {
	d.t.Helper()
	var b int
	if err := d.raw.QueryRow("SELECT balance FROM account WHERE id = ?", id).Scan(&b); err != nil {
		d.t.Fatal(err)
	}
	return b
}

// accounts creates the account table with n accounts of balance 100.
func (d *database) accounts(n int) {
	d.t.Helper()
	d.exec("CREATE TABLE account (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, note VARCHAR(64) NULL)")
	var vals []string
	for i := 1; i <= n; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 100, NULL)", i))
	}
	d.exec("INSERT INTO account VALUES " + strings.Join(vals, ", "))
}

// settleCommits waits until no global transaction is COMMITTING (in its
// first phase-two round), for at most 20s.
func (e *env) settleCommits() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.admin.ListGlobals(context.Background(), &xactpb.ListGlobalsRequest{
			Statuses: []xactpb.GlobalStatus{xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING}, Limit: 1})
		if err != nil {
			e.t.Fatalf("ListGlobals: %v", err)
		}
		if len(resp.GetGlobals()) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("global %s still COMMITTING after 20s", resp.GetGlobals()[0].GetXid())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// global shows a global transaction (finished ones from their
// tombstone).
func (e *env) global(xid string) (*xactpb.GlobalTransaction, []*xactpb.Branch) {
	e.t.Helper()
	resp, err := e.admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
	if err != nil {
		e.t.Fatalf("ShowGlobal(%s): %v", xid, err)
	}
	return resp.GetGlobal(), resp.GetBranches()
}

// settled waits until xid is final or parked and returns it.
func (e *env) settled(xid string) *xactpb.GlobalTransaction {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g, _ := e.global(xid)
		switch g.GetStatus() {
		case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
			xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED:
			return g
		}
		if g.GetParked() {
			return g
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("global %s still %v after 20s (reason %q)", xid, g.GetStatus(), g.GetReason())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually retries check until it returns nil or 20s pass.
func eventually(t testing.TB, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var errRollback = fmt.Errorf("test: roll back")

// xidOf returns the XID in ctx or fails.
func xidOf(t testing.TB, ctx context.Context) string {
	t.Helper()
	xid, ok := tm.XID(ctx)
	if !ok {
		t.Fatal("no XID in context")
	}
	return xid
}
