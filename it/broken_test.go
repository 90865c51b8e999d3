package it

import (
	"context"
	"testing"
	"time"

	"github.com/xact-io/xact/tm"
)

// TestChecksCatchBrokenInvariants shows that every invariant check of the
// suite can fail: each case arms a test-only switch (switches, armed
// through XACT_IT_FAILPOINTS in the worker process only) that breaks
// one property on purpose, runs the scenario of the check, and requires
// the check to report the broken invariant. The same scenarios without
// the switch are the suite's passing tests.
func TestChecksCatchBrokenInvariants(t *testing.T) {
	t.Parallel()
	tr := transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 30}
	ctx := context.Background()
	// one runs a single transfer through a worker armed with fp and
	// returns the bank's checks after window.
	one := func(t *testing.T, fp, mode string, rollback bool, window time.Duration) report {
		g := newRig(t).withBank(2, 100)
		w := g.worker("w1", "", nil, fp)
		rec := g.transfer(ctx, w, mode, tr, rollback, 20*time.Second)
		return g.check([]txRec{rec}, true, window)
	}
	cases := []struct {
		name string
		want []string // invariants the check must report
		run  func(t *testing.T) report
	}{
		{"skip-at-commit", []string{"I6"}, func(t *testing.T) report {
			return one(t, "it/rm/skip-at-commit=on", "at", false, 30*time.Second)
		}},
		{"skip-at-rollback", []string{"I1", "I2", "I6", "total"}, func(t *testing.T) report {
			// The first rollback action is the credit's (reverse order):
			// it is kept, the debit is undone.
			return one(t, "it/rm/skip-at-rollback=on@1", "at", true, 30*time.Second)
		}},
		{"skip-ledger", []string{"ledger", "I1"}, func(t *testing.T) report {
			return one(t, "it/worker/skip-ledger=on", "at", false, 30*time.Second)
		}},
		{"commit-as-rollback", []string{"I2"}, func(t *testing.T) report {
			return one(t, "it/rm/commit-as-rollback=on", "at", false, 30*time.Second)
		}},
		{"drop-phase2", []string{"I11", "I5", "I6"}, func(t *testing.T) report {
			return one(t, "it/rm/drop-phase2=on", "at", true, 3*time.Second)
		}},
		{"no-funds-check", []string{"negative"}, func(t *testing.T) report {
			g := newRig(t).withBank(2, 100)
			w := g.worker("w1", "", nil, "it/worker/no-funds-check=on")
			rec := g.transfer(ctx, w, "at", transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 150}, false, 20*time.Second)
			return g.check([]txRec{rec}, true, 30*time.Second)
		}},
		{"tcc-no-fence", []string{"I7"}, func(t *testing.T) report {
			// The first Confirm runs, its RM dies before answering, and
			// the next RM runs it again: without the fence, twice.
			g := newRig(t).withBank(2, 100)
			w := g.worker("w1", "", nil, "it/tcc/no-fence=on;rm/phase2/after-handler=crash")
			done := make(chan txRec, 1)
			go func() { done <- g.transfer(ctx, w, "tcc", tr, false, 20*time.Second) }()
			mustCrash(t, w, "rm/phase2/after-handler")
			g.worker("w2", "", nil, "it/tcc/no-fence=on")
			return g.check([]txRec{<-done}, true, 30*time.Second)
		}},
		{"skip-register/late-branch", []string{"I4"}, func(t *testing.T) report {
			return lateRegister(t, "it/rm/skip-register=on")
		}},
		{"skip-at-rollback/late-commit", []string{"I8"}, func(t *testing.T) report {
			return lateCommit(t, "it/rm/skip-at-rollback=on")
		}},
		{"skip-register/partition", []string{"I5"}, func(t *testing.T) report {
			// The second RM writes over rows whose rollback is held up by
			// the partition, without taking their global locks.
			return partition(t, partitionCase{link: "tc", phase: 2, rollback: true}, "it/rm/skip-register=on", 3*time.Second)
		}},
		{"skip-lock-check/audit", []string{"audit"}, func(t *testing.T) report {
			return auditDuringTransfer(t, "it/rm/skip-lock-check=on")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := c.run(t)
			for _, inv := range c.want {
				if !r.has(inv) {
					t.Errorf("with the switch on, the %s check found nothing wrong; it reported:\n%s", inv, r)
				}
			}
			t.Logf("with the switch on, the checks reported (as they must):\n%s", r)
		})
	}
}

// TestAuditWaitsForGlobalLocks holds a transfer between its debit and its
// credit (the debit committed locally, its global lock held) and runs an
// audit, SELECT … FOR UPDATE on every account in a global transaction: it
// must not see the half-done transfer (it waits for the lock and, within
// its budget, fails with a lock conflict). Released, the transfer commits
// and the audit sees the exact total.
func TestAuditWaitsForGlobalLocks(t *testing.T) {
	t.Parallel()
	auditDuringTransfer(t, "").clean(t)
}

// auditDuringTransfer is the scenario of TestAuditWaitsForGlobalLocks,
// with the auditing RM armed with fp.
func auditDuringTransfer(t *testing.T, fp string) report {
	g := newRig(t).withBank(2, 100)
	w1 := g.worker("w1", "", nil, "it/worker/between-branches=pause")
	auditor := g.worker("auditor", "", nil, fp)
	ctx := context.Background()
	done := make(chan txRec, 1)
	go func() {
		done <- g.transfer(ctx, w1, "at", transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 30}, false, 60*time.Second)
	}()
	if !w1.waitLog("failpoint it/worker/between-branches: paused", 60*time.Second) {
		t.Fatalf("the transfer did not pause:\n%s", w1.log())
	}
	var r report
	audit := func() (reply, error) {
		var rep reply
		err := g.mgr.Do(ctx, tm.Options{Name: "audit", Timeout: 30 * time.Second}, func(ctx context.Context) error {
			var err error
			rep, err = auditor.call(ctx, "/audit", nil)
			return err
		})
		return rep, err
	}
	rep, err := audit()
	switch {
	case err == nil:
		if msg := g.bank.auditViolation(rep); msg != "" {
			r.add("audit", "%s", msg)
		} else {
			r.add("audit", "an audit got through while a transfer held global locks")
		}
	case kindOf(err) != "lock":
		r.add("audit", "the audit failed with %v, want a lock conflict", err)
	}
	w1.resume()
	rec := <-done
	if rec.outcome != "commit" {
		t.Fatalf("the held transfer: %s (%v), want commit", rec.outcome, rec.err)
	}
	if rep, err := audit(); err != nil {
		r.add("audit", "the audit after the transfer failed: %v", err)
	} else if msg := g.bank.auditViolation(rep); msg != "" {
		r.add("audit", "%s", msg)
	}
	return append(r, g.check([]txRec{rec}, true, 30*time.Second)...)
}
