package it

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// TestTCCrashPointMatrix kills the TC at every named crash point of phase
// one and phase two, for a transaction that commits and one that rolls
// back, restarts it on the same data directory, and checks that the
// transaction ends all-committed or all-rolled-back in agreement with what
// the client was told (I1, I2), each branch's effect at most once (I7),
// no lock left (I5), nothing unfinished (I11).
func TestTCCrashPointMatrix(t *testing.T) {
	var points []string
	for name := range failpoint.Points {
		if strings.HasPrefix(name, "tc/") {
			points = append(points, name)
		}
	}
	sort.Strings(points)
	for _, point := range points {
		for _, commit := range []bool{true, false} {
			if point == "tc/phase2/after-branch-undo" && commit {
				continue // a commit round undoes nothing
			}
			name := point + map[bool]string{true: "/commit", false: "/rollback"}[commit]
			t.Run(name, func(t *testing.T) { crashAt(t, point, commit) })
		}
	}
}

func crashAt(t *testing.T, point string, commit bool) {
	dir := t.TempDir()
	proc := startTCEnv(t, dir, "127.0.0.1:0", []string{failpoint.Env + "=" + point + "=crash"})
	conn := dial(t, proc.addr)
	led := newLedger()
	rmc := attachLedger(t, conn, led, "db-a", "db-b", "db-c")
	mgr := tm.New(conn, tm.WithDecisionTimeout(60*time.Second))

	type result struct {
		xid      string
		branches []int64
		err      error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = mgr.Do(context.Background(), tm.Options{Name: "crash", Timeout: 8 * time.Second}, func(ctx context.Context) error {
			r.xid, _ = tm.XID(ctx)
			for i, res := range []string{"db-a", "db-b", "db-c"} {
				id, err := rmc.RegisterBranch(ctx, r.xid, res, xactpb.BranchType_BRANCH_TYPE_AT, []string{fmt.Sprintf("row:%d", i)}, nil)
				if err != nil {
					return err
				}
				r.branches = append(r.branches, id)
			}
			if !commit {
				return errors.New("business failure")
			}
			return nil
		})
		done <- r
	}()
	if !proc.wait(20 * time.Second) {
		t.Fatalf("the TC did not crash at %s", point)
	}
	if !strings.Contains(proc.log(), "failpoint "+point) {
		t.Fatalf("the TC died, but not at %s:\n%s", point, tail(proc.log(), 20))
	}
	proc = proc.restart()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the transaction did not end after the restart")
	}

	ctx := context.Background()
	admin := xactpb.NewAdminClient(conn)
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := admin.ListGlobals(ctx, &xactpb.ListGlobalsRequest{})
		if err == nil && len(list.GetGlobals()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("I11: unfinished 30s after the restart: %v (err %v)", list.GetGlobals(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if locks, err := admin.ListLocks(ctx, &xactpb.ListLocksRequest{}); err != nil || len(locks.GetLocks()) != 0 {
		t.Errorf("I5: locks left: %v (err %v)", locks.GetLocks(), err)
	}
	if r.xid == "" {
		if r.err == nil {
			t.Fatal("Do succeeded without a transaction")
		}
		return // Begin never answered: nothing began, nothing to check
	}
	want := "rollback"
	switch {
	case r.err == nil:
		want = "commit"
		if !commit {
			t.Fatalf("Do succeeded for a failing business function")
		}
	case errors.Is(r.err, tm.ErrUnknownOutcome):
		t.Fatalf("Do's outcome is unknown after the TC came back: %v", r.err)
	}
	if commit && r.err != nil && len(r.branches) == 3 && !errors.Is(r.err, tm.ErrRolledBack) {
		t.Errorf("Do = %v; a committing transaction that failed must say it rolled back", r.err)
	}
	// Branches the client saw registered, and any the TC registered but the
	// client never heard of (crash before the answer).
	for id := int64(1); id <= 3; id++ {
		got := led.outcome(r.xid, id)
		known := id <= int64(len(r.branches))
		switch {
		case known && got != want:
			t.Errorf("I1: branch %d: effect %q, want %q (Do: %v)", id, got, want, r.err)
		case !known && got != "" && got != "rollback":
			t.Errorf("I1: unanswered branch %d: effect %q, want rollback or none", id, got)
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	if len(led.clashes) > 0 {
		t.Errorf("I7: contradictory effects: %v", led.clashes)
	}
}
