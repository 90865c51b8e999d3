package datasource

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/xact-io/xact/tc"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
	"github.com/xact-io/xact/undo"
)

// benchAccounts is the number of accounts in each database: worker w
// moves money from account w+1 of A to account w+1 of B, so workers do not
// contend for rows and the benchmark measures the protocol, not lock
// waits.
const benchAccounts = 64

type benchEnv struct {
	e     *env
	a, b  *database
	dbPID int
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	// The TC's production timers: the tests' fast scanner would cost the
	// TC a Badger scan every 20ms.
	e := newEnv(b, tctest.WithConfig(func(c *tc.Config) {
		d := tc.DefaultConfig()
		c.ScanInterval, c.RetryBase, c.RetryMax = d.ScanInterval, d.RetryBase, d.RetryMax
	}))
	be := &benchEnv{e: e}
	// interpolateParams=true for both runs: without it every statement
	// with arguments costs a prepare, an execute and a close, in the
	// plain run as much as in the AT run.
	// XACT_BENCH_DELETE_DELAY overrides the deleter's delay, to compare.
	var opts []Option
	if v := os.Getenv("XACT_BENCH_DELETE_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("XACT_BENCH_DELETE_DELAY: %v", err)
		}
		opts = append(opts, WithDeleteDelay(d))
	}
	be.a = e.newDB(b, []dbOption{interpolate(true)}, opts...)
	be.b = e.newDB(b, []dbOption{interpolate(true)}, opts...)
	for _, d := range []*database{be.a, be.b} {
		d.accounts(benchAccounts)
		for _, db := range []*sql.DB{d.raw, d.db} {
			db.SetMaxOpenConns(2 * benchAccounts)
			db.SetMaxIdleConns(2 * benchAccounts)
		}
	}
	return be
}

// plain is the transfer as two local transactions without xact.
func (be *benchEnv) plain(ctx context.Context, w int) error {
	return transferAccount(ctx, be.a.raw, be.b.raw, w+1, 1)
}

// at is the same transfer as a global transaction with two AT branches.
func (be *benchEnv) at(ctx context.Context, w int) error {
	return be.e.tm.Do(ctx, tm.Options{Name: "transfer", Timeout: 30 * time.Second}, func(ctx context.Context) error {
		return transferAccount(ctx, be.a.db, be.b.db, w+1, 1)
	})
}

// floorSeq numbers the undo rows of sqlOnly runs.
var floorSeq atomic.Int64

// sqlOnly is the transfer as the SQL an AT branch sends, without xact:
// per database a local transaction with the before image (SELECT … FOR
// UPDATE), the update, the after image (unless afterImage is false) and
// the undo_log insert, with an encoded undo log of the size AT writes.
// No coordinator, no parsing, no phase two: the database's share of AT
// on its own, an upper bound for any AT implementation that sends these
// statements. The undo rows are deleted after the run, untimed.
func (be *benchEnv) sqlOnly(afterImage bool) func(context.Context, int) error {
	return func(ctx context.Context, w int) error {
		id := w + 1
		for _, step := range []struct {
			db    *sql.DB
			delta int
		}{{be.a.raw, -1}, {be.b.raw, 1}} {
			tx, err := step.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			err = func() error {
				var bid, bal int64
				var note sql.NullString
				if err := tx.QueryRowContext(ctx, "SELECT `id`, `balance`, `note` FROM `account` WHERE `id` = ? FOR UPDATE", id).Scan(&bid, &bal, &note); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", step.delta, id); err != nil {
					return err
				}
				after := bal + int64(step.delta)
				if afterImage {
					if err := tx.QueryRowContext(ctx, "SELECT `id`, `balance`, `note` FROM `account` WHERE `id` = ?", id).Scan(&bid, &after, &note); err != nil {
						return err
					}
				}
				info, err := undo.Encode(&undo.Log{Records: []undo.Record{{
					Op: undo.OpUpdate, Table: "account", PrimaryKey: []string{"id"},
					Before: []undo.Row{{{Name: "id", Value: undo.Int(bid)}, {Name: "balance", Value: undo.Int(bal)}, {Name: "note", Value: undo.Null()}}},
					After:  []undo.Row{{{Name: "id", Value: undo.Int(bid)}, {Name: "balance", Value: undo.Int(after)}, {Name: "note", Value: undo.Null()}}},
				}}})
				if err != nil {
					return err
				}
				_, err = tx.ExecContext(ctx, undo.InsertLogSQL, "floor", floorSeq.Add(1), undo.LogContext, info, undo.StatusNormal)
				return err
			}()
			if err != nil {
				tx.Rollback()
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
		}
		return nil
	}
}

func transferAccount(ctx context.Context, src, dst *sql.DB, id, amount int) error {
	for _, step := range []struct {
		db    *sql.DB
		delta int
	}{{src, -amount}, {dst, amount}} {
		tx, err := step.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ? WHERE id = ?", step.delta, id); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

type runStats struct {
	tps float64
	p99 time.Duration
	// CPU per transfer of this process (client, TC and RM) and of the
	// database server.
	goCPU, dbCPU time.Duration
}

// cpuTimes returns the CPU time used so far by this process and by the
// database server (whose pid the server names in @@pid_file).
func (be *benchEnv) cpuTimes(b *testing.B) (self, db time.Duration) {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if be.dbPID == 0 {
		var file string
		if err := be.a.raw.QueryRow("SELECT @@pid_file").Scan(&file); err != nil {
			b.Fatal(err)
		}
		pid, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		be.dbPID, _ = strconv.Atoi(strings.TrimSpace(string(pid)))
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", be.dbPID))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name: utime and stime are the 12th and
	// 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return self, time.Duration(ut+st) * 10 * time.Millisecond
}

// run does n transfers with conc workers and measures them.
func (be *benchEnv) run(b *testing.B, conc, n int, transfer func(context.Context, int) error) runStats {
	b.Helper()
	self0, db0 := be.cpuTimes(b)
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				if err := transfer(context.Background(), w); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		b.Fatalf("transfer: %v", err)
	}
	self1, db1 := be.cpuTimes(b)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if os.Getenv("XACT_BENCH_DIST") != "" {
		q := func(f float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*f))] }
		b.Logf("latency p50 %v p90 %v p99 %v p99.9 %v max %v", q(.5), q(.9), q(.99), q(.999), all[len(all)-1])
	}
	return runStats{
		tps:   float64(len(all)) / elapsed.Seconds(),
		p99:   all[min(len(all)-1, len(all)*99/100)],
		goCPU: (self1 - self0) / time.Duration(n),
		dbCPU: (db1 - db0) / time.Duration(n),
	}
}

// check verifies that no money was created or lost and that no undo log
// is left.
func (be *benchEnv) check(b *testing.B) {
	b.Helper()
	var sa, sb int
	be.a.raw.QueryRow("SELECT SUM(balance) FROM account").Scan(&sa)
	be.b.raw.QueryRow("SELECT SUM(balance) FROM account").Scan(&sb)
	if got, want := sa+sb, 2*100*benchAccounts; got != want {
		b.Fatalf("total balance = %d, want %d", got, want)
	}
	for _, d := range []*database{be.a, be.b} {
		if n, m := d.undoLogs(); n != 0 || m != 0 {
			b.Fatalf("undo_log = %d logs, %d markers after the run", n, m)
		}
	}
}

// BenchmarkTransfer runs b.N two-branch transfers across two MariaDB
// databases as plain local transactions and then as AT global
// transactions, at each concurrency, and reports throughput, p99 latency
// and the ratio AT/plain. (ns/op covers both runs; read the custom
// metrics.)
//
//	go test ./datasource -run '^$' -bench 'BenchmarkTransfer$' -benchtime 2000x
func BenchmarkTransfer(b *testing.B) {
	be := newBenchEnv(b)
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			plain := be.run(b, conc, b.N, be.plain)
			at := be.run(b, conc, b.N, be.at)
			be.check(b)
			floor := be.run(b, conc, b.N, be.sqlOnly(true))
			floorMin := be.run(b, conc, b.N, be.sqlOnly(false))
			for _, d := range []*database{be.a, be.b} {
				d.exec("DELETE FROM undo_log WHERE xid = 'floor'")
			}
			be.check(b)
			b.ReportMetric(plain.tps, "plain-tx/s")
			b.ReportMetric(at.tps, "at-tx/s")
			b.ReportMetric(float64(plain.p99.Microseconds())/1000, "plain-p99-ms")
			b.ReportMetric(float64(at.p99.Microseconds())/1000, "at-p99-ms")
			b.ReportMetric(at.tps/plain.tps, "at/plain")
			b.ReportMetric(floor.tps/plain.tps, "sql-only/plain")
			b.ReportMetric(floorMin.tps/plain.tps, "sql-only-no-after/plain")
			b.ReportMetric(float64(plain.goCPU.Microseconds()), "plain-go-cpu-us/tx")
			b.ReportMetric(float64(plain.dbCPU.Microseconds()), "plain-db-cpu-us/tx")
			b.ReportMetric(float64(at.goCPU.Microseconds()), "at-go-cpu-us/tx")
			b.ReportMetric(float64(at.dbCPU.Microseconds()), "at-db-cpu-us/tx")
			b.ReportMetric(float64(floor.dbCPU.Microseconds()), "sql-only-db-cpu-us/tx")
			b.ReportMetric(float64(floorMin.dbCPU.Microseconds()), "sql-only-no-after-db-cpu-us/tx")
			b.ReportMetric(float64(floor.goCPU.Microseconds()), "sql-only-go-cpu-us/tx")
			b.ReportMetric(float64(floorMin.goCPU.Microseconds()), "sql-only-no-after-go-cpu-us/tx")
		})
	}
}

// BenchmarkTransferAT runs the AT transfer alone, for profiles:
//
//	go test ./datasource -run '^$' -bench 'TransferAT/conc=16' -benchtime 3000x -cpuprofile cpu.out
func BenchmarkTransferAT(b *testing.B) {
	be := newBenchEnv(b)
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			at := be.run(b, conc, b.N, be.at)
			be.check(b)
			b.ReportMetric(at.tps, "at-tx/s")
			b.ReportMetric(float64(at.p99.Microseconds())/1000, "at-p99-ms")
			b.ReportMetric(float64(at.goCPU.Microseconds()), "at-go-cpu-us/tx")
			b.ReportMetric(float64(at.dbCPU.Microseconds()), "at-db-cpu-us/tx")
		})
	}
}
