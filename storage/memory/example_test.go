package memory_test

import (
	"context"
	"fmt"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/memory"
)

func Example() {
	s := memory.New(memory.WithTombstoneRetention(0)) // 0: the default, 10 minutes
	defer s.Close()
	ctx := context.Background()

	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}, storage.Durable); err != nil {
		fmt.Println(err)
		return
	}
	if err := s.FinishGlobal(ctx, "x1", xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, storage.Durable); err != nil {
		fmt.Println(err)
		return
	}
	g, err := s.GetGlobal(ctx, "x1")
	fmt.Println(g.Finished, g.Status, err)
	// Output:
	// true GLOBAL_STATUS_COMMITTED <nil>
}
