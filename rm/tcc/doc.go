// Package tcc implements TCC (Try-Confirm-Cancel) participants for xact.
//
// A participant is three functions over a typed request. Declaring it is
// plain Go:
//
//	type Reserve struct {
//		SKU string `json:"sku"`
//		N   int    `json:"n"`
//	}
//
//	rmc := rm.New(conn)
//	f, err := fence.New(db) // db holds tcc_fence_log (fence.DDL); package rm/fence
//	defer f.Close()
//	reserve, err := tcc.RegisterFenced(rmc, "reserve-stock", f, tcc.FencedFuncs[Reserve]{
//		Try: func(ctx context.Context, tx *sql.Tx, r Reserve) error {
//			_, err := tx.ExecContext(ctx, "UPDATE stock SET free = free - ?, frozen = frozen + ? WHERE sku = ? AND free >= ?", r.N, r.N, r.SKU, r.N)
//			return err
//		},
//		Confirm: func(ctx context.Context, tx *sql.Tx, r Reserve) error {
//			_, err := tx.ExecContext(ctx, "UPDATE stock SET frozen = frozen - ? WHERE sku = ?", r.N, r.SKU)
//			return err
//		},
//		Cancel: func(ctx context.Context, tx *sql.Tx, r Reserve, try tcc.TryOutcome) error {
//			if try == tcc.TryFailed {
//				return nil // the Try's transaction rolled back: nothing to release
//			}
//			_, err := tx.ExecContext(ctx, "UPDATE stock SET free = free + ?, frozen = frozen - ? WHERE sku = ?", r.N, r.N, r.SKU)
//			return err
//		},
//	})
//	rmc.Start(ctx)
//	defer rmc.Close()
//
// and in business code:
//
//	err := tmgr.Do(ctx, tm.Options{Name: "place-order"}, func(ctx context.Context) error {
//		return reserve.Try(ctx, Reserve{SKU: "apple", N: 2})
//	})
//
// Try registers a branch of BRANCH_TYPE_TCC whose application data (the
// "action context") is the request as JSON in a small versioned envelope,
// then runs the Try function. When the global transaction commits or rolls
// back, the TC pushes Confirm or Cancel to any rm.Client that registered a
// resource of that name, in this process or another one started later: the
// request is decoded from the action context with the Req type of the
// registration, so nothing but the resource name and the type is needed to
// run phase two after a restart.
//
// # Phase-two results
//
// Confirm and Cancel follow rm.Handler's contract: nil is DONE; an error
// wrapped with rm.Permanent is FAILED, and the TC parks the global
// transaction with the error's text as the reason for an operator; any
// other error is UNKNOWN and the TC retries with capped exponential backoff
// until its retry budget is spent (then it parks).
//
// # The fence
//
// A fence.Fence (package rm/fence, shared with saga steps) keeps one row
// per branch in the participant's own database (table tcc_fence_log,
// fence.DDL; `xact sql tcc-fence` prints it), written in the same local
// transaction as the business change. It gives idempotent Confirm and
// Cancel, empty rollback (a Cancel before any Try succeeds without calling
// the business Cancel), anti-hanging (a Try after that Cancel is refused
// with ErrTryAfterCancel) and the cleanup of finished rows; see the fence
// package.
//
// A Try that fails is not an empty rollback: the business Cancel still
// runs, told TryFailed. The fence records the failed Try in its row; the
// failure is also reported to the TC (PHASE_ONE_FAILED), so that the
// global transaction rolls back even if the caller ignores the error.
// Without a fence, the report carries the same fact to Cancel in the
// action context.
package tcc
