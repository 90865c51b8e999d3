package tcc

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

// env is a coordinator, a connection to it, a transaction manager, and a
// participant database with the fence table and a stock table.
type env struct {
	t     *testing.T
	srv   *tctest.Server
	conn  *grpc.ClientConn
	tm    *tm.Manager
	admin xactpb.AdminClient
	db    *sql.DB
	fence *fence.Fence
}

func newEnv(t *testing.T, opts ...tctest.Option) *env {
	t.Helper()
	opts = append([]tctest.Option{tctest.WithConfig(func(c *tc.Config) { c.RetryBudget = 1000; c.DecisionWait = 500 * time.Millisecond })}, opts...)
	srv := tctest.Start(t, opts...)
	conn := srv.Conn(t)
	e := &env{t: t, srv: srv, conn: conn, tm: tm.New(conn), admin: xactpb.NewAdminClient(conn)}
	e.db = mysqltest.NewDB(t)
	f, err := fence.New(e.db, fence.WithCleanup(0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e.fence = f
	ctx := context.Background()
	if err := f.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	e.exec(`CREATE TABLE stock (sku VARCHAR(32) PRIMARY KEY, free INT NOT NULL, frozen INT NOT NULL, sold INT NOT NULL)`)
	e.exec(`INSERT INTO stock VALUES ('apple', 10, 0, 0)`)
	return e
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// newRM starts an rm.Client; the caller registers resources on it before
// or after. It is closed at cleanup (Close is idempotent).
func (e *env) newRM(t *testing.T) *rm.Client {
	t.Helper()
	c := rm.New(e.conn, rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	t.Cleanup(func() { c.Close() })
	return c
}

func start(t *testing.T, c *rm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("rm Start: %v", err)
	}
}

type stock struct{ free, frozen, sold int }

func (e *env) stock() stock {
	e.t.Helper()
	var s stock
	if err := e.db.QueryRow(`SELECT free, frozen, sold FROM stock WHERE sku = 'apple'`).Scan(&s.free, &s.frozen, &s.sold); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// finalStatus waits until xid's global transaction reaches a final
// status, or is parked, and returns it.
func (e *env) finalStatus(xid string) *xactpb.GlobalTransaction {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
		if err != nil {
			e.t.Fatalf("ShowGlobal(%s): %v", xid, err)
		}
		g := resp.GetGlobal()
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
func eventually(t *testing.T, check func() error) {
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

// fenceStatus reads the fence state of a branch.
func (e *env) fenceStatus(b Branch) fence.Status {
	e.t.Helper()
	st, err := e.fence.Status(context.Background(), b)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// branches returns the branches of an unfinished global.
func (e *env) branches(xid string) []*xactpb.Branch {
	e.t.Helper()
	resp, err := e.admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
	if err != nil {
		e.t.Fatalf("ShowGlobal(%s): %v", xid, err)
	}
	return resp.GetBranches()
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
