package it

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
)

// partitionLen is how long a partition lasts: a few seconds in the bounded
// CI form, 10-30 s in soak (XACT_SOAK).
func partitionLen(t *testing.T) time.Duration {
	if soak(t) > 0 {
		return 10*time.Second + rand.N(20*time.Second)
	}
	return 3 * time.Second
}

type partitionCase struct {
	link     string // "tc": the RM's link to the TC; "db": the RM's links to its databases
	phase    int    // 1 or 2
	mode     string // "at" or "tcc" (phase one)
	rollback bool   // phase two: of a rollback, else of a commit
	cut      bool   // cut (connections closed, refused) rather than blackhole (bytes held)
}

func (c partitionCase) name() string {
	kind := map[bool]string{true: "cut", false: "blackhole"}[c.cut]
	if c.phase == 1 {
		return fmt.Sprintf("rm-%s/phase1/%s/%s", c.link, c.mode, kind)
	}
	return fmt.Sprintf("rm-%s/phase2/%s/%s", c.link, map[bool]string{true: "rollback", false: "commit"}[c.rollback], kind)
}

// TestPartition partitions an RM (a bank worker behind toxiproxy) from the
// TC and from its databases, in phase one and in phase two, for a few
// seconds (10-30 s in soak), and checks:
//
//   - no local commit without its global locks: while partitioned, a
//     branch that could not register commits nothing; a transaction whose
//     rollback is held up keeps its locks (I5), and another RM's write to
//     its rows fails with a lock conflict instead of committing;
//   - everything converges after healing: every invariant holds.
//
// In phase two a second RM serves the same resources but never answers
// (it/rm/drop-phase2, as if hung), so that phase two cannot go around the
// partition.
func TestPartition(t *testing.T) {
	t.Parallel()
	cases := []partitionCase{
		{link: "tc", phase: 1, mode: "at"},
		{link: "tc", phase: 1, mode: "tcc", cut: true},
		{link: "tc", phase: 2, rollback: true},
		{link: "tc", phase: 2, rollback: false, cut: true},
		{link: "tc", phase: 2, rollback: true, cut: true},
		{link: "db", phase: 1, mode: "at"},
		{link: "db", phase: 1, mode: "at", cut: true},
		{link: "db", phase: 2, rollback: true},
		{link: "db", phase: 2, rollback: false},
		{link: "db", phase: 2, rollback: true, cut: true},
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			r := partition(t, c, "", 30*time.Second)
			summary(t, "partition %s: invariants %s", c.name(), verdict(r))
			r.clean(t)
		})
	}
}

// partition runs one case and returns what its checks found, allowing
// window for everything to finish after healing (I11); probeFP arms the
// second RM's switches besides it/rm/drop-phase2 (for the test that shows
// the checks fail).
func partition(t *testing.T, c partitionCase, probeFP string, window time.Duration) report {
	var r report
	g := newRig(t).withBank(2, 100)
	ptc := newProxy(t, g.tc.addr)
	pdb := map[string]*proxy{"a": newProxy(t, g.bank.cfg["a"].Addr), "b": newProxy(t, g.bank.cfg["b"].Addr)}
	fp := ""
	if c.link == "db" && c.phase == 1 {
		// Hold the first branch right after its registration, so that
		// the partition falls between its global locks and its local
		// commit.
		fp = "datasource/commit/after-register=pause"
	}
	w := g.worker("w1", ptc.addr(), map[string]string{"a": pdb["a"].addr(), "b": pdb["b"].addr()}, fp)
	var probe *workerProc
	if c.phase == 2 {
		fp := "it/rm/drop-phase2=on"
		if probeFP != "" {
			fp += ";" + probeFP
		}
		probe = g.worker("probe", "", nil, fp)
	}
	hold := partitionLen(t)
	var began time.Time
	part := func() {
		began = time.Now()
		for _, p := range map[bool][]*proxy{true: {ptc}, false: {pdb["a"], pdb["b"]}}[c.link == "tc"] {
			if c.cut {
				p.cutOff()
			} else {
				p.blackhole()
			}
		}
	}
	heal := func() {
		if d := hold - time.Since(began); d > 0 {
			time.Sleep(d) // the partition's length is the point of the test
		}
		summary(t, "partition %s held %v", c.name(), time.Since(began).Round(time.Millisecond))
		for _, p := range []*proxy{ptc, pdb["a"], pdb["b"]} {
			p.heal()
		}
	}
	ctx := context.Background()
	tr := transfer{From: acct{"a", 1}, To: acct{"b", 2}, Amount: 30}
	var recs []txRec

	switch c.phase {
	case 1:
		if c.link == "tc" {
			part()
		}
		done := make(chan txRec, 1)
		go func() { done <- g.transfer(ctx, w, c.mode, tr, false, 30*time.Second) }()
		if c.link == "db" {
			if !w.waitLog("failpoint datasource/commit/after-register: paused", 60*time.Second) {
				t.Fatalf("the worker did not pause:\n%s", w.log())
			}
			part()
			w.resume()
		}
		rec := <-done
		if rec.outcome != "rollback" {
			t.Fatalf("a transfer whose RM was partitioned in phase one: %s (%v), want rollback", rec.outcome, rec.err)
		}
		// Still partitioned: nothing of it was committed.
		if got := g.bank.balance(tr.From); got != 100 {
			r.add("I5", "during the partition the debited account holds %d, want 100: a local commit without its global lock", got)
		}
		recs = append(recs, rec)
		heal()

	case 2:
		rec := g.transferThen(ctx, w, "at", tr, c.rollback, part)
		want := map[bool]string{true: "rollback", false: "commit"}[c.rollback]
		if rec.outcome != want {
			t.Fatalf("the TM was told %s (%v), want %s", rec.outcome, rec.err, want)
		}
		recs = append(recs, rec)
		if c.rollback {
			locks, err := g.admin.ListLocks(ctx, &xactpb.ListLocksRequest{Xid: rec.xid})
			if err != nil {
				t.Fatal(err)
			}
			// The undo is not done: the locks must still be held (I5),
			// and another RM may not commit over the rows.
			if len(locks.GetLocks()) == 0 {
				r.add("I5", "%s released its locks before its rollback was done", rec.xid)
			}
			p := g.transfer(ctx, probe, "at", transfer{From: tr.From, To: acct{"b", 1}, Amount: 5}, false, 30*time.Second)
			if kindOf(p.err) != "lock" {
				r.add("I5", "a write over rows whose rollback is pending: %s (%v), want a lock conflict", p.outcome, p.err)
			}
			if got := g.bank.balance(tr.From); got != 70 {
				r.add("I5", "the debited account holds %d during the partition, want 70 (the branch's after image): a local commit without its global lock", got)
			}
			recs = append(recs, p)
		} else {
			// Once the commit decision is durable, the locks need not
			// wait for the partitioned RM: the TC releases them in the
			// decision's own write (tc/decide.go, I5), and another
			// transaction may use the rows.
			released := waitFor(30*time.Second, func() bool {
				l, err := g.admin.ListLocks(ctx, &xactpb.ListLocksRequest{Xid: rec.xid})
				return err == nil && len(l.GetLocks()) == 0
			})
			if !released {
				r.add("I5", "%s kept its locks after its commit decision while its RM was partitioned", rec.xid)
			}
			p := g.transfer(ctx, probe, "at", transfer{From: tr.From, To: acct{"b", 1}, Amount: 5}, false, 30*time.Second)
			if p.outcome != "commit" {
				r.add("I5", "a transfer over rows of a committed transaction: %s (%v), want commit", p.outcome, p.err)
			}
			recs = append(recs, p)
		}
		heal()
	}
	return append(r, g.check(recs, true, window)...)
}

// transferThen is transfer with then run after the worker answered and
// before the TM decides.
func (g *rig) transferThen(ctx context.Context, w *workerProc, mode string, tr transfer, rollback bool, then func()) txRec {
	rec := txRec{mode: mode}
	rec.err = g.mgr.Do(ctx, doOpts(mode), func(ctx context.Context) error {
		rec.xid = xidOf(ctx)
		if _, err := w.call(ctx, "/"+mode, tr); err != nil {
			return err
		}
		then()
		if rollback {
			return errForced
		}
		return nil
	})
	rec.outcome, rec.at = outcomeOf(rec.err), time.Now()
	return rec
}
