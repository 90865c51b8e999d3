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
//   - Returned objects are copies; objects passed in are copied.
//   - UpdateGlobal ignores changes fn makes to XID, BranchSeq and Finished;
//     UpdateBranch ignores changes to XID and ID.
//   - A tombstone makes CreateGlobal of the same XID fail with ErrExists and
//     RegisterBranch fail with ErrNotBegin (the global is known and not in
//     Begin); FinishGlobal of a tombstone is a no-op that keeps the first
//     final status.
//   - Branches of an unknown global is empty, not an error. ReleaseLocks of
//     an unknown global is a no-op.
//   - A key that a global already holds stays with the branch that took it
//     first, so that releasing a later branch's locks never frees a row an
//     earlier branch still needs (branches are rolled back in reverse
//     order, I9).
//   - Locks follow the branches (storage.Lock): a released branch's rows
//     pass to the next unreleased branch of its global that lists them; a
//     global whose locks are released refuses registrations (ErrNotBegin);
//     setting LocksReleased through UpdateGlobal or UpdateBranch releases
//     like ReleaseLocks, and clearing it is ignored.
//   - A refused registration (for any reason) leaves no key taken; of two
//     concurrent registrations of different globals on one key exactly one
//     succeeds; a registration that is refused by its global's state
//     reports that, not a lock conflict.
//   - BeginRegisterBranch creates its global only with the branch: a
//     refused registration creates nothing, a tombstone refuses it, and of
//     concurrent first registrations exactly one reports created.
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
		{"RegisterBranch", testRegisterBranch},
		{"RegisterBranchRefused", testRegisterBranchRefused},
		{"RegisterBranchLockConflict", testRegisterBranchLockConflict},
		{"RegisterBranchOwnKeys", testRegisterBranchOwnKeys},
		{"RegisterBranchConcurrent", testRegisterBranchConcurrent},
		{"UpdateBranch", testUpdateBranch},
		{"ReleaseLocks", testReleaseLocks},
		{"CheckLocks", testCheckLocks},
		{"Locks", testLocks},
		{"LockKeyEncoding", testLockKeyEncoding},
		{"ReleaseFlags", testReleaseFlags},
		{"ReleaseThroughUpdates", testReleaseThroughUpdates},
		{"ReleasePassesRowOn", testReleasePassesRowOn},
		{"RegisterBranchRefusedTakesNothing", testRegisterBranchRefusedTakesNothing},
		{"RegisterBranchRace", testRegisterBranchRace},
		{"BeginRegisterBranch", testBeginRegisterBranch},
		{"BeginRegisterBranchRefused", testBeginRegisterBranchRefused},
		{"BeginRegisterBranchConcurrent", testBeginRegisterBranchConcurrent},
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
