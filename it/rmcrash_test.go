package it

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/failpoint"
)

// rmCrash is one cell of the RM crash-point matrix.
type rmCrash struct {
	point string
	hit   int    // crash on this hit of the point
	mode  string // "at" or "tcc"
	// how the transaction is driven:
	//   tm-rollback  phase one; the TM (the test) sees the worker die and rolls back
	//   tm-died      phase one; the TM runs in the worker and dies with it: the TC times the global out
	//   commit       phase two of a commit (the TM is the test)
	//   rollback     phase two of a rollback (the TM is the test)
	kind string
	// then arms the second worker too (it must crash there in turn); a
	// third one finishes.
	then string
}

func (c rmCrash) name() string {
	s := fmt.Sprintf("%s@%d/%s/%s", c.point, c.hit, c.mode, c.kind)
	if c.then != "" {
		s += "/then/" + c.then
	}
	return s
}

func rmCrashMatrix() []rmCrash {
	var m []rmCrash
	// Phase one. Both ways end in rollback (the TM never hears that the
	// branch finished): in one the TM is alive and rolls back at once,
	// in the other it died too, and the TC's timeout rolls back; the
	// first kind dies in the first branch, the second in the second
	// branch, after the first one committed with its undo log.
	for _, p := range []struct{ point, mode string }{
		{"datasource/commit/after-register", "at"},
		{"datasource/commit/after-undo-insert", "at"},
		{"datasource/commit/after-local-commit", "at"},
		{"tcc/try/after-register", "tcc"},
		{"tcc/try/after-commit", "tcc"},
	} {
		m = append(m,
			rmCrash{point: p.point, hit: 1, mode: p.mode, kind: "tm-rollback"},
			rmCrash{point: p.point, hit: 2, mode: p.mode, kind: "tm-died"})
	}
	// Phase two.
	m = append(m,
		rmCrash{point: "datasource/phase2/after-undo-delete", hit: 1, mode: "at", kind: "commit"},
		rmCrash{point: "datasource/rollback/after-replay", hit: 1, mode: "at", kind: "rollback"},
		rmCrash{point: "datasource/rollback/after-replay", hit: 2, mode: "at", kind: "rollback"},
		rmCrash{point: "datasource/rollback/after-commit", hit: 1, mode: "at", kind: "rollback"},
		rmCrash{point: "rm/phase2/after-handler", hit: 1, mode: "at", kind: "commit"},
		rmCrash{point: "rm/phase2/after-handler", hit: 1, mode: "at", kind: "rollback"},
		rmCrash{point: "tcc/confirm/after-business", hit: 1, mode: "tcc", kind: "commit"},
		rmCrash{point: "tcc/confirm/after-commit", hit: 1, mode: "tcc", kind: "commit"},
		rmCrash{point: "tcc/cancel/after-business", hit: 1, mode: "tcc", kind: "rollback"},
		rmCrash{point: "tcc/cancel/after-commit", hit: 1, mode: "tcc", kind: "rollback"},
		rmCrash{point: "rm/phase2/after-handler", hit: 1, mode: "tcc", kind: "commit"},
		rmCrash{point: "rm/phase2/after-handler", hit: 2, mode: "tcc", kind: "rollback"},
		// A rollback that finds no undo log (the branch died before its
		// local commit) dies after inserting its marker: a third RM
		// finishes.
		rmCrash{point: "datasource/commit/after-register", hit: 1, mode: "at", kind: "tm-rollback", then: "datasource/rollback/after-marker"},
	)
	return m
}

// TestRMCrashPointMatrix kills the RM process (a bank worker) at every
// named crash point of AT and TCC, phase one and phase two, for commits and
// rollbacks, starts a new RM process serving the same resources, and
// checks that the transaction ends in agreement with what its TM was told
// and that every invariant holds: I1 (ledger complete or absent), I2 (the
// acknowledged decision is the one carried out), I5 (no lock left), I6 (no
// undo log left), I7 (no TCC business function ran twice), I11 (nothing
// unfinished), and the balances.
func TestRMCrashPointMatrix(t *testing.T) {
	t.Parallel()
	covered := map[string]bool{}
	for _, c := range rmCrashMatrix() {
		covered[c.point], covered[c.then] = true, true
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			crashRM(t, c)
		})
	}
	for p := range failpoint.Points {
		if (strings.HasPrefix(p, "datasource/") || strings.HasPrefix(p, "tcc/") || strings.HasPrefix(p, "rm/")) && !covered[p] {
			t.Errorf("crash point %s is not in the matrix", p)
		}
	}
}

func crashRM(t *testing.T, c rmCrash) {
	g := newRig(t).withBank(2, 100)
	w1 := g.worker("w1", "", nil, fmt.Sprintf("%s=crash@%d", c.point, c.hit))
	ctx := context.Background()
	tr := transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 30}

	done := make(chan txRec, 1)
	if c.kind == "tm-died" {
		go func() {
			tr := tr
			tr.Mode, tr.Timeout = c.mode, 3*time.Second
			rep, err := w1.call(ctx, "/do", tr)
			done <- txRec{xid: rep.XID, outcome: rep.Outcome, err: err}
		}()
	} else {
		go func() { done <- g.transfer(ctx, w1, c.mode, tr, c.kind == "rollback", 20*time.Second) }()
	}
	mustCrash(t, w1, c.point)
	w := g.worker("w2", "", nil, map[bool]string{true: c.then + "=crash", false: ""}[c.then != ""])
	if c.then != "" {
		mustCrash(t, w, c.then)
		g.worker("w3", "", nil, "")
	}

	var rec txRec
	select {
	case rec = <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("the transaction's TM did not return")
	}
	rec.mode = c.mode
	switch c.kind {
	case "tm-died":
		if kindOf(rec.err) != "transport" {
			t.Fatalf("the worker's /do answered (%+v) although it crashed", rec)
		}
		rec.xid, rec.outcome = w1.lastXID(), "rollback"
		if rec.xid == "" {
			t.Fatal("the worker died before printing its XID")
		}
		if !waitFor(60*time.Second, func() bool { return finished(g.status(rec.xid)) }) {
			t.Fatalf("%s did not finish after its TM died: %v", rec.xid, g.status(rec.xid))
		}
	case "commit":
		if rec.outcome != "commit" {
			t.Fatalf("the TM was told %s (%v), want commit: the crash was in phase two", rec.outcome, rec.err)
		}
	default:
		if rec.outcome != "rollback" {
			t.Fatalf("the TM was told %s (%v), want rollback", rec.outcome, rec.err)
		}
	}
	g.check([]txRec{rec}, true, 30*time.Second).clean(t)
	want := map[bool]int64{true: 70, false: 100}[rec.outcome == "commit"]
	if got := g.bank.balance(acct{"a", 1}); got != want {
		t.Errorf("balance a/1 = %d, want %d", got, want)
	}
}

// mustCrash waits for w to die at point.
func mustCrash(t *testing.T, w *workerProc, point string) {
	t.Helper()
	if !w.wait(60 * time.Second) {
		t.Fatalf("worker %s did not crash at %s", w.cfg.ClientID, point)
	}
	if !strings.Contains(w.log(), "failpoint "+point+": crashing") {
		t.Fatalf("worker %s died, but not at %s:\n%s", w.cfg.ClientID, point, tail(w.log(), 30))
	}
}
