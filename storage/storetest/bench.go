package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xact-io/xact/storage"
)

// benchGoroutines are the numbers of concurrent callers Bench measures.
var benchGoroutines = []int{1, 16, 64}

// Bench runs the store benchmarks. open must return a fresh, empty store and
// register its Close with b.Cleanup. For each operation and for 1, 16 and
// 64 concurrent callers it runs exactly that many goroutines (independent of
// GOMAXPROCS, unlike b.RunParallel with b.SetParallelism) and reports ops/s:
//
//   - CreateGlobal: one durable change per op.
//   - RegisterBranch: AddBranch of a branch with two fresh lock keys on a
//     global per goroutine; one durable change per op.
//   - FullTx: a committed global transaction with two branches as the TC
//     writes it: CreateGlobal (relaxed), two AddBranch (durable), the
//     commit decision by UpdateGlobal (durable), FinishGlobal (relaxed):
//     five changes per op, three of them durable; also reports changes/s.
func Bench(b *testing.B, open func(b *testing.B) storage.Store) {
	ops := []struct {
		name    string
		changes int
		setup   func(b *testing.B, s storage.Store, worker int) // outside the timer
		op      func(ctx context.Context, s storage.Store, worker int, seq int64) error
	}{
		{
			name:    "CreateGlobal",
			changes: 1,
			op: func(ctx context.Context, s storage.Store, _ int, seq int64) error {
				return s.CreateGlobal(ctx, newGlobal(benchXID(seq)), storage.Durable)
			},
		},
		{
			name:    "RegisterBranch",
			changes: 1,
			setup: func(b *testing.B, s storage.Store, worker int) {
				mustCreate(b, s, newGlobal("w"+strconv.Itoa(worker)))
			},
			op: func(ctx context.Context, s storage.Store, worker int, seq int64) error {
				k := strconv.FormatInt(seq, 10)
				br := newBranch("w"+strconv.Itoa(worker), resourceA, "a"+k, "b"+k)
				_, _, err := s.AddBranch(ctx, br, nil, accept, storage.Durable)
				return err
			},
		},
		{
			name:    "FullTx",
			changes: 5,
			op:      fullTx,
		},
	}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			for _, n := range benchGoroutines {
				b.Run(fmt.Sprintf("goroutines=%d", n), func(b *testing.B) {
					s := open(b)
					if op.setup != nil {
						for w := range n {
							op.setup(b, s, w)
						}
					}
					runWorkers(b, n, func(ctx context.Context, worker int, seq int64) error {
						return op.op(ctx, s, worker, seq)
					})
					if b.Failed() {
						return
					}
					perSec := float64(b.N) / b.Elapsed().Seconds()
					b.ReportMetric(perSec, "ops/s")
					if op.changes > 1 {
						b.ReportMetric(perSec*float64(op.changes), "changes/s")
					}
				})
			}
		})
	}
}

func benchXID(seq int64) string { return "bench-" + strconv.FormatInt(seq, 10) }

func fullTx(ctx context.Context, s storage.Store, _ int, seq int64) error {
	xid := benchXID(seq)
	if err := s.CreateGlobal(ctx, newGlobal(xid), storage.Relaxed); err != nil {
		return err
	}
	k := strconv.FormatInt(seq, 10)
	for _, res := range []string{resourceA, resourceB} {
		if _, _, err := s.AddBranch(ctx, newBranch(xid, res, "a"+k, "b"+k), nil, accept, storage.Durable); err != nil {
			return err
		}
	}
	if _, err := s.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
		g.Status = committing
		g.NextAt = base
		g.LocksReleased = true
		return nil
	}, storage.Durable); err != nil {
		return err
	}
	return s.FinishGlobal(ctx, xid, committed, storage.Relaxed)
}

// runWorkers runs b.N calls of fn spread over n goroutines, each call with
// a unique sequence number.
func runWorkers(b *testing.B, n int, fn func(ctx context.Context, worker int, seq int64) error) {
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range n {
		wg.Go(func() {
			for !failed.Load() {
				seq := next.Add(1)
				if seq > int64(b.N) {
					return
				}
				if err := fn(ctx, w, seq); err != nil {
					if failed.CompareAndSwap(false, true) {
						b.Errorf("op %d = %v, want nil", seq, err)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}
