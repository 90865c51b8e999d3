package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		// A child process of a crash test (see crash_test.go).
		os.Exit(child(role))
	}
	mysqltest.Main(m)
}

// Trip is the saga state of the tests. Each step appends its name to Done;
// the step named FailAt fails (after writing its effect, which its
// rollback must discard).
type Trip struct {
	User   string   `json:"user"`
	Done   []string `json:"done,omitempty"`
	FailAt string   `json:"fail_at,omitempty"`
}

var errStep = errors.New("step failed on purpose")

const effectsDDL = `CREATE TABLE IF NOT EXISTS effects (
  id   BIGINT AUTO_INCREMENT PRIMARY KEY,
  xid  VARCHAR(128) NOT NULL,
  step VARCHAR(32) NOT NULL,
  kind VARCHAR(8) NOT NULL
)`

// compCall is one compensation call seen by a test.
type compCall struct {
	Step      string
	Status    saga.StepStatus
	HasOutput bool
}

// recorder keeps the compensation calls of one test.
type recorder struct {
	mu    sync.Mutex
	calls []compCall
	slow  time.Duration // each compensation sleeps this long in its transaction
}

func (r *recorder) get() []compCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// fencedSteps are steps a, b, c on db: each action writes a "do" effect,
// each compensation of a step whose action committed writes an "undo"
// effect, in the same transaction as the fence row.
func fencedSteps(f *fence.Fence, rec *recorder, slowDo time.Duration, opts ...saga.StepOption) []saga.StepDef[Trip] {
	var steps []saga.StepDef[Trip]
	for _, name := range []string{"a", "b", "c"} {
		action := func(ctx context.Context, tx *sql.Tx, t Trip) (Trip, error) {
			info, _ := saga.StepFrom(ctx)
			if _, err := tx.ExecContext(ctx, `INSERT INTO effects (xid, step, kind) VALUES (?, ?, 'do')`, info.XID, name); err != nil {
				return t, err
			}
			if slowDo > 0 {
				time.Sleep(slowDo)
			}
			if t.FailAt == name {
				return t, errStep
			}
			t.Done = append(t.Done, name)
			return t, nil
		}
		compensate := func(ctx context.Context, tx *sql.Tx, r saga.Record[Trip]) error {
			rec.mu.Lock()
			rec.calls = append(rec.calls, compCall{r.Step, r.Status, r.Output != nil})
			slow := rec.slow
			rec.mu.Unlock()
			if r.Status != saga.StepDone {
				return nil // the action's transaction rolled back
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO effects (xid, step, kind) VALUES (?, ?, 'undo')`, r.XID, r.Step); err != nil {
				return err
			}
			if slow > 0 {
				time.Sleep(slow)
			}
			return nil
		}
		steps = append(steps, saga.FencedStep(name, f, action, compensate, opts...))
	}
	return steps
}

// env is a coordinator, a participant database, a transaction manager.
type env struct {
	t     *testing.T
	srv   *tctest.Server
	conn  *grpc.ClientConn
	tm    *tm.Manager
	admin xactpb.AdminClient
	db    *sql.DB
	dsn   string
	fence *fence.Fence
}

func newEnv(t *testing.T, opts ...tctest.Option) *env {
	t.Helper()
	opts = append([]tctest.Option{tctest.WithConfig(func(c *tc.Config) {
		c.RetryBudget = 1000
		c.DecisionWait = 500 * time.Millisecond
	})}, opts...)
	srv := tctest.Start(t, opts...)
	conn := srv.Conn(t)
	e := &env{t: t, srv: srv, conn: conn, tm: tm.New(conn), admin: xactpb.NewAdminClient(conn)}
	cfg := mysqltest.Config(t)
	e.dsn = cfg.FormatDSN()
	e.db = mysqltest.Open(t, cfg)
	f, err := fence.New(e.db, fence.WithCleanup(0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e.fence = f
	if err := f.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(effectsDDL); err != nil {
		t.Fatal(err)
	}
	return e
}

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

// effects returns xid's effects in the order they committed: "do:a",
// "undo:a", ...
func (e *env) effects(xid string) []string {
	e.t.Helper()
	rows, err := e.db.Query(`SELECT kind, step FROM effects WHERE xid = ? ORDER BY id`, xid)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var kind, step string
		if err := rows.Scan(&kind, &step); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, kind+":"+step)
	}
	return out
}

// finalStatus waits until xid's global transaction is final or parked.
func (e *env) finalStatus(xid string) *xactpb.GlobalTransaction {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := e.admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid})
		if err != nil {
			e.t.Fatalf("ShowGlobal(%s): %v", xid, err)
		}
		g := resp.GetGlobal()
		if final(g.GetStatus()) || g.GetParked() {
			return g
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("global %s still %v after 30s (reason %q)", xid, g.GetStatus(), g.GetReason())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func final(s xactpb.GlobalStatus) bool {
	switch s {
	case xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
		xactpb.GlobalStatus_GLOBAL_STATUS_TIMEOUT_ROLLBACKED:
		return true
	}
	return false
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

func fenceStatus(t *testing.T, f *fence.Fence, xid string, id int64) fence.Status {
	t.Helper()
	st, err := f.Status(context.Background(), fence.Branch{XID: xid, BranchID: id, Resource: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
