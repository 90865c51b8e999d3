package tcc

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// Reserve is the request of the stock participant. Fail makes its Try
// fail after it changed the stock, so that the rollback of that change is
// visible.
type Reserve struct {
	SKU  string `json:"sku"`
	N    int    `json:"n"`
	Fail bool   `json:"fail,omitempty"`
}

var (
	errInsufficient = errors.New("insufficient stock")
	errTryFailed    = errors.New("try failed on purpose")
	errBusiness     = errors.New("business error after try")
)

// calls counts the business functions a participant ran.
type calls struct {
	mu       sync.Mutex
	try      int
	confirm  int
	cancel   int
	outcomes []TryOutcome // of each Cancel
}

func (c *calls) add(what string, o TryOutcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch what {
	case "try":
		c.try++
	case "confirm":
		c.confirm++
	case "cancel":
		c.cancel++
		c.outcomes = append(c.outcomes, o)
	}
}

func (c *calls) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.try, c.confirm, c.cancel, c.outcomes = 0, 0, 0, nil
}

type callCounts struct {
	Try, Confirm, Cancel int
	Outcomes             []TryOutcome
}

func (c *calls) get() callCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return callCounts{c.try, c.confirm, c.cancel, slices.Clone(c.outcomes)}
}

func (a callCounts) equal(b callCounts) bool {
	return a.Try == b.Try && a.Confirm == b.Confirm && a.Cancel == b.Cancel && slices.Equal(a.Outcomes, b.Outcomes)
}

// stockFuncs is a stock reservation on the env's database.
func stockFuncs(c *calls) FencedFuncs[Reserve] {
	return FencedFuncs[Reserve]{
		Try: func(ctx context.Context, tx *sql.Tx, r Reserve) error {
			c.add("try", 0)
			res, err := tx.ExecContext(ctx, `UPDATE stock SET free = free - ?, frozen = frozen + ? WHERE sku = ? AND free >= ?`, r.N, r.N, r.SKU, r.N)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errInsufficient
			}
			if r.Fail {
				return errTryFailed
			}
			return nil
		},
		Confirm: func(ctx context.Context, tx *sql.Tx, r Reserve) error {
			c.add("confirm", 0)
			_, err := tx.ExecContext(ctx, `UPDATE stock SET frozen = frozen - ?, sold = sold + ? WHERE sku = ?`, r.N, r.N, r.SKU)
			return err
		},
		Cancel: func(ctx context.Context, tx *sql.Tx, r Reserve, try TryOutcome) error {
			c.add("cancel", try)
			if try == TryFailed {
				return nil // the Try's change was rolled back with it
			}
			_, err := tx.ExecContext(ctx, `UPDATE stock SET free = free + ?, frozen = frozen - ? WHERE sku = ?`, r.N, r.N, r.SKU)
			return err
		},
	}
}

// TestFencedTCC runs whole global transactions with a fenced participant
// on MariaDB and checks the stock, the fence and the business calls.
func TestFencedTCC(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		fn         func(ctx context.Context, r *Resource[Reserve]) error
		wantErr    error
		wantStatus xactpb.GlobalStatus
		wantStock  stock
		wantFence  fence.Status
		wantCalls  callCounts
	}{
		{
			name:       "commit",
			fn:         func(ctx context.Context, r *Resource[Reserve]) error { return r.Try(ctx, Reserve{SKU: "apple", N: 2}) },
			wantStatus: xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED,
			wantStock:  stock{8, 0, 2},
			wantFence:  fence.StatusConfirmed,
			wantCalls:  callCounts{Try: 1, Confirm: 1},
		},
		{
			name: "caller fails after try",
			fn: func(ctx context.Context, r *Resource[Reserve]) error {
				if err := r.Try(ctx, Reserve{SKU: "apple", N: 2}); err != nil {
					return err
				}
				return errBusiness
			},
			wantErr:    errBusiness,
			wantStatus: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
			wantStock:  stock{10, 0, 0},
			wantFence:  fence.StatusCancelled,
			wantCalls:  callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryDone}},
		},
		{
			name: "try fails after changing stock",
			fn: func(ctx context.Context, r *Resource[Reserve]) error {
				return r.Try(ctx, Reserve{SKU: "apple", N: 3, Fail: true})
			},
			wantErr:    errTryFailed,
			wantStatus: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
			wantStock:  stock{10, 0, 0},
			wantFence:  fence.StatusCancelled,
			wantCalls:  callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryFailed}},
		},
		{
			name:       "insufficient stock",
			fn:         func(ctx context.Context, r *Resource[Reserve]) error { return r.Try(ctx, Reserve{SKU: "apple", N: 20}) },
			wantErr:    errInsufficient,
			wantStatus: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
			wantStock:  stock{10, 0, 0},
			wantFence:  fence.StatusCancelled,
			wantCalls:  callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryFailed}},
		},
		{
			// The failure report makes the TC refuse the commit (I3).
			name: "caller ignores failed try and commits",
			fn: func(ctx context.Context, r *Resource[Reserve]) error {
				_ = r.Try(ctx, Reserve{SKU: "apple", N: 3, Fail: true})
				return nil
			},
			wantErr:    tm.ErrRolledBack,
			wantStatus: xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED,
			wantStock:  stock{10, 0, 0},
			wantFence:  fence.StatusCancelled,
			wantCalls:  callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryFailed}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.exec(`UPDATE stock SET free = 10, frozen = 0, sold = 0`)
			c := &calls{}
			rmc := e.newRM(t)
			res, err := RegisterFenced(rmc, "reserve-stock", e.fence, stockFuncs(c))
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmc)
			var b Branch
			err = e.tm.Do(context.Background(), tm.Options{Name: t.Name()}, func(ctx context.Context) error {
				xid, _ := tm.XID(ctx)
				b = Branch{XID: xid, BranchID: 1, Resource: res.Name()}
				return tt.fn(ctx, res)
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Do() error = %v, want %v", err, tt.wantErr)
			}
			g := e.finalStatus(b.XID)
			if got := g.GetStatus(); got != tt.wantStatus {
				t.Errorf("global status = %v, want %v (reason %q)", got, tt.wantStatus, g.GetReason())
			}
			if got := e.stock(); got != tt.wantStock {
				t.Errorf("stock = %+v, want %+v", got, tt.wantStock)
			}
			if got := e.fenceStatus(b); got != tt.wantFence {
				t.Errorf("fence = %v, want %v", got, tt.wantFence)
			}
			if got := c.get(); !got.equal(tt.wantCalls) {
				t.Errorf("calls = %+v, want %+v", got, tt.wantCalls)
			}
		})
	}
}

// TestCancelBeforeTry rolls the global back between the branch's
// registration and its Try: the Cancel arrives first and is an empty
// rollback, and the late Try is refused without running.
func TestCancelBeforeTry(t *testing.T) {
	e := newEnv(t)
	c := &calls{}
	rmc := e.newRM(t)
	res, err := RegisterFenced(rmc, "reserve-stock", e.fence, stockFuncs(c))
	if err != nil {
		t.Fatal(err)
	}
	start(t, rmc)
	res.afterRegister = func(ctx context.Context, b Branch) {
		if _, err := e.tm.Rollback(ctx, b.XID); err != nil {
			t.Errorf("Rollback: %v", err)
		}
		eventually(t, func() error {
			if got := e.fenceStatus(b); got != fence.StatusSuspended {
				return errorf("fence = %v, want %v", got, fence.StatusSuspended)
			}
			return nil
		})
	}
	var xid string
	err = e.tm.Do(context.Background(), tm.Options{Name: "late-try"}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		return res.Try(ctx, Reserve{SKU: "apple", N: 2})
	})
	if !errors.Is(err, ErrTryAfterCancel) {
		t.Fatalf("Do() error = %v, want %v", err, ErrTryAfterCancel)
	}
	if g := e.finalStatus(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
		t.Errorf("global status = %v, want ROLLBACKED", g.GetStatus())
	}
	if got, want := e.stock(), (stock{10, 0, 0}); got != want {
		t.Errorf("stock = %+v, want %+v", got, want)
	}
	if got, want := c.get(), (callCounts{}); !got.equal(want) {
		t.Errorf("calls = %+v, want %+v (neither the business Try nor Cancel runs)", got, want)
	}
	if got := e.fenceStatus(Branch{XID: xid, BranchID: 1}); got != fence.StatusSuspended {
		t.Errorf("fence = %v, want %v", got, fence.StatusSuspended)
	}
}

// TestDuplicateDelivery delivers the same phase-two action several times,
// one after another and at once (as a redelivery racing the original in
// another process would), then lets the TC deliver it once more: the
// business function runs once.
func TestDuplicateDelivery(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		commit     bool
		noTry      bool // register the branch without a Try: empty rollback
		concurrent bool
		wantStock  stock
		wantFence  fence.Status
		wantCalls  callCounts
	}{
		{"confirm sequential", true, false, false, stock{8, 0, 2}, fence.StatusConfirmed, callCounts{Try: 1, Confirm: 1}},
		{"confirm concurrent", true, false, true, stock{8, 0, 2}, fence.StatusConfirmed, callCounts{Try: 1, Confirm: 1}},
		{"cancel sequential", false, false, false, stock{10, 0, 0}, fence.StatusCancelled, callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryDone}}},
		{"cancel concurrent", false, false, true, stock{10, 0, 0}, fence.StatusCancelled, callCounts{Try: 1, Cancel: 1, Outcomes: []TryOutcome{TryDone}}},
		{"empty cancel concurrent", false, true, true, stock{10, 0, 0}, fence.StatusSuspended, callCounts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.exec(`UPDATE stock SET free = 10, frozen = 0, sold = 0`)
			c := &calls{}
			rmc := e.newRM(t)
			res, err := RegisterFenced(rmc, "reserve-stock", e.fence, stockFuncs(c))
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmc)
			ctx, xid, err := e.tm.Begin(context.Background(), t.Name(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			req := Reserve{SKU: "apple", N: 2}
			if tt.noTry {
				_, data, _ := encodeRequest(req)
				if _, err := rmc.RegisterBranch(ctx, xid, res.Name(), xactpb.BranchType_BRANCH_TYPE_TCC, nil, data); err != nil {
					t.Fatal(err)
				}
			} else if err := res.Try(ctx, req); err != nil {
				t.Fatal(err)
			}
			br := e.branches(xid)[0]
			a := rm.Action{XID: xid, BranchID: br.GetBranchId(), Resource: br.GetResourceId(), Type: br.GetBranchType(), AppData: br.GetApplicationData()}
			deliver := res.h.Rollback
			if tt.commit {
				deliver = res.h.Commit
			}
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				if !tt.concurrent {
					errs[i] = deliver(context.Background(), a)
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = deliver(context.Background(), a)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("delivery %d: %v", i, err)
				}
			}
			// And the TC's own delivery.
			if tt.commit {
				_, err = e.tm.Commit(context.Background(), xid)
			} else {
				_, err = e.tm.Rollback(context.Background(), xid)
			}
			if err != nil {
				t.Fatal(err)
			}
			e.finalStatus(xid)
			if got := e.stock(); got != tt.wantStock {
				t.Errorf("stock = %+v, want %+v", got, tt.wantStock)
			}
			if got := e.fenceStatus(Branch{XID: xid, BranchID: a.BranchID}); got != tt.wantFence {
				t.Errorf("fence = %v, want %v", got, tt.wantFence)
			}
			if got := c.get(); !got.equal(tt.wantCalls) {
				t.Errorf("calls = %+v, want %+v", got, tt.wantCalls)
			}
		})
	}
}

// TestPhaseTwoAfterRestart closes the RM that ran the Try before phase
// two, and (in some cases) restarts the TC too; a new rm.Client declaring
// the same resource gets the TC's re-delivery and finishes the branch.
func TestPhaseTwoAfterRestart(t *testing.T) {
	e := newEnv(t, tctest.WithBadger())
	tests := []struct {
		name      string
		commit    bool
		restartTC bool
		wantStock stock
		wantFence fence.Status
		wantCalls callCounts // of the new RM
	}{
		{"confirm", true, false, stock{8, 0, 2}, fence.StatusConfirmed, callCounts{Confirm: 1}},
		{"cancel", false, false, stock{10, 0, 0}, fence.StatusCancelled, callCounts{Cancel: 1, Outcomes: []TryOutcome{TryDone}}},
		{"confirm after TC restart", true, true, stock{8, 0, 2}, fence.StatusConfirmed, callCounts{Confirm: 1}},
		{"cancel after TC restart", false, true, stock{10, 0, 0}, fence.StatusCancelled, callCounts{Cancel: 1, Outcomes: []TryOutcome{TryDone}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.exec(`UPDATE stock SET free = 10, frozen = 0, sold = 0`)
			first := &calls{}
			rmA := e.newRM(t)
			resA, err := RegisterFenced(rmA, "reserve-stock", e.fence, stockFuncs(first))
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmA)
			ctx, xid, err := e.tm.Begin(context.Background(), t.Name(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := resA.Try(ctx, Reserve{SKU: "apple", N: 2}); err != nil {
				t.Fatal(err)
			}
			rmA.Close() // the process that ran the Try is gone

			if tt.commit {
				_, err = e.tm.Commit(context.Background(), xid)
			} else {
				_, err = e.tm.Rollback(context.Background(), xid)
			}
			if err != nil {
				t.Fatalf("decide: %v", err)
			}
			if tt.restartTC {
				e.srv.Restart()
			}
			second := &calls{}
			rmB := e.newRM(t)
			if _, err := RegisterFenced(rmB, "reserve-stock", e.fence, stockFuncs(second)); err != nil {
				t.Fatal(err)
			}
			start(t, rmB)
			g := e.finalStatus(xid)
			if g.GetParked() {
				t.Fatalf("global parked: %s", g.GetReason())
			}
			if got := e.stock(); got != tt.wantStock {
				t.Errorf("stock = %+v, want %+v", got, tt.wantStock)
			}
			if got := e.fenceStatus(Branch{XID: xid, BranchID: 1}); got != tt.wantFence {
				t.Errorf("fence = %v, want %v", got, tt.wantFence)
			}
			if got, want := first.get(), (callCounts{Try: 1}); !got.equal(want) {
				t.Errorf("first RM calls = %+v, want %+v", got, want)
			}
			if got := second.get(); !got.equal(tt.wantCalls) {
				t.Errorf("second RM calls = %+v, want %+v", got, tt.wantCalls)
			}
		})
	}
}

// TestPhaseTwoOutcomes checks the result contract with an unfenced
// participant: plain errors are retried until the function succeeds; a
// permanent error parks the global with the reason.
func TestPhaseTwoOutcomes(t *testing.T) {
	e := newEnv(t)
	errFlaky := errors.New("ledger busy")
	errFatal := errors.New("ledger account closed")
	tests := []struct {
		name       string
		commit     bool
		failTry    bool
		results    []error // returned by successive Confirm or Cancel calls; then nil
		wantStatus xactpb.GlobalStatus
		wantParked bool
		wantCalls  int
		wantReason string
		wantTry    TryOutcome // seen by Cancel
	}{
		{"confirm unknown then done", true, false, []error{errFlaky, errFlaky, errFlaky}, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, false, 4, "", 0},
		{"cancel unknown then done", false, false, []error{errFlaky, errFlaky}, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, false, 3, "", TryUnknown},
		{"cancel of failed try", false, true, nil, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, false, 1, "", TryFailed},
		{"confirm permanent", true, false, []error{rm.Permanent(errFatal)}, xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_FAILED, true, 1, errFatal.Error(), 0},
		{"cancel permanent", false, false, []error{rm.Permanent(errFatal)}, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED, true, 1, errFatal.Error(), TryUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var n int
			var sawTry TryOutcome
			next := func() error {
				mu.Lock()
				defer mu.Unlock()
				n++
				if n <= len(tt.results) {
					return tt.results[n-1]
				}
				return nil
			}
			rmc := e.newRM(t)
			res, err := Register(rmc, "ledger", Funcs[Reserve]{
				Try: func(ctx context.Context, r Reserve) error {
					if r.Fail {
						return errTryFailed
					}
					return nil
				},
				Confirm: func(ctx context.Context, r Reserve) error { return next() },
				Cancel: func(ctx context.Context, r Reserve, try TryOutcome) error {
					mu.Lock()
					sawTry = try
					mu.Unlock()
					return next()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			start(t, rmc)
			var xid string
			_ = e.tm.Do(context.Background(), tm.Options{Name: t.Name()}, func(ctx context.Context) error {
				xid, _ = tm.XID(ctx)
				if err := res.Try(ctx, Reserve{SKU: "apple", N: 1, Fail: tt.failTry}); err != nil {
					return err
				}
				if !tt.commit {
					return errBusiness
				}
				return nil
			})
			g := e.finalStatus(xid)
			if got := g.GetStatus(); got != tt.wantStatus {
				t.Errorf("status = %v, want %v", got, tt.wantStatus)
			}
			if got := g.GetParked(); got != tt.wantParked {
				t.Errorf("parked = %v, want %v", got, tt.wantParked)
			}
			if !strings.Contains(g.GetReason(), tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", g.GetReason(), tt.wantReason)
			}
			mu.Lock()
			defer mu.Unlock()
			if n != tt.wantCalls {
				t.Errorf("phase-two calls = %d, want %d", n, tt.wantCalls)
			}
			if !tt.commit && sawTry != tt.wantTry {
				t.Errorf("Cancel saw try %v, want %v", sawTry, tt.wantTry)
			}
		})
	}
}

func TestRegisterErrors(t *testing.T) {
	e := newEnv(t)
	rmc := e.newRM(t)
	try := func(context.Context, Reserve) error { return nil }
	ftry := func(context.Context, *sql.Tx, Reserve) error { return nil }
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"nil try", func() error { _, err := Register(rmc, "x", Funcs[Reserve]{}); return err }, ErrInvalidArgument},
		{"empty name", func() error { _, err := Register(rmc, "", Funcs[Reserve]{Try: try}); return err }, ErrInvalidArgument},
		{"long name", func() error {
			_, err := Register(rmc, strings.Repeat("x", MaxResourceLen+1), Funcs[Reserve]{Try: try})
			return err
		}, ErrInvalidArgument},
		{"nil client", func() error { _, err := Register(nil, "x", Funcs[Reserve]{Try: try}); return err }, ErrInvalidArgument},
		{"nil fence", func() error { _, err := RegisterFenced(rmc, "x", nil, FencedFuncs[Reserve]{Try: ftry}); return err }, ErrInvalidArgument},
		{"fenced nil try", func() error { _, err := RegisterFenced(rmc, "x", e.fence, FencedFuncs[Reserve]{}); return err }, ErrInvalidArgument},
		{"try outside a global transaction", func() error {
			r, err := Register(rmc, "x", Funcs[Reserve]{Try: try})
			if err != nil {
				return err
			}
			return r.Try(context.Background(), Reserve{})
		}, tm.ErrNoTransaction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}
