package it

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/tm"
)

// TestLateBranch races branches against their global's timeout:
//
//   - register: a transfer's second branch reaches the TC after the global
//     timed out and was rolled back. Its registration must be refused, its
//     local commit fail, and no lock be left (I4).
//   - local-commit: a branch registered in time, but its local commit
//     comes after the timeout's rollback, which found no undo log and left
//     the "global finished" marker. The commit must fail on the marker
//     (I8), and nothing be left.
//
// The branch is held at a failpoint (pause) until the TC has finished the
// rollback, so the race goes the same way on any machine.
func TestLateBranch(t *testing.T) {
	t.Parallel()
	t.Run("register", func(t *testing.T) {
		t.Parallel()
		lateRegister(t, "").clean(t)
	})
	t.Run("local-commit", func(t *testing.T) {
		t.Parallel()
		lateCommit(t, "").clean(t)
	})
}

// lateRegister runs the late registration with the worker armed with
// extra (switches) and returns what the checks found: I4 (the late branch
// was not refused) besides the bank's checks.
func lateRegister(t *testing.T, extra string) report {
	g := newRig(t).withBank(2, 100)
	fp := "it/worker/between-branches=pause"
	if extra != "" {
		fp += ";" + extra
	}
	w := g.worker("w1", "", nil, fp)
	return lateRun(t, g, w, "it/worker/between-branches", "refused", "I4")
}

// lateCommit runs the late local commit likewise: I8 (the late commit was
// not refused).
func lateCommit(t *testing.T, extra string) report {
	g := newRig(t).withBank(2, 100)
	fp := "datasource/commit/after-register=pause"
	if extra != "" {
		fp += ";" + extra
	}
	w := g.worker("w1", "", nil, fp)
	return lateRun(t, g, w, "datasource/commit/after-register", "rolledback", "I8")
}

func lateRun(t *testing.T, g *rig, w *workerProc, point, wantKind, inv string) report {
	ctx, xid, err := g.mgr.Begin(context.Background(), "late", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rep reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := w.call(ctx, "/at", transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 30})
		done <- result{rep, err}
	}()
	if !w.waitLog("failpoint "+point+": paused", 60*time.Second) {
		t.Fatalf("the worker did not reach %s:\n%s", point, w.log())
	}
	if !waitFor(60*time.Second, func() bool { return finished(g.status(xid)) }) {
		t.Fatalf("%s did not time out and roll back: %v", xid, g.status(xid))
	}
	w.resume()
	var res result
	select {
	case res = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the late branch did not return")
	}
	var r report
	if k := kindOf(res.err); k != wantKind {
		r.add(inv, "the late branch of %s returned %q (%v), want a %q failure", xid, k, res.err, wantKind)
	}
	// The TM's commit, coming last, must learn that it rolled back.
	if _, err := g.mgr.Commit(context.Background(), xid); !errors.Is(err, tm.ErrRolledBack) {
		r.add("I2", "Commit(%s) after its timeout = %v, want ErrRolledBack", xid, err)
	}
	return append(r, g.check([]txRec{{xid: xid, mode: "at", outcome: "rollback"}}, true, 30*time.Second)...)
}
