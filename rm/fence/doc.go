// Package fence keeps the TCC fence: one row per branch in a
// participant's own database (table tcc_fence_log, DDL; `xact sql
// tcc-fence` prints it), written in the same local transaction as the
// business change, which makes a participant's phase two safe to deliver
// any number of times and in any order. TCC resources (rm/tcc,
// RegisterFenced) and saga steps (rm/saga, FencedStep) use it; one Fence
// per database serves both.
//
//	f, err := fence.New(db) // db holds tcc_fence_log
//	defer f.Close()
//	b := fence.Branch{XID: xid, BranchID: id, Resource: "reserve-stock"}
//	err = f.Try(ctx, b, func(ctx context.Context, tx *sql.Tx) error { … }, nil) // phase one
//	err = f.Cancel(ctx, b, func(ctx context.Context, tx *sql.Tx, try fence.TryOutcome) error { … })
//
// It gives:
//
//   - idempotent Confirm and Cancel: a redelivered action finds the row
//     confirmed or cancelled and does nothing; concurrent deliveries
//     serialize on the row lock, so the business function runs once;
//   - empty rollback: a Cancel that finds no row records the branch as
//     suspended and succeeds without calling the business Cancel;
//   - anti-hanging: a Try that arrives after that Cancel finds the row and
//     is refused with ErrTryAfterCancel, before the business Try runs;
//   - cleanup: rows of finished branches are deleted after a retention
//     period by a loop that the Fence owns (WithCleanup; Close stops it),
//     or by calling Cleanup.
//
// A Try that fails is not an empty rollback: the business Cancel still
// runs, told TryFailed. The fence keeps the difference between "tried and
// failed" and "never arrived" in the row itself: the tried row is inserted
// first, the business Try runs after a savepoint, and on failure its work
// is rolled back to the savepoint and the row is committed as try-failed,
// atomically (a concurrent Cancel waits on the row lock).
//
// Phase-two errors that retrying cannot fix (ErrNotTried, ErrConflict) are
// wrapped with rm.Permanent, so that the TC parks the branch for an
// operator. The branch a function runs for is in its context (WithBranch,
// BranchFrom), so that a participant calling another service can send the
// key along and the remote side can fence its own work with it.
//
// The fence's SQL is MySQL/MariaDB's; server error numbers
// (datasource/mysqldialect/errno) tell a lost race (duplicate key, deadlock, lock
// wait timeout), after which a step starts over.
//
// Files: fence.go (the Fence, its options, New and Close), table.go (the
// table, its statuses and the row lock), try.go (phase one), phasetwo.go
// (Confirm and Cancel), cleanup.go, branch.go (the key and the branch in
// a context).
package fence
