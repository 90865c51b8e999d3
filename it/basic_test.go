package it

import (
	"context"
	"testing"
	"time"
)

// TestWorkerTransfers is the suite's baseline: AT and TCC transfers
// between the two databases through a worker process, committed and
// rolled back, with every bank check clean.
func TestWorkerTransfers(t *testing.T) {
	t.Parallel()
	g := newRig(t).withBank(4, 100)
	w := g.worker("w1", "", nil, "")
	ctx := context.Background()
	var recs []txRec
	for _, mode := range []string{"at", "tcc"} {
		for _, rollback := range []bool{false, true} {
			rec := g.transfer(ctx, w, mode, transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 7}, rollback, 10*time.Second)
			want := map[bool]string{false: "commit", true: "rollback"}[rollback]
			if rec.outcome != want {
				t.Errorf("%s rollback=%v: outcome %s (%v), want %s", mode, rollback, rec.outcome, rec.err, want)
			}
			recs = append(recs, rec)
		}
	}
	g.check(recs, true, 30*time.Second).clean(t)
	if got, want := g.bank.balance(acct{"a", 1}), int64(100-14); got != want {
		t.Errorf("balance a/1 = %d, want %d", got, want)
	}
}
