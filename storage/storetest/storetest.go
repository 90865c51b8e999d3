// Package storetest is the contract test suite that every storage.Store
// implementation passes, and a benchmark helper that measures them alike.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty store and arranges for it to be closed when the test ends:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storage.Store {
//			s := memory.New()
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A durable store also runs RunDurable, which closes and reopens it.
//
// The suite pins down the semantics documented on storage.Store, plus these
// details that every store keeps so that the TC can rely on them:
//
//   - Times round-trip exactly to the nanosecond (location and monotonic
//     clock reading are not kept; compare with time.Time.Equal).
//   - Returned objects are copies; objects passed in are copied, and so is
//     the global admit is given.
//   - UpdateGlobal ignores changes fn makes to XID, BranchSeq and Finished;
//     UpdateBranch ignores changes to XID and ID.
//   - A tombstone makes CreateGlobal of the same XID fail with ErrExists,
//     and AddBranch fail whatever admit says (admit sees the tombstone,
//     Finished set); FinishGlobal of a tombstone is a no-op that keeps the
//     first final status.
//   - AddBranch hands out each global's ids 1, 2, ... without gaps, also
//     under concurrency; an admit that refuses (or an error) uses no id,
//     stores nothing and creates nothing, and admit's error comes back
//     matchable with errors.Is. admit runs inside the atomic write: a
//     concurrent write that makes it refuse is ordered against every
//     AddBranch. With a global neither stored nor finished, admit sees
//     create with BranchSeq 0 and Finished false, and of concurrent
//     AddBranch calls that create one global exactly one reports created;
//     a stored global is kept as it is (create ignored).
//   - A branch keeps its resource and lock keys exactly as given
//     (duplicates, empty keys, any byte). Branches of an unknown global is
//     empty, not an error.
//   - LocksReleased is a field like any other: a store keeps it as given
//     and lets UpdateGlobal and UpdateBranch set and clear it. Stores keep
//     no locks and enforce no coordinator rule (tc/ledger does).
//   - A call with a cancelled context returns an error matching ctx.Err()
//     and changes nothing; after Close every method returns
//     storage.ErrClosed, and Close may be called again.
package storetest

import (
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
)

// Statuses used by the tests, shortened.
const (
	begin       = xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
	committing  = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
	commitRetry = xactpb.GlobalStatus_GLOBAL_STATUS_COMMIT_RETRYING
	rollbacking = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING
	committed   = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	rollbacked  = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED

	registered  = xactpb.BranchStatus_BRANCH_STATUS_REGISTERED
	phaseOneOK  = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE
	branchAT    = xactpb.BranchType_BRANCH_TYPE_AT
	branchTCC   = xactpb.BranchType_BRANCH_TYPE_TCC
	resourceA   = "db-a:3306/orders"
	resourceB   = "db-b:3306/stock"
	testTimeout = time.Minute
)

// base is the suite's "now": it has a nanosecond part so that stores that
// round times are caught.
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)

// Run runs the contract suite. open must return a fresh, empty store and
// register its Close with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateInvalid", testCreateInvalid},
		{"GetNotFound", testGetNotFound},
		{"UpdateGlobal", testUpdateGlobal},
		{"UpdateGlobalNotFound", testUpdateGlobalNotFound},
		{"UpdateGlobalFnError", testUpdateGlobalFnError},
		{"UpdateGlobalProtectedFields", testUpdateGlobalProtectedFields},
		{"UpdateGlobalConcurrent", testUpdateGlobalConcurrent},
		{"FinishGlobal", testFinishGlobal},
		{"FinishGlobalNotFound", testFinishGlobalNotFound},
		{"AddBranch", testAddBranch},
		{"AddBranchLockKeys", testAddBranchLockKeys},
		{"AddBranchRefused", testAddBranchRefused},
		{"AddBranchAdmitSees", testAddBranchAdmitSees},
		{"AddBranchNotFound", testAddBranchNotFound},
		{"AddBranchCreate", testAddBranchCreate},
		{"AddBranchConcurrent", testAddBranchConcurrent},
		{"AddBranchConcurrentCreate", testAddBranchConcurrentCreate},
		{"AddBranchAtomic", testAddBranchAtomic},
		{"UpdateBranch", testUpdateBranch},
		{"LocksReleasedIsAField", testLocksReleasedIsAField},
		{"ListGlobals", testListGlobals},
		{"DueGlobals", testDueGlobals},
		{"DueGlobalsReindex", testDueGlobalsReindex},
		{"Copies", testCopies},
		{"Relaxed", testRelaxed},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}
