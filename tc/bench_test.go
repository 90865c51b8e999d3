package tc_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tc/tctest"
)

// BenchmarkGlobalTx measures whole two-branch global transactions through
// the coordinator over real gRPC (loopback): lazy Begin with the first
// registration, a second registration, Commit and its phase two, answered
// by a raw RM on the same connection. It runs on Badger (fsync before every
// acknowledgement) and on the memory store:
//
//	go test ./tc -run '^$' -bench GlobalTx -benchtime 5s
func BenchmarkGlobalTx(b *testing.B) {
	for _, store := range []string{"badger", "memory"} {
		for _, par := range []int{1, 8, 32} { // goroutines = par × GOMAXPROCS
			for _, metrics := range []bool{false, true} { // --http-addr: metrics recorded
				b.Run(fmt.Sprintf("store=%s/par=%d/metrics=%v", store, par, metrics), func(b *testing.B) {
					var opts []tctest.Option
					if store == "badger" {
						opts = append(opts, tctest.WithBadger())
					}
					if metrics {
						opts = append(opts, withHTTP)
					}
					srv := tctest.Start(b, opts...)
					conn := srv.Conn(b)
					rm := attachRM(b, conn, "db-a", "db-b")
					defer rm.close()
					coord := xactpb.NewCoordinatorClient(conn)
					ctx := context.Background()
					res, err := coord.Reserve(ctx, &xactpb.ReserveRequest{})
					if err != nil {
						b.Fatal(err)
					}
					prefix := res.GetXidPrefix()
					var seq atomic.Int64
					b.SetParallelism(par)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							n := seq.Add(1)
							xid := fmt.Sprintf("%s%x", prefix, n)
							begin := &xactpb.BeginRequest{Name: "bench", TimeoutMs: 30000}
							for i, r := range []string{"db-a", "db-b"} {
								req := &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: r, LockKeys: []string{fmt.Sprintf("t:%d", n)}}
								if i == 0 {
									req.Begin = begin
								}
								if _, err := coord.RegisterBranch(ctx, req); err != nil {
									b.Error(err)
									return
								}
							}
							if _, err := coord.Commit(ctx, &xactpb.CommitRequest{Xid: xid}); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
				})
			}
		}
	}
}

// BenchmarkHotRow measures global transactions that all update one row:
// each registers one AT branch with the same lock key (retrying, as an RM
// does, while another global holds it) and commits. The RMs' phase-two
// commit takes hotRowPhaseTwo (an undo-log delete in the RM's database),
// so a lock held until phase two ends adds that to every transaction's
// hold time; a lock released with the commit decision does not:
//
//	go test ./tc -run '^$' -bench HotRow -benchtime 3s
func BenchmarkHotRow(b *testing.B) {
	const hotRowPhaseTwo = time.Millisecond
	srv := tctest.Start(b, tctest.WithBadger())
	conn := srv.Conn(b)
	for range 4 { // the hub spreads phase two over them
		rm := attachRM(b, conn, "db-a")
		rm.setAnswer(func(*xactpb.BranchAction) (xactpb.Outcome, string) {
			time.Sleep(hotRowPhaseTwo)
			return xactpb.Outcome_OUTCOME_DONE, ""
		})
		defer rm.close()
	}
	coord := xactpb.NewCoordinatorClient(conn)
	ctx := context.Background()
	res, err := coord.Reserve(ctx, &xactpb.ReserveRequest{})
	if err != nil {
		b.Fatal(err)
	}
	prefix := res.GetXidPrefix()
	var seq, conflicts atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			xid := fmt.Sprintf("%s%x", prefix, seq.Add(1))
			req := &xactpb.RegisterBranchRequest{Xid: xid, ResourceId: "db-a", LockKeys: []string{"t:hot"},
				Begin: &xactpb.BeginRequest{Name: "hot", TimeoutMs: 30000}}
			for {
				_, err := coord.RegisterBranch(ctx, req)
				if err == nil {
					break
				}
				if !errors.Is(protocol.FromStatus(err), protocol.ErrLockConflict) {
					b.Error(err)
					return
				}
				conflicts.Add(1)
				time.Sleep(100 * time.Microsecond) // the RM's lock-wait backoff
			}
			if _, err := coord.Commit(ctx, &xactpb.CommitRequest{Xid: xid}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/tx")
}
