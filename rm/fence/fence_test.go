package fence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/rm"
)

func TestMain(m *testing.M) { mysqltest.Main(m) }

var errTryFailed = errors.New("try failed on purpose")

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

// fenceEnv is a database with the fence table and a table the business
// functions write to, without a coordinator.
type fenceEnv struct {
	t     *testing.T
	db    *sql.DB
	fence *Fence
}

func newFenceEnv(t *testing.T, opts ...Option) *fenceEnv {
	t.Helper()
	db := mysqltest.NewDB(t)
	f, err := New(db, append([]Option{WithCleanup(0, time.Hour)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE effects (id INT AUTO_INCREMENT PRIMARY KEY, xid VARCHAR(128), branch_id BIGINT, what VARCHAR(32))`); err != nil {
		t.Fatal(err)
	}
	return &fenceEnv{t: t, db: db, fence: f}
}

// effects returns what the business functions committed for b, in order.
func (e *fenceEnv) effects(b Branch) []string {
	e.t.Helper()
	rows, err := e.db.Query(`SELECT what FROM effects WHERE xid = ? AND branch_id = ? ORDER BY id`, b.XID, b.BranchID)
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
	return out
}

func effect(ctx context.Context, tx *sql.Tx, b Branch, what string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO effects (xid, branch_id, what) VALUES (?, ?, ?)`, b.XID, b.BranchID, what)
	return err
}

// TestFenceSequences runs sequences of fence steps on one branch and
// checks each step's result, the business effects and the final state.
func TestFenceSequences(t *testing.T) {
	e := newFenceEnv(t)
	type op struct {
		kind string // try, try-fail, confirm, cancel
		want error  // errors.Is; nil: success
		perm bool   // want rm.IsPermanent
	}
	tests := []struct {
		name        string
		ops         []op
		wantEffects []string
		wantStatus  Status
	}{
		{"try confirm confirm", []op{{"try", nil, false}, {"confirm", nil, false}, {"confirm", nil, false}},
			[]string{"try", "confirm"}, StatusConfirmed},
		{"try cancel cancel", []op{{"try", nil, false}, {"cancel", nil, false}, {"cancel", nil, false}},
			[]string{"try", "cancel:done"}, StatusCancelled},
		{"cancel before try", []op{{"cancel", nil, false}, {"try", ErrTryAfterCancel, false}, {"cancel", nil, false}},
			nil, StatusSuspended},
		{"failed try then cancel", []op{{"try-fail", errTryFailed, false}, {"cancel", nil, false}, {"cancel", nil, false}},
			[]string{"cancel:failed"}, StatusCancelled},
		{"failed try then retry", []op{{"try-fail", errTryFailed, false}, {"try", nil, false}, {"confirm", nil, false}},
			[]string{"try", "confirm"}, StatusConfirmed},
		{"try twice", []op{{"try", nil, false}, {"try", ErrAlreadyTried, false}},
			[]string{"try"}, StatusTried},
		{"try after cancel of a tried branch", []op{{"try", nil, false}, {"cancel", nil, false}, {"try", ErrTryAfterCancel, false}},
			[]string{"try", "cancel:done"}, StatusCancelled},
		{"confirm without try", []op{{"confirm", ErrNotTried, true}},
			nil, StatusNone},
		{"confirm of failed try", []op{{"try-fail", errTryFailed, false}, {"confirm", ErrConflict, true}},
			nil, StatusTryFailed},
		{"cancel after confirm", []op{{"try", nil, false}, {"confirm", nil, false}, {"cancel", ErrConflict, true}},
			[]string{"try", "confirm"}, StatusConfirmed},
		{"confirm after cancel", []op{{"try", nil, false}, {"cancel", nil, false}, {"confirm", ErrConflict, true}},
			[]string{"try", "cancel:done"}, StatusCancelled},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := Branch{XID: fmt.Sprintf("test:%d", i), BranchID: 1, Resource: "res"}
			for j, o := range tt.ops {
				var err error
				switch o.kind {
				case "try", "try-fail":
					err = e.fence.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error {
						if err := effect(ctx, tx, b, "try"); err != nil {
							return err
						}
						if o.kind == "try-fail" {
							return errTryFailed
						}
						return nil
					}, func(ctx context.Context, tx *sql.Tx) error { return effect(ctx, tx, b, "cancel:failed") })
				case "confirm":
					err = e.fence.Confirm(ctx, b, func(ctx context.Context, tx *sql.Tx) error { return effect(ctx, tx, b, "confirm") })
				case "cancel":
					err = e.fence.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, try TryOutcome) error {
						return effect(ctx, tx, b, "cancel:"+try.String())
					})
				}
				if !errors.Is(err, o.want) || (o.want == nil) != (err == nil) {
					t.Fatalf("op %d (%s) error = %v, want %v", j, o.kind, err, o.want)
				}
				if got := rm.IsPermanent(err); got != o.perm {
					t.Errorf("op %d (%s): IsPermanent(%v) = %v, want %v", j, o.kind, err, got, o.perm)
				}
			}
			if got := e.effects(b); !slices.Equal(got, tt.wantEffects) {
				t.Errorf("effects = %q, want %q", got, tt.wantEffects)
			}
			st, err := e.fence.Status(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if st != tt.wantStatus {
				t.Errorf("status = %v, want %v", st, tt.wantStatus)
			}
		})
	}
}

// TestFenceConcurrentCancels runs many Cancels of one branch at once, in
// each fence state that Cancel acts on: exactly one runs the business
// Cancel (none for an empty rollback), and all succeed.
func TestFenceConcurrentCancels(t *testing.T) {
	e := newFenceEnv(t)
	tests := []struct {
		name        string
		setup       string // "", "try", "try-fail"
		wantEffects []string
		wantStatus  Status
	}{
		{"empty rollback", "", nil, StatusSuspended},
		{"after try", "try", []string{"try", "cancel:done"}, StatusCancelled},
		{"after failed try", "try-fail", []string{"cancel:failed"}, StatusCancelled},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := Branch{XID: fmt.Sprintf("concurrent:%d", i), BranchID: 7, Resource: "res"}
			if tt.setup != "" {
				err := e.fence.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error {
					if tt.setup == "try-fail" {
						return errTryFailed
					}
					return effect(ctx, tx, b, "try")
				}, nil)
				if (err != nil) != (tt.setup == "try-fail") {
					t.Fatalf("Try: %v", err)
				}
			}
			const n = 16
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = e.fence.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, try TryOutcome) error {
						return effect(ctx, tx, b, "cancel:"+try.String())
					})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Cancel %d: %v", i, err)
				}
			}
			if got := e.effects(b); !slices.Equal(got, tt.wantEffects) {
				t.Errorf("effects = %q, want %q", got, tt.wantEffects)
			}
			if st, _ := e.fence.Status(ctx, b); st != tt.wantStatus {
				t.Errorf("status = %v, want %v", st, tt.wantStatus)
			}
		})
	}
}

// TestFenceFailedTryAfterEmptyCancel covers the fallback of a failed Try
// whose transaction could not record the failure: if a Cancel ran as an
// empty rollback in between, the business Cancel runs once, there.
func TestFenceFailedTryAfterEmptyCancel(t *testing.T) {
	e := newFenceEnv(t)
	ctx := context.Background()
	b := Branch{XID: "fallback:1", BranchID: 3, Resource: "res"}
	if err := e.fence.Cancel(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	cancelFailed := func(ctx context.Context, tx *sql.Tx) error { return effect(ctx, tx, b, "cancel:failed") }
	for i := range 2 { // the second finds it settled
		if err := e.fence.recordFailedTry(ctx, b, cancelFailed); err != nil {
			t.Fatalf("recordFailedTry %d: %v", i, err)
		}
	}
	if got, want := e.effects(b), []string{"cancel:failed"}; !slices.Equal(got, want) {
		t.Errorf("effects = %q, want %q", got, want)
	}
	if st, _ := e.fence.Status(ctx, b); st != StatusCancelled {
		t.Errorf("status = %v, want %v", st, StatusCancelled)
	}
	// Without a prior Cancel the fallback records try-failed.
	b2 := Branch{XID: "fallback:2", BranchID: 3, Resource: "res"}
	if err := e.fence.recordFailedTry(ctx, b2, cancelFailed); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.fence.Status(ctx, b2); st != StatusTryFailed {
		t.Errorf("status = %v, want %v", st, StatusTryFailed)
	}
}

// TestFenceTryRollsBackOnPanic: a Try that panics leaves no row and no
// business change.
func TestFenceTryRollsBackOnPanic(t *testing.T) {
	e := newFenceEnv(t)
	ctx := context.Background()
	b := Branch{XID: "panic:1", BranchID: 1, Resource: "res"}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Try did not propagate the panic")
			}
		}()
		_ = e.fence.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error {
			if err := effect(ctx, tx, b, "try"); err != nil {
				return err
			}
			panic("boom")
		}, nil)
	}()
	if got := e.effects(b); len(got) != 0 {
		t.Errorf("effects = %q, want none", got)
	}
	if st, _ := e.fence.Status(ctx, b); st != StatusNone {
		t.Errorf("status = %v, want %v", st, StatusNone)
	}
}

func TestFenceCleanup(t *testing.T) {
	e := newFenceEnv(t)
	ctx := context.Background()
	// One row per status, all made old, and one fresh confirmed row.
	statuses := []Status{StatusTried, StatusConfirmed, StatusCancelled, StatusSuspended, StatusTryFailed}
	for i, st := range statuses {
		if _, err := e.db.Exec(`INSERT INTO tcc_fence_log VALUES (?, 1, 'res', ?, UTC_TIMESTAMP(3) - INTERVAL 2 HOUR, UTC_TIMESTAMP(3) - INTERVAL 2 HOUR)`,
			fmt.Sprintf("old:%d", i), st); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.Exec(`INSERT INTO tcc_fence_log VALUES ('fresh', 1, 'res', 2, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))`); err != nil {
		t.Fatal(err)
	}
	n, err := e.fence.Cleanup(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Cleanup deleted %d rows, want 3", n)
	}
	var left []Status
	rows, err := e.db.Query(`SELECT status FROM tcc_fence_log ORDER BY xid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var st Status
		if err := rows.Scan(&st); err != nil {
			t.Fatal(err)
		}
		left = append(left, st)
	}
	// fresh (confirmed), old:0 (tried), old:4 (try-failed)
	if want := []Status{StatusConfirmed, StatusTried, StatusTryFailed}; !slices.Equal(left, want) {
		t.Errorf("rows left = %v, want %v", left, want)
	}
	if _, err := e.fence.Cleanup(ctx, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Cleanup(0) error = %v, want %v", err, ErrInvalidArgument)
	}
}

// TestFenceCleanupLoop: the loop deletes old rows in batches and stops at
// Close.
func TestFenceCleanupLoop(t *testing.T) {
	e := newFenceEnv(t)
	f, err := New(e.db, WithCleanup(20*time.Millisecond, time.Millisecond), WithCleanupBatch(2))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := e.db.Exec(`INSERT INTO tcc_fence_log VALUES (?, 1, 'res', 3, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))`, fmt.Sprintf("loop:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		var n int
		if err := e.db.QueryRow(`SELECT COUNT(*) FROM tcc_fence_log`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, func() error {
		if n := count(); n != 0 {
			return fmt.Errorf("%d rows left", n)
		}
		return nil
	})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(`INSERT INTO tcc_fence_log VALUES ('after-close', 1, 'res', 3, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR, UTC_TIMESTAMP(3) - INTERVAL 1 HOUR)`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := count(); n != 1 {
		t.Errorf("after Close: %d rows, want 1 (the loop must have stopped)", n)
	}
	if err := f.Cancel(context.Background(), Branch{XID: "x", BranchID: 1, Resource: "r"}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Cancel after Close = %v, want %v", err, ErrClosed)
	}
}

func TestNewErrors(t *testing.T) {
	db := &sql.DB{}
	tests := []struct {
		name string
		db   *sql.DB
		opts []Option
	}{
		{"nil db", nil, nil},
		{"negative interval", db, []Option{WithCleanup(-1, time.Hour)}},
		{"zero retention", db, []Option{WithCleanup(time.Hour, 0)}},
		{"zero batch", db, []Option{WithCleanupBatch(0)}},
		{"nil logger", db, []Option{WithLogger(nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New(tt.db, tt.opts...)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("New() error = %v, want %v", err, ErrInvalidArgument)
			}
			if f != nil {
				f.Close()
			}
		})
	}
}
