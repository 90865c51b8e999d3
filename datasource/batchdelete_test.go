package datasource

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
	"github.com/xact-io/xact/undo"
)

// undoDeletes watches the undo-log deletions of phase-two commit that
// reach the database: it counts the statements and the branches each
// covers, and holds the first one until released.
type undoDeletes struct {
	mu       sync.Mutex
	batches  []int // branches per DELETE, in order
	entered  chan int
	release  chan struct{}
	holdOnce sync.Once
}

func (u *undoDeletes) seen(query string, nargs int) {
	if !strings.HasPrefix(query, "DELETE FROM `undo_log` WHERE (`xid` = ?") && query != undo.DeleteLogSQL {
		return
	}
	u.mu.Lock()
	u.batches = append(u.batches, nargs/2)
	u.mu.Unlock()
	u.holdOnce.Do(func() {
		u.entered <- nargs / 2
		<-u.release
	})
}

func (u *undoDeletes) counts() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]int(nil), u.batches...)
}

// watchConnector wraps a go-sql-driver/mysql connector; its connections
// forward every interface the driver's have and report statements to u.
type watchConnector struct {
	inner driver.Connector
	u     *undoDeletes
}

func (w watchConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := w.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &watchConn{Conn: c, u: w.u}, nil
}

func (w watchConnector) Driver() driver.Driver { return w.inner.Driver() }

type watchConn struct {
	driver.Conn
	u *undoDeletes
}

func (c *watchConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *watchConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	s, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &watchStmt{Stmt: s, q: q, u: c.u}, nil
}

func (c *watchConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.u.seen(q, len(args))
	}
	return res, err
}

func (c *watchConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *watchConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *watchConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *watchConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *watchConn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

type watchStmt struct {
	driver.Stmt
	q string
	u *undoDeletes
}

func (s *watchStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
	s.u.seen(s.q, len(args))
	return res, err
}

func (s *watchStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// batchSetup is n accounts in a database whose connector reports its
// undo-log DELETEs to u, and an RM with room for every branch's
// phase-two commit at once.
type batchSetup struct {
	e   *env
	c   *Connector
	db  *sql.DB
	raw *sql.DB
	u   *undoDeletes
}

func newBatchSetup(t *testing.T, n int, opts ...Option) *batchSetup {
	t.Helper()
	// No phase-two retries while a deletion is held.
	e := newEnv(t, tctest.WithConfig(func(c *tc.Config) { c.PhaseTwoTimeout = time.Minute }))
	r := rm.New(e.conn, rm.WithConcurrency(4*n), rm.WithActionTimeout(time.Minute), rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := mysqltest.Config(t)
	raw := mysqltest.Open(t, cfg)
	stmts := []string{undo.LogTableDDL, "CREATE TABLE account (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, note VARCHAR(64) NULL)"}
	var vals []string
	for i := 1; i <= n; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 100, NULL)", i))
	}
	stmts = append(stmts, "INSERT INTO account VALUES "+strings.Join(vals, ", "))
	for _, s := range stmts {
		if _, err := raw.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	inner, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u := &undoDeletes{entered: make(chan int, 1), release: make(chan struct{})}
	opts = append([]Option{WithRM(r), WithResourceID(ResourceID(cfg)), WithLockWait(time.Second, 5*time.Millisecond)}, opts...)
	c, err := NewConnector(watchConnector{inner: inner, u: u}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return &batchSetup{e: e, c: c, db: db, raw: raw, u: u}
}

// debitAll runs n globals at once, each debiting its own account by 1;
// it returns their XIDs and a wait for their results.
func (bs *batchSetup) debitAll(n int) ([]string, func() []error) {
	xids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = bs.e.tm.Do(context.Background(), tm.Options{Name: "batch", Timeout: time.Minute}, func(ctx context.Context) error {
				xids[i], _ = tm.XID(ctx)
				_, err := bs.db.ExecContext(ctx, "UPDATE account SET balance = balance - 1 WHERE id = ?", i+1)
				return err
			})
		}()
	}
	return xids, func() []error { wg.Wait(); return errs }
}

// TestUndoDeletesBatched: twenty globals commit at once. The first
// undo-log DELETE of phase two is held in the database driver while the
// other branches' commits queue behind it; released, the queued ones go
// in one DELETE. Every undo log is gone, every global COMMITTED, and the
// DELETE statements are fewer than the branches.
func TestUndoDeletesBatched(t *testing.T) {
	leakCheck(t)
	const n = 20
	bs := newBatchSetup(t, n, WithPhaseTwo(2, 4*n))
	e, c, raw, u := bs.e, bs.c, bs.raw, bs.u
	released := false
	release := func() {
		if !released {
			released = true
			close(u.release)
		}
	}
	t.Cleanup(release)

	xids, wait := bs.debitAll(n)
	// The first DELETE is in the driver, held; wait for every other
	// branch's commit to queue behind it.
	var first int
	select {
	case first = <-u.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no undo-log DELETE within 30s")
	}
	eventually(t, func() error {
		if q := len(c.del.reqs); q != n-first {
			return fmt.Errorf("%d deletions queued behind the held batch of %d, want %d", q, first, n-first)
		}
		return nil
	})
	release()
	for i, err := range wait() {
		if err != nil {
			t.Errorf("Do %d = %v", i, err)
		}
	}
	for _, xid := range xids {
		if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
			t.Errorf("global %s %v (%q), want COMMITTED", xid, g.GetStatus(), g.GetReason())
		}
	}
	var left int
	if err := raw.QueryRow("SELECT COUNT(*) FROM undo_log").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("undo_log has %d rows after every global committed, want 0", left)
	}
	var total int
	if err := raw.QueryRow("SELECT SUM(balance) FROM account").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != 100*n-n {
		t.Errorf("total balance = %d, want %d", total, 100*n-n)
	}
	batches := u.counts()
	t.Logf("undo-log DELETEs: %d, branches per statement %v", len(batches), batches)
	if len(batches) >= n {
		t.Errorf("%d DELETE statements for %d branches, want fewer (batched)", len(batches), n)
	}
	// The held batch, then the queue in one statement.
	if want := []int{first, n - first}; first < n && fmt.Sprint(batches) != fmt.Sprint(want) {
		t.Errorf("branches per DELETE = %v, want %v", batches, want)
	}
}

// TestUndoDeletesLinger: with a delete delay, the deleter waits after the
// first committed branch for more, up to its batch size: twenty globals
// committing at once are cleaned up by one DELETE.
func TestUndoDeletesLinger(t *testing.T) {
	leakCheck(t)
	const n = 20
	// The delay is far longer than the test: the batch runs because it is
	// full, not because time passed.
	bs := newBatchSetup(t, n, WithPhaseTwo(2, n), WithDeleteDelay(time.Hour))
	bs.u.holdOnce.Do(func() {}) // hold nothing
	xids, wait := bs.debitAll(n)
	for i, err := range wait() {
		if err != nil {
			t.Errorf("Do %d = %v", i, err)
		}
	}
	for _, xid := range xids {
		if g := bs.e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
			t.Errorf("global %s %v (%q), want COMMITTED", xid, g.GetStatus(), g.GetReason())
		}
	}
	if got, want := fmt.Sprint(bs.u.counts()), fmt.Sprint([]int{n}); got != want {
		t.Errorf("branches per DELETE = %s, want %s", got, want)
	}
	var left int
	if err := bs.raw.QueryRow("SELECT COUNT(*) FROM undo_log").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("undo_log has %d rows, want 0", left)
	}
}
