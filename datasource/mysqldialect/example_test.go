package mysqldialect_test

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/undo"
)

// Example shows one statement of a branch, as the datasource wrapper runs
// it on the inner driver connection inside the branch's local transaction.
func Example() {
	d := mysqldialect.New()
	run := func(ctx context.Context, conn driver.Conn, query string, args []driver.NamedValue, log *undo.Log) ([]string, error) {
		plan, err := d.Prepare(ctx, conn, query, args)
		if err != nil {
			return nil, err // errors.Is(err, mysqldialect.ErrUnsupported): refused before it ran
		}
		if err := plan.Before(ctx, conn); err != nil {
			return nil, err
		}
		var res driver.Result
		if !plan.Returning() {
			res, err = conn.(driver.ExecerContext).ExecContext(ctx, query, args)
			if err != nil {
				return nil, err
			}
		} // else: run it with QueryContext, read every row, and pass a nil result
		if err := plan.After(ctx, conn, res); err != nil {
			return nil, err // mysqldialect.ErrImageMismatch: roll the local transaction back
		}
		log.Records = append(log.Records, plan.Records()...)
		return plan.LockKeys(), nil
	}
	_ = run

	for _, q := range []string{
		"UPDATE t SET a = ? WHERE id = ?",
		"DELETE FROM t WHERE id = 1 RETURNING id",
		"SELECT * FROM t WHERE id = 1 FOR UPDATE",
		"REPLACE INTO t VALUES (1)",
		"ALTER TABLE t ADD c INT",
	} {
		fmt.Println(mysqldialect.Classify(q))
	}
	// Output:
	// update
	// delete
	// select for update
	// unsupported
	// ddl
}
