package saga_test

import (
	"context"
	"database/sql"
	"log"
	"time"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/saga"
	"github.com/xact-io/xact/tm"
)

type Order struct {
	ID       string `json:"id"`
	Amount   int64  `json:"amount"`
	Payment  string `json:"payment,omitempty"`
	Shipment string `json:"shipment,omitempty"`
}

// A saga of a remote call and a step in the local database. conn is a
// connection to the TC; db holds fence.DDL and the orders table.
func Example() {
	var (
		conn *grpc.ClientConn
		db   *sql.DB
	)
	ctx := context.Background()
	rmc := rm.New(conn)
	defer rmc.Close()
	f, err := fence.New(db)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	charge := func(ctx context.Context, o Order) (Order, error) {
		// A call to the payment service, with the XID propagated by
		// tm.UnaryClientInterceptor; StepFrom(ctx) gives a stable key
		// for the service's idempotence.
		o.Payment = "pay-" + o.ID
		return o, nil
	}
	refund := func(ctx context.Context, r saga.Record[Order]) error {
		// Output is nil when the charge's outcome was not recorded: refund
		// by order id, which the payment service makes idempotent.
		return nil
	}
	ship := func(ctx context.Context, tx *sql.Tx, o Order) (Order, error) {
		_, err := tx.ExecContext(ctx, `INSERT INTO shipments (order_id) VALUES (?)`, o.ID)
		o.Shipment = o.ID
		return o, err
	}
	unship := func(ctx context.Context, tx *sql.Tx, r saga.Record[Order]) error {
		if r.Status == saga.StepFailed {
			return nil // the insert rolled back with the step
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM shipments WHERE order_id = ?`, r.Input.ID)
		return err
	}

	placeOrder, err := saga.Define(tm.New(conn), rmc, "place-order",
		saga.Step("charge", charge, refund, saga.WithRetry(saga.RetryPolicy{Attempts: 3})),
		saga.FencedStep("ship", f, ship, unship),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := rmc.Start(ctx); err != nil {
		log.Fatal(err)
	}
	o, err := placeOrder.RunWith(ctx, tm.Options{Timeout: time.Minute}, Order{ID: "o-1", Amount: 990})
	if err != nil {
		log.Print(err) // compensation is under way, driven by the TC
		return
	}
	log.Print(o.Payment, o.Shipment)
}
