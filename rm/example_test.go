package rm_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
)

// inventory is a TCC-style participant whose Confirm and Cancel are
// idempotent.
type inventory struct{}

func (inventory) Commit(ctx context.Context, a rm.Action) error {
	rm.Logger(ctx).Info("confirm reservation")
	return nil // DONE
}

func (inventory) Rollback(ctx context.Context, a rm.Action) error {
	if len(a.AppData) == 0 {
		// Retrying cannot help: park the branch for an operator.
		return rm.Permanent(errors.New("reservation context missing"))
	}
	return nil
}

// This example needs a TC listening on localhost:8091 (`xact server`).
func ExampleClient_Serve() {
	// protocol.DialOptions: keepalive and a short reconnect backoff, so the
	// RM notices a lost TC and re-attaches soon after it is back.
	opts := append(protocol.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient("localhost:8091", opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	c := rm.New(conn, rm.WithClientID("inventory-1"), rm.WithConcurrency(32))
	defer c.Close()
	if err := c.Serve("inventory", xactpb.BranchType_BRANCH_TYPE_TCC, inventory{}); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		fmt.Println("not attached yet, still trying:", err)
	}
}
