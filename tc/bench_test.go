package tc_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
			b.Run(fmt.Sprintf("store=%s/par=%d", store, par), func(b *testing.B) {
				var opts []tctest.Option
				if store == "badger" {
					opts = append(opts, tctest.WithBadger())
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
