package badger_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/badger"
)

func Example() {
	dir, err := os.MkdirTemp("", "xact-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	s, err := badger.Open(dir)
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
	if err := s.CreateGlobal(ctx, g); err != nil {
		fmt.Println(err)
		return
	}
	b := &storage.Branch{XID: g.XID, Resource: "db:3306/orders", LockKeys: []string{"orders:42"}}
	id, err := s.RegisterBranch(ctx, b, now)
	fmt.Println(id, err)

	other := &storage.Global{XID: "node-1:2", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}
	if err := s.CreateGlobal(ctx, other); err != nil {
		fmt.Println(err)
		return
	}
	_, err = s.RegisterBranch(ctx, &storage.Branch{XID: other.XID, Resource: "db:3306/orders", LockKeys: []string{"orders:42"}}, now)
	fmt.Println(err)
	// Output:
	// 1 <nil>
	// xact: global lock conflict on db:3306/orders "orders:42" held by node-1:1
}
