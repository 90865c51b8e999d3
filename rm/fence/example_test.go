package fence_test

import (
	"context"
	"database/sql"
	"log"

	"github.com/xact-io/xact/rm/fence"
)

// A participant that runs its Try and Cancel through a fence by hand (TCC
// resources and saga steps do this for their functions). db holds
// tcc_fence_log (fence.DDL) and the business table.
func Example() {
	var db *sql.DB
	ctx := context.Background()
	f, err := fence.New(db)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	b := fence.Branch{XID: "node:1:r1.1", BranchID: 1, Resource: "reserve-stock"}
	err = f.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE stock SET free = free - 1, frozen = frozen + 1 WHERE sku = 'apple'`)
		return err
	}, nil)
	if err != nil {
		log.Print(err) // the Try's change was rolled back; its row says try-failed
	}

	// Phase two, possibly delivered twice: the business Cancel runs once.
	err = f.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, try fence.TryOutcome) error {
		if try == fence.TryFailed {
			return nil // nothing committed to undo
		}
		_, err := tx.ExecContext(ctx, `UPDATE stock SET free = free + 1, frozen = frozen - 1 WHERE sku = 'apple'`)
		return err
	})
	if err != nil {
		log.Print(err)
	}
}
