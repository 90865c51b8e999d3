package tcc_test

import (
	"context"
	"database/sql"
	"errors"
	"log"

	"google.golang.org/grpc"

	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/rm/fence"
	"github.com/xact-io/xact/rm/tcc"
	"github.com/xact-io/xact/tm"
)

type Reserve struct {
	SKU string `json:"sku"`
	N   int    `json:"n"`
}

// A participant on a database, fenced, and a global transaction that uses
// it. conn is a connection to the TC, db the participant's database
// (holding fence.DDL).
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

	reserve, err := tcc.RegisterFenced(rmc, "reserve-stock", f, tcc.FencedFuncs[Reserve]{
		Try: func(ctx context.Context, tx *sql.Tx, r Reserve) error {
			res, err := tx.ExecContext(ctx, `UPDATE stock SET free = free - ?, frozen = frozen + ? WHERE sku = ? AND free >= ?`, r.N, r.N, r.SKU, r.N)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errors.New("out of stock")
			}
			return nil
		},
		Confirm: func(ctx context.Context, tx *sql.Tx, r Reserve) error {
			_, err := tx.ExecContext(ctx, `UPDATE stock SET frozen = frozen - ? WHERE sku = ?`, r.N, r.SKU)
			return err
		},
		Cancel: func(ctx context.Context, tx *sql.Tx, r Reserve, try tcc.TryOutcome) error {
			if try == tcc.TryFailed {
				return nil // the Try's transaction rolled back
			}
			_, err := tx.ExecContext(ctx, `UPDATE stock SET free = free + ?, frozen = frozen - ? WHERE sku = ?`, r.N, r.N, r.SKU)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := rmc.Start(ctx); err != nil {
		log.Fatal(err)
	}

	tmgr := tm.New(conn)
	err = tmgr.Do(ctx, tm.Options{Name: "place-order"}, func(ctx context.Context) error {
		return reserve.Try(ctx, Reserve{SKU: "apple", N: 2})
	})
	if err != nil {
		log.Print(err)
	}
}

// A participant without a database: no fence, so its functions give their
// own idempotence. This is also the shape of a no-op resource for
// benchmarks.
func ExampleRegister() {
	var rmc *rm.Client
	notify, err := tcc.Register(rmc, "notify", tcc.Funcs[string]{
		Try:     func(ctx context.Context, msg string) error { return nil },
		Confirm: func(ctx context.Context, msg string) error { return nil },
		Cancel:  func(ctx context.Context, msg string, try tcc.TryOutcome) error { return nil },
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = notify
}
