package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tc/tctest"
	"github.com/xact-io/xact/tm"
)

// BenchmarkTraceCost runs xact bench's AT transaction (two no-op branches)
// in one process: TC on the memory store, TM and RM over loopback gRPC.
// XACT_BENCH_TRACE=on traces as `xact server` with OTEL_TRACES_EXPORTER=discard
// and `xact bench --trace` do (a process can set its global provider only
// once, so on and off are two runs); compare allocs/op and B/op:
//
//	go test ./cmd/xact -run '^$' -bench TraceCost -benchmem
//	XACT_BENCH_TRACE=on go test ./cmd/xact -run '^$' -bench TraceCost -benchmem
func BenchmarkTraceCost(b *testing.B) {
	ctx := context.Background()
	on := os.Getenv("XACT_BENCH_TRACE") == "on"
	if on {
		tp, err := newTracerProvider(ctx, discardExporter{})
		if err != nil {
			b.Fatal(err)
		}
		defer tp.Shutdown(ctx)
		otel.SetTracerProvider(tp)
	}
	srv := tctest.Start(b)
	tr, err := benchTracing(ctx, on)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.stop()
	conn, err := grpc.NewClient(srv.Addr(), append(append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials())), tr.dial...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rmc := rm.New(conn, append(tr.rm, rm.WithClientID("trace-cost"))...)
	defer rmc.Close()
	resources := []string{"bench-0", "bench-1"}
	for _, r := range resources {
		if err := rmc.Serve(r, xactpb.BranchType_BRANCH_TYPE_AT, &noop{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := rmc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	tmgr := tm.New(conn, tr.tm...)
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			err := tmgr.Do(ctx, tm.Options{Name: "bench"}, func(ctx context.Context) error {
				xid, _ := tm.XID(ctx)
				for i, r := range resources {
					if _, err := rmc.RegisterBranch(ctx, xid, r, xactpb.BranchType_BRANCH_TYPE_AT, []string{fmt.Sprintf("bench:%d-%d", n, i)}, nil); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}
