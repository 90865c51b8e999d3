package embedded_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
)

func Example() {
	dir, err := os.MkdirTemp("", "xact-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	s, err := embedded.Open(dir)
	if err != nil {
		fmt.Println(err) // errors.Is(err, storage.ErrLocked): another process has dir
		return
	}
	defer s.Close()

	ctx := context.Background()
	now := time.Now()
	g := &storage.Global{
		XID:      "node-1:1",
		Status:   xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN,
		BeganAt:  now,
		Deadline: now.Add(time.Minute),
		NextAt:   now.Add(time.Minute),
	}
	// Each call returns once its change is on disk.
	if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
		fmt.Println(err)
		return
	}
	// A branch is stored if admit accepts its global (the coordinator's
	// registration rule, tc/ledger, is one such check).
	inBegin := func(g *storage.Global) error {
		if g.Status != xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN {
			return fmt.Errorf("%s is %v", g.XID, g.Status)
		}
		return nil
	}
	b := &storage.Branch{XID: g.XID, Resource: "db:3306/orders", LockKeys: []string{"orders:42"}}
	id, created, err := s.AddBranch(ctx, b, nil, inBegin, storage.Durable)
	fmt.Println(id, created, err)

	// A tombstone stays for the retention period.
	if err := s.FinishGlobal(ctx, g.XID, xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, storage.Durable); err != nil {
		fmt.Println(err)
		return
	}
	_, _, err = s.AddBranch(ctx, &storage.Branch{XID: g.XID, Resource: "db:3306/orders"}, nil, inBegin, storage.Durable)
	fmt.Println(err)
	// Output:
	// 1 false <nil>
	// node-1:1 is GLOBAL_STATUS_COMMITTED
}
