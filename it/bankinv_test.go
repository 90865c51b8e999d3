package it

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/internal/pgtest"
	"github.com/xact-io/xact/tm"
)

// TestBankInvariant is the bank under faults: accounts in two databases,
// 16 concurrent TMs doing AT transfers (a debit with a ledger row in one
// database, a credit with a ledger row in the other), a fifth of them
// rolled back on purpose, through two RM processes (bank workers, the
// second behind toxiproxy on all its links). Meanwhile the TC is killed
// with SIGKILL and restarted, an RM process is killed and restarted, and
// the second RM is partitioned from the TC and from its databases, at
// random moments; an auditor keeps reading every account with SELECT …
// FOR UPDATE in a global transaction, which must always see the exact
// total. Afterwards (bank.check): the total is the starting total, no
// balance is negative, every transaction's ledger rows are complete or
// absent (I1) in agreement with its TM (I2), every balance matches its
// ledger, no undo_log row is left (I6), no lock (I5), and nothing is
// unfinished 30 s after the last fault (I11).
//
// It runs for 30 s in CI; `make soak DURATION=10m` (XACT_SOAK) runs it as
// long as asked, with partitions of 10-30 s, and prints a summary.
func TestBankInvariant(t *testing.T) {
	t.Parallel()
	bankInvariant(t, 30*time.Second)
}

// TestBankInvariantSharedStore is TestBankInvariant with the TC's records
// in a shared database (--store mysql on MariaDB, --store postgres on
// PostgreSQL) instead of its data directory: every kill and restart of the
// TC recovers from the database.
func TestBankInvariantSharedStore(t *testing.T) {
	for _, st := range []struct{ store, dsn string }{
		{"mysql", ""},
		{"postgres", ""},
	} {
		t.Run(st.store, func(t *testing.T) {
			dsn := pgtest.DSN(t)
			if st.store == "mysql" {
				dsn = mysqltest.DSN(t)
			}
			if out, err := exec.Command(xactBin, "sql", "migrate", "--store", st.store, "--store-dsn", dsn).CombinedOutput(); err != nil {
				t.Fatalf("xact sql migrate: %v\n%s", err, out)
			}
			// A short lease: a restarted TC waits for its previous one.
			bankInvariant(t, 20*time.Second, "--store", st.store, "--store-dsn", dsn, "--lease", "1s")
		})
	}
}

// bankInvariant runs the bank under faults for run (longer in soak) with a
// TC started with tcArgs.
func bankInvariant(t *testing.T, run time.Duration, tcArgs ...string) {
	gap := [2]time.Duration{1500 * time.Millisecond, 4 * time.Second} // between faults
	if d := soak(t); d > 0 {
		run, gap = d, [2]time.Duration{5 * time.Second, 20 * time.Second}
	}
	const accounts, initial = 64, 1000
	g := newRig(t, tcArgs...).withBank(accounts, initial)
	ptc := newProxy(t, g.tc.addr)
	pdb := map[string]*proxy{"a": newProxy(t, g.bank.cfg["a"].Addr), "b": newProxy(t, g.bank.cfg["b"].Addr)}
	var (
		wmu     sync.Mutex
		workers = []*workerProc{
			g.worker("w1", "", nil, ""),
			g.worker("w2", ptc.addr(), map[string]string{"a": pdb["a"].addr(), "b": pdb["b"].addr()}, ""),
		}
	)
	pick := func(prefer int) *workerProc {
		wmu.Lock()
		defer wmu.Unlock()
		if prefer >= 0 && workers[prefer].alive() {
			return workers[prefer]
		}
		i := rand.IntN(2)
		if !workers[i].alive() {
			i = 1 - i
		}
		return workers[i]
	}

	var (
		st       bankStats
		recMu    sync.Mutex
		recs     []txRec
		auditBad []string
		wg       sync.WaitGroup
		gate     sync.RWMutex // the auditor's quiet moments
	)
	deadline := time.Now().Add(run)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				w := pick(-1)
				if !w.alive() {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				from, to := "a", "b"
				if rand.IntN(2) == 0 {
					from, to = to, from
				}
				tr := transfer{From: acct{from, 1 + rand.Int64N(accounts)}, To: acct{to, 1 + rand.Int64N(accounts)}, Amount: 1 + rand.Int64N(100)}
				forced := rand.IntN(5) == 0
				gate.RLock()
				rec := g.transfer(context.Background(), w, "at", tr, forced, 10*time.Second)
				gate.RUnlock()
				if forced {
					st.forced.Add(1)
				}
				recMu.Lock()
				recs = append(recs, rec)
				recMu.Unlock()
			}
		}()
	}
	// The auditor.
	audit := func() (reply, error) {
		var rep reply
		err := g.mgr.Do(context.Background(), tm.Options{Name: "audit", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			var err error
			rep, err = pick(0).call(ctx, "/audit", nil)
			return err
		})
		return rep, err
	}
	checkAudit := func(rep reply) {
		if msg := g.bank.auditViolation(rep); msg != "" {
			recMu.Lock()
			auditBad = append(auditBad, msg)
			recMu.Unlock()
		}
	}
	// Under full load an audit rarely gets through: it holds its rows'
	// local locks while it waits for their global locks, and a rollback
	// in flight needs those rows (the lock-wait budget breaks the wait).
	// So every third audit waits for a quiet moment: new transfers are
	// held back until the TMs in flight have returned, while their phase
	// two (and the faults) go on.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; time.Now().Before(deadline); i++ {
			quiet := i%3 == 2
			if quiet {
				gate.Lock()
				time.Sleep(100 * time.Millisecond)
			}
			rep, err := audit()
			if quiet {
				gate.Unlock()
			}
			st.audits.Add(1)
			if err == nil {
				st.auditsOK.Add(1)
				checkAudit(rep)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	// The faults, one at a time, each kind in turn.
	var lastFault time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		kinds := []string{"tc", "rm", "tc", "partition-tc", "tc", "rm", "partition-db"}
		for i := 0; ; i++ {
			wait := gap[0] + rand.N(gap[1]-gap[0])
			if time.Now().Add(wait).After(deadline) {
				break
			}
			time.Sleep(wait)
			switch kinds[i%len(kinds)] {
			case "tc":
				g.tc.kill()
				time.Sleep(100*time.Millisecond + rand.N(700*time.Millisecond))
				g.tc = g.tc.restart()
				st.tcKills.Add(1)
			case "rm":
				j := rand.IntN(2)
				wmu.Lock()
				old := workers[j]
				wmu.Unlock()
				old.kill()
				time.Sleep(300*time.Millisecond + rand.N(1200*time.Millisecond))
				nw := old.restart(nil)
				wmu.Lock()
				workers[j] = nw
				wmu.Unlock()
				st.rmKills.Add(1)
			case "partition-tc", "partition-db":
				ps := []*proxy{ptc}
				if kinds[i%len(kinds)] == "partition-db" {
					ps = []*proxy{pdb["a"], pdb["b"]}
					st.dbPartitions.Add(1)
				} else {
					st.tcPartitions.Add(1)
				}
				cut := rand.IntN(2) == 0
				for _, p := range ps {
					if cut {
						p.cutOff()
					} else {
						p.blackhole()
					}
				}
				time.Sleep(partitionLen(t))
				for _, p := range ps {
					p.heal()
				}
			}
			lastFault = time.Now()
		}
	}()
	wg.Wait()
	if lastFault.IsZero() {
		lastFault = time.Now()
	}

	// I11: everything finished within 30 s of the last fault.
	r := settle(t, g.admin, time.Until(lastFault.Add(30*time.Second)))
	// A last audit, with nothing else running, must get through.
	var final reply
	if !waitFor(30*time.Second, func() bool {
		rep, err := audit()
		final = rep
		return err == nil
	}) {
		r.add("audit", "no audit got through after the load")
	} else {
		st.auditsOK.Add(1)
		checkAudit(final)
	}
	for _, msg := range auditBad {
		r.add("audit", "%s", msg)
	}
	r = append(r, g.bank.check(g.admin, g.coord, recs, true)...)
	r = append(r, g.cliViews()...)

	commit, rollback, unknown := outcomes(recs)
	kinds := map[string]int{}
	for _, rec := range recs {
		if rec.err != nil {
			kinds[kindOf(rec.err)]++
		}
	}
	st.print(t, len(recs), commit, rollback, unknown, kinds, r)
	r.clean(t)
	if commit == 0 || st.forced.Load() == 0 || st.tcKills.Load() == 0 || st.rmKills.Load() == 0 {
		t.Errorf("the run exercised too little: %d commits, %d forced rollbacks, %d TC kills, %d RM kills",
			commit, st.forced.Load(), st.tcKills.Load(), st.rmKills.Load())
	}
}

type bankStats struct {
	forced, audits, auditsOK                     atomic.Int64
	tcKills, rmKills, tcPartitions, dbPartitions atomic.Int64
}

// print writes the run's summary: to stdout in soak (make soak), to the
// test log otherwise.
func (s *bankStats) print(t *testing.T, n, commit, rollback, unknown int, kinds map[string]int, r report) {
	var b strings.Builder
	fmt.Fprintf(&b, "bank invariant run summary\n")
	fmt.Fprintf(&b, "  %-34s %8d\n", "global transactions", n)
	fmt.Fprintf(&b, "  %-34s %8d\n", "  committed", commit)
	fmt.Fprintf(&b, "  %-34s %8d\n", "  rolled back", rollback)
	fmt.Fprintf(&b, "  %-34s %8d\n", "    asked to roll back (1 in 5)", s.forced.Load())
	fmt.Fprintf(&b, "  %-34s %8d\n", "  outcome unknown to the TM", unknown)
	fmt.Fprintf(&b, "  %-34s %8s\n", "why transactions rolled back", "")
	for _, k := range []string{"forced", "lock", "insufficient", "tc-unreachable", "db", "timeout", "transport", "refused", "rolledback", "hanging", "other"} { // see errKind
		if kinds[k] > 0 {
			fmt.Fprintf(&b, "    %-32s %8d\n", k, kinds[k])
		}
	}
	fmt.Fprintf(&b, "  %-34s %8d\n", "audits under global locks", s.audits.Load()+1)
	fmt.Fprintf(&b, "  %-34s %8d\n", "  that got through (lock waits)", s.auditsOK.Load())
	fmt.Fprintf(&b, "  %-34s %8d\n", "TC kills (SIGKILL + restart)", s.tcKills.Load())
	fmt.Fprintf(&b, "  %-34s %8d\n", "RM kills (SIGKILL + restart)", s.rmKills.Load())
	fmt.Fprintf(&b, "  %-34s %8d\n", "RM-TC partitions", s.tcPartitions.Load())
	fmt.Fprintf(&b, "  %-34s %8d\n", "RM-DB partitions", s.dbPartitions.Load())
	fmt.Fprintf(&b, "  invariants:\n")
	for _, inv := range invariants {
		n := 0
		for _, v := range r {
			if v.inv == inv {
				n++
			}
		}
		res := "ok"
		if n > 0 {
			res = fmt.Sprintf("FAILED (%d)", n)
		}
		fmt.Fprintf(&b, "    %-10s %s\n", inv, res)
	}
	if soak(t) > 0 {
		fmt.Fprint(os.Stdout, b.String())
	} else {
		t.Log(b.String())
	}
}

// auditViolation says what is wrong with an audit's answer (read under
// global locks on every account), or "".
func (b *bank) auditViolation(rep reply) string {
	if rep.Total != b.total() || rep.Min < 0 || rep.Rows != 2*b.accounts {
		return fmt.Sprintf("an audit under global locks saw total %d (want %d), lowest balance %d, %d rows", rep.Total, b.total(), rep.Min, rep.Rows)
	}
	return ""
}
