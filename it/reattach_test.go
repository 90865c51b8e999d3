package it

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
)

// slowHandler blocks every phase-two action until release is closed (or
// the action's context ends).
type slowHandler struct{ release chan struct{} }

func (h slowHandler) wait(ctx context.Context) error {
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h slowHandler) Commit(ctx context.Context, _ rm.Action) error   { return h.wait(ctx) }
func (h slowHandler) Rollback(ctx context.Context, _ rm.Action) error { return h.wait(ctx) }

// TestKillTCWhileRMBusy (issue 9): the TC is SIGKILLed while every
// phase-two worker of an RM is busy in a slow handler and another action
// waits for a worker, and restarted on the same address and data
// directory. The RM must notice the kill at once and be attached to the
// new process within 2 s of it listening, as the RM and the TC both tell;
// then the work that piled up finishes (I11). The RM used to stay detached until a handler returned
// (up to its 30 s action timeout): the loop that read the stream waited
// for a free worker, so nothing saw the stream end.
func TestKillTCWhileRMBusy(t *testing.T) {
	const workers = 2
	const clientID = "it-busy-rm"
	dir := t.TempDir()
	proc := startTC(t, dir, "127.0.0.1:0")
	conn := dial(t, proc.addr)

	h := slowHandler{release: make(chan struct{})}
	var once sync.Once
	free := func() { once.Do(func() { close(h.release) }) }
	rmc := rm.New(conn, rm.WithClientID(clientID), rm.WithConcurrency(workers))
	if err := rmc.Serve("db-a", xactpb.BranchType_BRANCH_TYPE_AT, h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := rmc.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmc.Close() })
	t.Cleanup(free) // runs first: Close waits for the handlers

	// One committed global per worker and one more: the workers block in
	// the handler and the last action waits for one of them.
	mgr := tm.New(conn)
	for i := range workers + 1 {
		err := mgr.Do(ctx, tm.Options{Name: "it-busy", Timeout: time.Minute}, func(ctx context.Context) error {
			xid, _ := tm.XID(ctx)
			_, err := rmc.RegisterBranch(ctx, xid, "db-a", xactpb.BranchType_BRANCH_TYPE_AT, []string{fmt.Sprintf("acct:%d", i)}, nil)
			return err
		})
		if err != nil {
			t.Fatalf("Do #%d: %v", i, err)
		}
	}
	if !waitFor(30*time.Second, func() bool {
		st := rmc.Status()
		return st.Running == workers && st.Queued >= 1
	}) {
		t.Fatalf("the workers never all got busy with an action waiting: %+v", rmc.Status())
	}
	before := rmc.Status()

	proc.kill()
	if !waitFor(2*time.Second, func() bool { return !rmc.Status().Attached }) {
		t.Fatalf("the RM did not notice within 2s that the TC was killed: %+v", rmc.Status())
	}
	proc = proc.restart() // on the same address and data directory
	listening := time.Now()
	attached := func() bool {
		st := rmc.Status()
		return st.Attached && st.Attaches > before.Attaches &&
			strings.Contains(proc.log(), `msg="rm attached" client=`+clientID)
	}
	if !waitFor(2*time.Second, attached) {
		t.Fatalf("the RM was not attached to the restarted TC within 2s (status before the kill %+v, now %+v; TC saw it: %v)",
			before, rmc.Status(), strings.Contains(proc.log(), `msg="rm attached"`))
	}
	t.Logf("re-attached %v after the new TC listened; %+v", time.Since(listening).Round(time.Millisecond), rmc.Status())

	free()
	admin := xactpb.NewAdminClient(conn)
	var left []*xactpb.GlobalTransaction
	if !waitFor(30*time.Second, func() bool {
		list, err := admin.ListGlobals(ctx, &xactpb.ListGlobalsRequest{}, grpc.WaitForReady(true))
		left = list.GetGlobals()
		return err == nil && len(left) == 0
	}) {
		t.Fatalf("I11: unfinished 30s after the handlers were released: %v", left)
	}
}
