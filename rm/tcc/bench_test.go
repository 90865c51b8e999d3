package tcc

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// BenchmarkTCC runs global transactions of two no-op TCC branches (no
// database, no fence) against an in-process TC on Badger, from 16 and 64
// concurrent callers. Each transaction is Begin, two RegisterBranch, and a
// Commit that returns after both Confirms ran on the RM's stream. It
// reports throughput (tx/s) and latency percentiles.
func BenchmarkTCC(b *testing.B) {
	for _, conc := range []int{16, 64} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			srv := tctest.Start(b, tctest.WithBadger())
			conn := srv.Conn(b)
			tmgr := tm.New(conn)
			rmc := rm.New(conn, rm.WithConcurrency(64))
			defer rmc.Close()
			noop := Funcs[struct{}]{Try: func(context.Context, struct{}) error { return nil }}
			first, err := Register(rmc, "bench-a", noop)
			if err != nil {
				b.Fatal(err)
			}
			second, err := Register(rmc, "bench-b", noop)
			if err != nil {
				b.Fatal(err)
			}
			if err := rmc.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			runConcurrent(b, conc, func(ctx context.Context) error {
				return tmgr.Do(ctx, tm.Options{Name: "bench-tcc"}, func(ctx context.Context) error {
					if err := first.Try(ctx, struct{}{}); err != nil {
						return err
					}
					return second.Try(ctx, struct{}{})
				})
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
