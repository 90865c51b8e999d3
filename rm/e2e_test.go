package rm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// These tests run a TM and an RM against a real in-process TC (tctest).

const at = xactpb.BranchType_BRANCH_TYPE_AT

// ledger is an idempotent phase-two handler that records every call and
// applies each (kind, xid, branch) effect at most once, as a real RM must
// (I7). fail decides, per call, what the handler returns.
type ledger struct {
	mu      sync.Mutex
	calls   map[string]int // "commit/xid/branch" -> calls
	effects map[string]int // "xid/branch" -> effects applied (must end at 1)
	kinds   map[string]string
	order   []string // "kind/xid/branch" of effects, in order applied
	fail    func(kind string, a rm.Action, call int) error
}

func newLedger() *ledger {
	return &ledger{calls: map[string]int{}, effects: map[string]int{}, kinds: map[string]string{}}
}

func (l *ledger) Commit(ctx context.Context, a rm.Action) error   { return l.do(ctx, "commit", a) }
func (l *ledger) Rollback(ctx context.Context, a rm.Action) error { return l.do(ctx, "rollback", a) }

func (l *ledger) do(ctx context.Context, kind string, a rm.Action) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := fmt.Sprintf("%s/%d", a.XID, a.BranchID)
	l.calls[kind+"/"+key]++
	if l.fail != nil {
		if err := l.fail(kind, a, l.calls[kind+"/"+key]); err != nil {
			return err
		}
	}
	if prev, ok := l.kinds[key]; ok {
		if prev != kind {
			return rm.Permanent(fmt.Errorf("branch %s already %s, asked to %s", key, prev, kind))
		}
		return nil // already applied: idempotent
	}
	l.kinds[key] = kind
	l.effects[key]++
	l.order = append(l.order, kind+"/"+key)
	rm.Logger(ctx).Info("applied", "kind", kind)
	return nil
}

func (l *ledger) setFail(f func(kind string, a rm.Action, call int) error) {
	l.mu.Lock()
	l.fail = f
	l.mu.Unlock()
}

func (l *ledger) applied(xid string, branch int64) (kind string, effects, calls int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := fmt.Sprintf("%s/%d", xid, branch)
	kind = l.kinds[key]
	return kind, l.effects[key], l.calls[kind+"/"+key]
}

func (l *ledger) appliedOrder() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order)
}

type env struct {
	srv   *tctest.Server
	conn  *grpc.ClientConn
	m     *tm.Manager
	rm    *rm.Client
	l     *ledger
	admin xactpb.AdminClient
}

func setup(t *testing.T, opts ...tctest.Option) *env {
	t.Helper()
	srv := tctest.Start(t, opts...)
	conn := srv.Conn(t) // one connection shared by TM and RM
	e := &env{
		srv:   srv,
		conn:  conn,
		m:     tm.New(conn, tm.WithBackoff(5*time.Millisecond, 50*time.Millisecond)),
		rm:    rm.New(conn, rm.WithBackoff(5*time.Millisecond, 50*time.Millisecond), rm.WithClientID(t.Name())),
		l:     newLedger(),
		admin: xactpb.NewAdminClient(conn),
	}
	if err := e.rm.Serve("db", at, e.l); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.rm.Start(ctx); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() { e.rm.Close() })
	return e
}

// branches registers n branches of the global in ctx on resource db.
func (e *env) branches(ctx context.Context, n int) ([]int64, error) {
	xid, _ := tm.XID(ctx)
	var ids []int64
	for i := range n {
		id, err := e.rm.RegisterBranch(ctx, xid, "db", at, []string{fmt.Sprintf("t:%s:%d", xid, i)}, nil)
		if err != nil {
			return ids, err
		}
		if err := e.rm.ReportBranch(ctx, xid, id, xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE, nil); err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (e *env) show(t *testing.T, xid string) *xactpb.ShowGlobalResponse {
	t.Helper()
	// WaitForReady: after a Restart the connection may still be in its
	// reconnect backoff.
	resp, err := e.admin.ShowGlobal(context.Background(), &xactpb.ShowGlobalRequest{Xid: xid}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("ShowGlobal(%s) = %v", xid, protocol.FromStatus(err))
	}
	return resp
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitStatus(t *testing.T, xid string, want xactpb.GlobalStatus) {
	t.Helper()
	var got xactpb.GlobalStatus
	eventually(t, fmt.Sprintf("%s to reach %v (last %v)", xid, want, &got), func() bool {
		got = e.show(t, xid).GetGlobal().GetStatus()
		return got == want
	})
}

func (e *env) checkOnce(t *testing.T, xid string, ids []int64, kind string) {
	t.Helper()
	for _, id := range ids {
		k, effects, calls := e.l.applied(xid, id)
		if k != kind || effects != 1 || calls < 1 {
			t.Errorf("branch %s/%d: applied %q %d times (%d calls), want %q once", xid, id, k, effects, calls, kind)
		}
	}
}

func TestE2EPhaseTwo(t *testing.T) {
	e := setup(t)
	errBusiness := errors.New("business failed")
	tests := []struct {
		name  string
		fnErr error
		kind  string
		want  xactpb.GlobalStatus
	}{
		{"commit", nil, "commit", xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED},
		{"rollback", errBusiness, "rollback", xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var xid string
			var ids []int64
			err := e.m.Do(context.Background(), tm.Options{Name: tt.name}, func(ctx context.Context) error {
				xid, _ = tm.XID(ctx)
				var err error
				if ids, err = e.branches(ctx, 3); err != nil {
					return err
				}
				return tt.fnErr
			})
			if !errors.Is(err, tt.fnErr) || (tt.fnErr == nil && err != nil) {
				t.Fatalf("Do() = %v, want %v", err, tt.fnErr)
			}
			e.waitStatus(t, xid, tt.want)
			e.checkOnce(t, xid, ids, tt.kind)
			if tt.kind == "rollback" {
				// I9: reverse registration order.
				var got []string
				for _, o := range e.l.appliedOrder() {
					if strings.Contains(o, xid) {
						got = append(got, o)
					}
				}
				want := []string{fmt.Sprintf("rollback/%s/%d", xid, ids[2]), fmt.Sprintf("rollback/%s/%d", xid, ids[1]), fmt.Sprintf("rollback/%s/%d", xid, ids[0])}
				if !slices.Equal(got, want) {
					t.Errorf("rollback order = %v, want %v", got, want)
				}
			}
		})
	}
}

// TestE2EUnknownRetried: a handler that fails with a retryable error is
// called again until it succeeds; the commit decision stood all along.
func TestE2EUnknownRetried(t *testing.T) {
	e := setup(t)
	e.l.setFail(func(kind string, a rm.Action, call int) error {
		if call <= 2 {
			return errors.New("database briefly unavailable")
		}
		return nil
	})
	var xid string
	var ids []int64
	err := e.m.Do(context.Background(), tm.Options{}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		var err error
		ids, err = e.branches(ctx, 1)
		return err
	})
	if err != nil {
		t.Fatalf("Do() = %v, want nil (the decision is commit; phase two retries)", err)
	}
	e.waitStatus(t, xid, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED)
	_, effects, calls := e.l.applied(xid, ids[0])
	if effects != 1 || calls != 3 {
		t.Errorf("effects, calls = %d, %d, want 1, 3", effects, calls)
	}
}

// TestE2EPermanentParks: a handler's Permanent error parks the global with
// the error's text, and stops the retries.
func TestE2EPermanentParks(t *testing.T) {
	e := setup(t)
	e.l.setFail(func(kind string, a rm.Action, call int) error {
		return rm.Permanent(errors.New("row changed by someone else"))
	})
	errBusiness := errors.New("business failed")
	var xid string
	err := e.m.Do(context.Background(), tm.Options{}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		if _, err := e.branches(ctx, 1); err != nil {
			return err
		}
		return errBusiness
	})
	if !errors.Is(err, errBusiness) || errors.Is(err, tm.ErrUnknownOutcome) {
		t.Fatalf("Do() = %v, want only %v (the rollback decision is durable)", err, errBusiness)
	}
	var g *xactpb.GlobalTransaction
	eventually(t, "the global to be parked", func() bool {
		g = e.show(t, xid).GetGlobal()
		return g.GetParked()
	})
	if g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_FAILED || !strings.Contains(g.GetReason(), "row changed by someone else") {
		t.Errorf("parked global = %v %q, want ROLLBACK_FAILED with the handler's reason", g.GetStatus(), g.GetReason())
	}
	calls := func() int { _, _, c := e.l.applied(xid, 1); return c }
	before := calls()
	time.Sleep(300 * time.Millisecond) // several retry intervals of tctest
	if after := calls(); after != before {
		t.Errorf("handler called %d more times after parking, want 0", after-before)
	}
}

// TestE2EReattachAfterRestart: phase two that could not finish before the
// TC restarted is delivered after the RM re-attaches to the new TC.
func TestE2EReattachAfterRestart(t *testing.T) {
	for _, store := range []struct {
		name string
		opts []tctest.Option
	}{{"memory", nil}, {"badger", []tctest.Option{tctest.WithBadger()}}} {
		t.Run(store.name, func(t *testing.T) { testReattachAfterRestart(t, store.opts...) })
	}
}

func testReattachAfterRestart(t *testing.T, opts ...tctest.Option) {
	e := setup(t, opts...)
	var mu sync.Mutex
	blocked := true
	e.l.setFail(func(kind string, a rm.Action, call int) error {
		mu.Lock()
		defer mu.Unlock()
		if blocked {
			return errors.New("not yet")
		}
		return nil
	})
	var xid string
	var ids []int64
	err := e.m.Do(context.Background(), tm.Options{}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		var err error
		ids, err = e.branches(ctx, 2)
		return err
	})
	if err != nil {
		t.Fatalf("Do() = %v", err)
	}
	if st := e.show(t, xid).GetGlobal().GetStatus(); st != xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING && st != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING {
		t.Fatalf("status before restart = %v, want commit in progress", st)
	}
	e.srv.Restart()
	mu.Lock()
	blocked = false
	mu.Unlock()
	e.waitStatus(t, xid, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED)
	e.checkOnce(t, xid, ids, "commit")
}

// TestE2EReattachWhileWorkersBusy: an RM whose phase-two workers are all
// busy in a slow handler, with more actions waiting, re-attaches to a
// restarted TC within 2s; then the waiting work finishes. (The loop that
// read the stream used to wait for a free worker, so nothing saw the
// stream end until a handler returned: up to the action timeout.)
func TestE2EReattachWhileWorkersBusy(t *testing.T) {
	const workers = 2
	srv := tctest.Start(t)
	conn := srv.Conn(t)
	release := make(chan struct{})
	slow := handlerFunc(func(ctx context.Context, a rm.Action) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	c := rm.New(conn, rm.WithConcurrency(workers), rm.WithClientID(t.Name()))
	if err := c.Serve("db", at, slow); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free) // before Close, which waits for the handlers

	// workers+1 committed globals: as many actions as workers run, and one
	// waiting.
	m := tm.New(conn)
	var xids []string
	for range workers + 1 {
		err := m.Do(ctx, tm.Options{}, func(ctx context.Context) error {
			xid, _ := tm.XID(ctx)
			xids = append(xids, xid)
			_, err := c.RegisterBranch(ctx, xid, "db", at, []string{"t:" + xid}, nil)
			return err
		})
		if err != nil {
			t.Fatalf("Do() = %v", err)
		}
	}
	before := waitRMStatus(t, c, 10*time.Second, "every worker busy and an action waiting", func(st rm.Status) bool {
		return st.Running == workers && st.Queued >= 1
	})

	srv.Restart()
	waitRMStatus(t, c, 2*time.Second, "re-attach to the restarted TC", func(st rm.Status) bool {
		return st.Attached && st.Attaches > before.Attaches
	})

	free()
	admin := xactpb.NewAdminClient(conn)
	for _, xid := range xids {
		eventually(t, xid+" to commit", func() bool {
			st, err := xactpb.NewCoordinatorClient(conn).GetStatus(ctx, &xactpb.GetStatusRequest{Xid: xid}, grpc.WaitForReady(true))
			return err == nil && st.GetStatus() == xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
		})
	}
	if locks, err := admin.ListLocks(ctx, &xactpb.ListLocksRequest{}); err != nil || len(locks.GetLocks()) != 0 {
		t.Errorf("locks left: %v, %v", locks.GetLocks(), err)
	}
}

// handlerFunc runs the same function for commit and rollback.
type handlerFunc func(ctx context.Context, a rm.Action) error

func (f handlerFunc) Commit(ctx context.Context, a rm.Action) error   { return f(ctx, a) }
func (f handlerFunc) Rollback(ctx context.Context, a rm.Action) error { return f(ctx, a) }

// waitRMStatus polls c.Status until cond holds or d passes.
func waitRMStatus(t *testing.T, c *rm.Client, d time.Duration, what string, cond func(rm.Status) bool) rm.Status {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := c.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v: rm status %+v", what, d, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestE2EHTTPPropagation: a service called over HTTP inside Do joins the
// caller's global transaction, and the caller's failure rolls back the
// service's branch.
func TestE2EHTTPPropagation(t *testing.T) {
	e := setup(t)
	svc := httptest.NewServer(tm.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := tm.XID(r.Context()); !ok {
			http.Error(w, "no global transaction", http.StatusBadRequest)
			return
		}
		ids, err := e.branches(r.Context(), 1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, ids[0])
	})))
	defer svc.Close()
	client := &http.Client{Transport: tm.Transport(nil)}
	defer client.CloseIdleConnections()

	errLater := errors.New("a later step failed")
	var xid, branch string
	err := e.m.Do(context.Background(), tm.Options{Name: "http"}, func(ctx context.Context) error {
		xid, _ = tm.XID(ctx)
		req, err := http.NewRequestWithContext(ctx, "POST", svc.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("service: %s: %s", resp.Status, body)
		}
		branch = string(body)
		return errLater
	})
	if !errors.Is(err, errLater) {
		t.Fatalf("Do() = %v, want %v", err, errLater)
	}
	e.waitStatus(t, xid, xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED)
	id, _ := strconv.ParseInt(branch, 10, 64)
	e.checkOnce(t, xid, []int64{id}, "rollback")
}

// TestE2EExactlyOnce runs concurrent global transactions, half failing,
// with a handler that sometimes fails retryably and some duplicate
// deliveries, and checks every branch took exactly one effect of the right
// kind.
func TestE2EExactlyOnce(t *testing.T) {
	e := setup(t)
	e.l.setFail(func(kind string, a rm.Action, call int) error {
		if a.BranchID%2 == 0 && call == 1 {
			return errors.New("flaky")
		}
		return nil
	})
	const n = 16
	type tx struct {
		xid  string
		ids  []int64
		fail bool
		err  error
	}
	txs := make([]tx, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txs[i].fail = i%2 == 1
			txs[i].err = e.m.Do(context.Background(), tm.Options{Name: "load"}, func(ctx context.Context) error {
				txs[i].xid, _ = tm.XID(ctx)
				var err error
				if txs[i].ids, err = e.branches(ctx, 2); err != nil {
					return err
				}
				if txs[i].fail {
					return errors.New("planned failure")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for _, x := range txs {
		want, kind := xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, "commit"
		if x.fail {
			want, kind = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, "rollback"
		}
		if (x.err != nil) != x.fail {
			t.Errorf("%s: Do() = %v, want failure %v", x.xid, x.err, x.fail)
			continue
		}
		e.waitStatus(t, x.xid, want)
		e.checkOnce(t, x.xid, x.ids, kind)
	}
}
