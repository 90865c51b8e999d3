package saga_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// BenchmarkSaga runs sagas of two no-op steps (no database, no fence, no
// compensations) against an in-process TC on Badger, from 16 and 64
// concurrent callers. Each saga is two RegisterBranch (the first begins
// the global lazily; the second carries the first step's output report)
// and a Commit (carrying the second step's) that returns after phase two
// ran on the RM's stream. It reports throughput (tx/s) and latency
// percentiles.
func BenchmarkSaga(b *testing.B) {
	for _, conc := range []int{16, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			srv := tctest.Start(b, tctest.WithBadger())
			conn := srv.Conn(b)
			rmc := rm.New(conn, rm.WithConcurrency(64))
			defer rmc.Close()
			noop := func(_ context.Context, n int) (int, error) { return n + 1, nil }
			def, err := saga.Define(tm.New(conn), rmc, "bench-saga",
				saga.Step("first", noop, nil),
				saga.Step("second", noop, nil),
			)
			if err != nil {
				b.Fatal(err)
			}
			if err := rmc.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			runConcurrent(b, conc, func(ctx context.Context) error {
				_, err := def.Run(ctx, 0)
				return err
			})
		})
	}
}

// runConcurrent runs fn b.N times from conc goroutines and reports tx/s
// and the p50 and p99 latencies.
func runConcurrent(b *testing.B, conc int, fn func(context.Context) error) {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := fn(ctx); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "tx/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
