package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// The contention workload of issue 9, the shape a bank's first schema
// has: two databases with hot accounts, and a ledger whose primary key is
// two columns (xid, side), written by every branch; transfers go both ways
// between the databases between random accounts, and a share of them is
// rolled back on purpose after both branches committed locally.
type contention struct {
	e        *env
	dbs      [2]*database
	accounts int
	rollback float64 // share of transfers rolled back on purpose
	seq      atomic.Int64
	// Each run's transfers have their own ledger ids.
	run string
}

var errForced = errors.New("forced rollback")

func newContention(b *testing.B, accounts int) *contention {
	b.Helper()
	e := newEnv(b, tctest.WithConfig(func(c *tc.Config) {
		d := tc.DefaultConfig()
		c.ScanInterval, c.RetryBase, c.RetryMax = d.ScanInterval, d.RetryBase, d.RetryMax
	}))
	ct := &contention{e: e, accounts: accounts, rollback: 0.2}
	if v := os.Getenv("XACT_BENCH_ROLLBACK"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("XACT_BENCH_ROLLBACK: %v", err)
		}
		ct.rollback = f
	}
	for i := range ct.dbs {
		// What a user gets: the default lock wait and retry interval.
		opts := []Option{WithLockWait(DefaultLockWait, DefaultLockRetryInterval)}
		if os.Getenv("XACT_BENCH_READ_AFTER") != "" {
			opts = append(opts, WithAfterImagesRead()) // to compare with derived images
		}
		d := e.newDB(b, []dbOption{interpolate(true)}, opts...)
		d.accounts(accounts)
		d.exec("CREATE TABLE ledger (xid VARCHAR(128) NOT NULL, side CHAR(1) NOT NULL, account BIGINT NOT NULL, " +
			"amount BIGINT NOT NULL, PRIMARY KEY (xid, side))")
		for _, db := range []*sql.DB{d.raw, d.db} {
			db.SetMaxOpenConns(64)
			db.SetMaxIdleConns(64)
		}
		ct.dbs[i] = d
	}
	return ct
}

// leg is one side of a transfer: a local transaction on one database that
// moves delta on account and records it in the ledger.
func leg(ctx context.Context, db *sql.DB, id, side string, account, delta int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", delta, account); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO ledger (xid, side, account, amount) VALUES (?, ?, ?, ?)", id, side, account, delta); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// pick chooses a transfer: source database, two accounts, and whether it
// is rolled back on purpose.
func (ct *contention) pick(r *rand.Rand) (src, from, to int, forced bool) {
	src = r.IntN(2)
	from = 1 + r.IntN(ct.accounts)
	to = 1 + r.IntN(ct.accounts)
	return src, from, to, r.Float64() < ct.rollback
}

// plain is the transfer as two local transactions without coordination;
// a forced rollback rolls back the second one instead of committing it
// (the work is done, nothing of it is kept on that side).
func (ct *contention) plain(ctx context.Context, r *rand.Rand) (outcome, time.Duration) {
	src, from, to, forced := ct.pick(r)
	id := ct.run + "p" + strconv.FormatInt(ct.seq.Add(1), 10)
	if err := leg(ctx, ct.dbs[src].raw, id, "D", from, -1); err != nil {
		return classify(err), 0
	}
	tx, err := ct.dbs[1-src].raw.BeginTx(ctx, nil)
	if err != nil {
		return classify(err), 0
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", 1, to); err != nil {
		return classify(err), 0
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO ledger (xid, side, account, amount) VALUES (?, ?, ?, ?)", id, "C", to, 1); err != nil {
		return classify(err), 0
	}
	if forced {
		t0 := time.Now()
		if err := tx.Rollback(); err != nil {
			return classify(err), 0
		}
		return rolledBack, time.Since(t0)
	}
	if err := tx.Commit(); err != nil {
		return classify(err), 0
	}
	return committed, 0
}

// at is the same transfer as one global transaction with two AT
// branches. The rollback latency is the time from the body's error to
// tm.Do's answer.
func (ct *contention) at(ctx context.Context, r *rand.Rand) (outcome, time.Duration) {
	src, from, to, forced := ct.pick(r)
	var bodyEnd time.Time
	err := ct.e.tm.Do(ctx, tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		defer func() { bodyEnd = time.Now() }()
		id := ct.run + "a" + strconv.FormatInt(ct.seq.Add(1), 10)
		if err := leg(ctx, ct.dbs[src].db, id, "D", from, -1); err != nil {
			return err
		}
		if err := leg(ctx, ct.dbs[1-src].db, id, "C", to, 1); err != nil {
			return err
		}
		if forced {
			return errForced
		}
		return nil
	})
	switch {
	case err == nil:
		return committed, 0
	case errors.Is(err, errForced):
		return rolledBack, time.Since(bodyEnd)
	}
	return classify(err), time.Since(bodyEnd)
}

type outcome int

const (
	committed outcome = iota
	rolledBack
	failedLock     // a global lock was not granted in time
	failedLockRB   // a global lock held by a transaction that is rolling back
	failedDeadlock // InnoDB chose the transaction as a deadlock victim, or a lock wait timed out
	failedOther
	outcomes
)

func classify(err error) outcome {
	var lc *protocol.LockConflictError
	switch {
	case errors.As(err, &lc) && lc.HolderRollingBack:
		return failedLockRB
	case errors.Is(err, protocol.ErrLockConflict):
		return failedLock
	case isDeadlock(err):
		return failedDeadlock
	}
	return failedOther
}

// isDeadlock reports MySQL errors 1213 (deadlock) and 1205 (lock wait
// timeout).
func isDeadlock(err error) bool {
	switch errno.Of(err) {
	case errno.LockDeadlock, errno.LockWaitTimeout:
		return true
	}
	return false
}

type contentionStats struct {
	elapsed   time.Duration
	count     [outcomes]int
	rollbacks []time.Duration // latency of forced rollbacks
	deadlocks int64           // InnoDB deadlocks during the run, both databases
	firstErr  error
}

func (s *contentionStats) committedPerSec() float64 {
	return float64(s.count[committed]) / s.elapsed.Seconds()
}

func (s *contentionStats) rollbackQuantile(q float64) time.Duration {
	if len(s.rollbacks) == 0 {
		return 0
	}
	return s.rollbacks[min(len(s.rollbacks)-1, int(float64(len(s.rollbacks))*q))]
}

// deadlocks is the server's InnoDB deadlock counter (both databases live
// on one server).
func (ct *contention) deadlocks(b *testing.B) int64 {
	b.Helper()
	var name string
	var n int64
	if err := ct.dbs[0].raw.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").Scan(&name, &n); err != nil {
		b.Fatal(err)
	}
	return n
}

// drive runs n transfers with conc workers.
func (ct *contention) drive(b *testing.B, conc, n int, transfer func(context.Context, *rand.Rand) (outcome, time.Duration)) *contentionStats {
	b.Helper()
	d0 := ct.deadlocks(b)
	var next atomic.Int64
	var mu sync.Mutex
	st := &contentionStats{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(n)))
			for next.Add(1) <= int64(n) {
				o, lat := transfer(context.Background(), r)
				mu.Lock()
				st.count[o]++
				if o == rolledBack {
					st.rollbacks = append(st.rollbacks, lat)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	st.deadlocks = ct.deadlocks(b) - d0
	slices.Sort(st.rollbacks)
	return st
}

// check waits for the coordinator to finish every global, then verifies
// that the money adds up: each database's balances moved by exactly its
// ledger rows, and no undo log is left.
func (ct *contention) check(b *testing.B) {
	b.Helper()
	eventually(b, func() error {
		for _, d := range ct.dbs {
			if n, _ := d.undoLogs(); n != 0 {
				return fmt.Errorf("%s: %d undo logs left", d.resource, n)
			}
		}
		return nil
	})
	for _, d := range ct.dbs {
		var bal, ledger sql.NullInt64
		if err := d.raw.QueryRow("SELECT SUM(balance) FROM account").Scan(&bal); err != nil {
			b.Fatal(err)
		}
		if err := d.raw.QueryRow("SELECT SUM(amount) FROM ledger").Scan(&ledger); err != nil {
			b.Fatal(err)
		}
		if got, want := bal.Int64, int64(100*ct.accounts)+ledger.Int64; got != want {
			b.Fatalf("%s: balances sum to %d, want %d (accounts plus ledger)", d.resource, got, want)
		}
	}
}

func (ct *contention) report(b *testing.B, name string, s *contentionStats) {
	b.ReportMetric(s.committedPerSec(), name+"-committed/s")
	b.ReportMetric(float64(s.rollbackQuantile(.5).Microseconds())/1000, name+"-rollback-p50-ms")
	b.ReportMetric(float64(s.rollbackQuantile(.99).Microseconds())/1000, name+"-rollback-p99-ms")
	b.ReportMetric(float64(s.deadlocks)/s.elapsed.Minutes(), name+"-deadlocks/min")
	total := 0
	for _, c := range s.count {
		total += c
	}
	b.ReportMetric(float64(s.count[failedLock]+s.count[failedLockRB]+s.count[failedDeadlock]+s.count[failedOther])/float64(total), name+"-failed-share")
	b.Logf("%s: %d transfers in %v: committed %d, rolled back %d, lock conflicts %d (holder rolling back %d), deadlocks/lock-wait timeouts %d, other %d; InnoDB deadlocks %d",
		name, total, s.elapsed.Round(time.Millisecond), s.count[committed], s.count[rolledBack], s.count[failedLock], s.count[failedLockRB],
		s.count[failedDeadlock], s.count[failedOther], s.deadlocks)
}

// BenchmarkContention runs issue 9's contention workload: two databases,
// hot accounts, a ledger with a two-column primary key written in each
// branch, 20% forced rollbacks, 16 workers; first as plain local
// transactions, then as AT global transactions. It reports committed
// transfers a second, the latency of forced rollbacks, InnoDB deadlocks a
// minute and the share of transfers that failed (lock conflicts,
// deadlocks), and the AT/plain ratio of committed transfers.
//
//	go test ./datasource -run '^$' -bench 'BenchmarkContention' -benchtime 3000x
func BenchmarkContention(b *testing.B) {
	for _, accounts := range []int{200, 2000} {
		b.Run(fmt.Sprintf("accounts=%d", accounts), func(b *testing.B) {
			ct := newContention(b, accounts)
			conc := 16
			if v := os.Getenv("XACT_BENCH_CONC"); v != "" {
				conc, _ = strconv.Atoi(v)
			}
			ct.run = "r" + strconv.Itoa(b.N) + "-"
			plain := ct.drive(b, conc, b.N, ct.plain)
			at := ct.drive(b, conc, b.N, ct.at)
			ct.check(b)
			ct.report(b, "plain", plain)
			ct.report(b, "at", at)
			b.ReportMetric(at.committedPerSec()/plain.committedPerSec(), "at/plain")
		})
	}
}
