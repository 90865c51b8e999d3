package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// TestPhaseTwoPool: the phase-two pool follows the application's pool
// (at least DefaultPhaseTwoConns; rm.DefaultConcurrency when the
// application's is unlimited or unknown) unless WithPhaseTwo fixes it,
// and its connections bound their lock waits.
func TestPhaseTwoPool(t *testing.T) {
	leakCheck(t)
	cfg := mysqltest.Config(t)
	open := func(opts ...Option) *Connector {
		t.Helper()
		inner, err := gomysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewConnector(inner, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	size := func(c *Connector) int {
		c.sizePhaseTwo() // what each rollback does first
		return c.p2.Stats().MaxOpenConnections
	}

	c := open()
	if got := size(c); got != rm.DefaultConcurrency {
		t.Errorf("pool size with an unknown application pool = %d, want %d", got, rm.DefaultConcurrency)
	}
	c.Close()

	c = open(WithPhaseTwoLockWait(1500 * time.Millisecond))
	db := OpenDB(c)
	defer db.Close()
	for _, tt := range []struct{ app, want int }{
		{0, rm.DefaultConcurrency}, // unlimited
		{40, 40},
		{4, DefaultPhaseTwoConns},
		{16, 16},
	} {
		db.SetMaxOpenConns(tt.app)
		if got := size(c); got != tt.want {
			t.Errorf("application pool %d: phase-two pool %d, want %d", tt.app, got, tt.want)
		}
	}
	var innodb, mdl int
	if err := c.p2.QueryRow("SELECT @@SESSION.innodb_lock_wait_timeout, @@SESSION.lock_wait_timeout").Scan(&innodb, &mdl); err != nil {
		t.Fatal(err)
	}
	if innodb != 2 || mdl != 2 {
		t.Errorf("phase-two session lock waits = %d, %d s, want 2, 2 (1.5s rounded up)", innodb, mdl)
	}

	c = open(WithPhaseTwo(3, 10))
	db = OpenDB(c)
	defer db.Close()
	db.SetMaxOpenConns(50)
	if got := size(c); got != 3 {
		t.Errorf("WithPhaseTwo(3): pool %d, want 3", got)
	}
}

// p2Recorder is the AT phase-two handler with a record of every rollback's
// answer, per XID, in order.
type p2Recorder struct {
	h rm.Handler

	mu      sync.Mutex
	answers map[string][]error
	changed chan struct{} // closed at every answer
}

func newP2Recorder(h rm.Handler) *p2Recorder {
	return &p2Recorder{h: h, answers: map[string][]error{}, changed: make(chan struct{})}
}

func (r *p2Recorder) Commit(ctx context.Context, a rm.Action) error { return r.h.Commit(ctx, a) }

func (r *p2Recorder) Rollback(ctx context.Context, a rm.Action) error {
	err := r.h.Rollback(ctx, a)
	r.mu.Lock()
	r.answers[a.XID] = append(r.answers[a.XID], err)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return err
}

// state returns the answers so far and a channel closed at the next one.
func (r *p2Recorder) state() (map[string][]error, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string][]error, len(r.answers))
	for k, v := range r.answers {
		m[k] = append([]error(nil), v...)
	}
	return m, r.changed
}

// answerOf is what the RM answers the TC for a handler's error.
func answerOf(err error) string {
	switch {
	case err == nil:
		return "DONE"
	case rm.IsPermanent(err):
		return "FAILED"
	}
	return "UNKNOWN"
}

// TestPhaseTwoRollbacksDoNotStarve (issue 9): rollbacks blocked on row
// locks held by the application's transactions must neither take every
// phase-two connection nor hang. More rollbacks than the old fixed pool
// (8) wait for rows that several local transactions hold; (a) rollbacks
// of other branches, on free rows, still finish while those wait; (b) the
// blocked ones give up at the phase-two lock wait with an unknown outcome
// (not DONE, not FAILED: the TC retries, nothing is parked) and succeed on
// a retry once the rows are released.
func TestPhaseTwoRollbacksDoNotStarve(t *testing.T) {
	const (
		stuck   = 12 // > 8, the old pool size
		free    = 3
		holders = 4 // local transactions holding the stuck rows
	)
	leakCheck(t)
	// The TC waits for the RM's answer longer than the RM's action
	// deadline (10s, newEnv), so that it does not deliver an action again
	// while it runs.
	e := newEnv(t, tctest.WithConfig(func(c *tc.Config) { c.PhaseTwoTimeout = 30 * time.Second }))
	d := e.newDB(t, nil) // the default phase-two pool and lock wait
	rec := newP2Recorder(&handler{c: d.c})
	if err := e.rm.Serve(d.resource, xactpb.BranchType_BRANCH_TYPE_AT, rec); err != nil {
		t.Fatal(err)
	}
	d.accounts(stuck + free)
	ctx := context.Background()

	// One global transaction per row, each with one branch that debited
	// its row and committed locally.
	xids := make([]string, stuck+free)
	for i := range xids {
		gctx, xid, err := e.tm.Begin(ctx, "starve", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := debit(gctx, d, i+1, 1); err != nil {
			t.Fatalf("debit %d: %v", i+1, err)
		}
		xids[i] = xid
	}
	stuckXIDs, freeXIDs := xids[:stuck], xids[stuck:]

	// Several local transactions of the application hold the rows of the
	// first `stuck` branches.
	var holds []*sql.Tx
	for h := 0; h < holders; h++ {
		tx, err := d.raw.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		var ids []string
		for id := h + 1; id <= stuck; id += holders {
			ids = append(ids, fmt.Sprint(id))
		}
		if _, err := tx.ExecContext(ctx, "SELECT id FROM account WHERE id IN ("+strings.Join(ids, ",")+") FOR UPDATE"); err != nil {
			t.Fatal(err)
		}
		holds = append(holds, tx)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	rollback := func(xid string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if st, err := e.tm.Rollback(rctx, xid); err != nil {
				t.Errorf("Rollback(%s) = %v, %v", xid, st, err)
			}
		}()
	}
	answered := func(answers map[string][]error, xids []string) (n int) {
		for _, x := range xids {
			if len(answers[x]) > 0 {
				n++
			}
		}
		return n
	}
	waiting := func() int {
		var n int
		err := d.raw.QueryRow(`SELECT COUNT(*) FROM information_schema.INNODB_TRX t
			JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
			WHERE t.trx_state = 'LOCK WAIT' AND p.DB = ?`, d.cfg.DBName).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Every stuck rollback reaches the database and waits there, before
	// any of them gives up.
	for _, x := range stuckXIDs {
		rollback(x)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		answers, _ := rec.state()
		n := waiting()
		if n == stuck {
			break
		}
		if k := answered(answers, stuckXIDs); k > 0 || time.Now().After(deadline) {
			t.Fatalf("only %d of %d blocked rollbacks got a phase-two connection and waited for their rows before %d of them answered (pool %d)",
				n, stuck, k, d.c.p2.Stats().MaxOpenConnections)
		}
		// InnoDB refreshes what INNODB_TRX shows only when it was not
		// read for 100ms: poll slower than that.
		time.Sleep(150 * time.Millisecond)
	}

	// (a) Rollbacks on free rows finish while the others wait.
	start := time.Now()
	for _, x := range freeXIDs {
		rollback(x)
	}
	for {
		answers, changed := rec.state()
		if k := answered(answers, stuckXIDs); k > 0 {
			t.Fatalf("(a) %d blocked rollbacks answered before the %d free ones finished (%d did)", k, free, answered(answers, freeXIDs))
		}
		if answered(answers, freeXIDs) == free {
			for _, x := range freeXIDs {
				if got := answerOf(answers[x][0]); got != "DONE" {
					t.Fatalf("(a) rollback of %s on a free row: %s (%v), want DONE", x, got, answers[x][0])
				}
			}
			break
		}
		<-changed
	}
	t.Logf("(a) %d rollbacks on free rows done in %v while %d waited for locks", free, time.Since(start), stuck)
	for i := stuck + 1; i <= stuck+free; i++ {
		if got := d.balance(i); got != 100 {
			t.Errorf("balance %d = %d after its rollback, want 100", i, got)
		}
	}

	// (b) The blocked ones give up at the lock wait: UNKNOWN, with the
	// server's lock-wait timeout as the reason.
	for {
		answers, changed := rec.state()
		if answered(answers, stuckXIDs) == stuck {
			for _, x := range stuckXIDs {
				err := answers[x][0]
				if got := answerOf(err); got != "UNKNOWN" || errno.Of(err) != errno.LockWaitTimeout {
					t.Errorf("(b) first rollback of %s: %s (%v), want UNKNOWN from a lock-wait timeout (1205)", x, got, err)
				}
			}
			break
		}
		<-changed
	}
	t.Logf("(b) %d blocked rollbacks answered UNKNOWN after %v", stuck, time.Since(start))
	for _, x := range stuckXIDs {
		if g, _ := e.global(x); g.GetParked() || !tm.DecidedRollback(g.GetStatus()) {
			t.Errorf("(b) global %s: %v parked=%v, want a rollback in progress, not parked", x, g.GetStatus(), g.GetParked())
		}
	}

	// Released, the TC's retries compensate them.
	for _, tx := range holds {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range stuckXIDs {
		if g := e.settled(x); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
			t.Errorf("global %s: %v parked=%v (%q), want ROLLBACKED", x, g.GetStatus(), g.GetParked(), g.GetReason())
		}
	}
	answers, _ := rec.state()
	for _, x := range stuckXIDs {
		if a := answers[x]; answerOf(a[len(a)-1]) != "DONE" {
			t.Errorf("last rollback of %s: %v, want DONE", x, a[len(a)-1])
		}
	}
	for i := 1; i <= stuck+free; i++ {
		if got := d.balance(i); got != 100 {
			t.Errorf("balance %d = %d, want 100", i, got)
		}
	}
	if n, _ := d.undoLogs(); n != 0 {
		t.Errorf("undo logs left: %d", n)
	}
}

// TestPhaseTwoDeadlineInterrupts: a rollback whose action context ends
// while its statement waits for a lock returns then, with an unknown
// outcome; the driver closed the connection to interrupt the statement,
// and the pool discards it instead of handing it out again. Once the row
// is free, a retry compensates the branch.
func TestPhaseTwoDeadlineInterrupts(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil, WithPhaseTwoLockWait(time.Hour)) // only the deadline can end the wait
	d.accounts(1)
	ctx := context.Background()
	gctx, xid, err := e.tm.Begin(ctx, "deadline", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := debit(gctx, d, 1, 30); err != nil {
		t.Fatal(err)
	}
	_, branches := e.global(xid)
	a := action(branches[0])
	hold, err := d.raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(ctx, "SELECT id FROM account WHERE id = 1 FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	h := &handler{c: d.c}
	actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = h.Rollback(actx, a)
	cancel()
	if answerOf(err) != "UNKNOWN" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Rollback past its deadline = %v (%s), want UNKNOWN with context.DeadlineExceeded", err, answerOf(err))
	}
	if st := d.c.p2.Stats(); st.OpenConnections != 0 {
		t.Errorf("phase-two pool after the interrupted rollback: %d open (%d idle), want the connection discarded", st.OpenConnections, st.Idle)
	}

	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := h.Rollback(rctx, a); err != nil {
		t.Fatalf("Rollback once the row is free = %v", err)
	}
	if got := d.balance(1); got != 100 {
		t.Errorf("balance = %d, want 100", got)
	}
	if _, err := e.tm.Rollback(ctx, xid); err != nil {
		t.Errorf("tm Rollback = %v", err)
	}
}
