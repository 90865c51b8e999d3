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
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
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

// newGlobal returns a global in Begin that began at base.
func newGlobal(xid string) *storage.Global {
	return &storage.Global{
		XID:       xid,
		Name:      "order-" + xid,
		Status:    begin,
		Timeout:   testTimeout,
		BeganAt:   base,
		Deadline:  base.Add(testTimeout),
		NextAt:    base.Add(testTimeout),
		UpdatedAt: base,
	}
}

func newBranch(xid, resource string, keys ...string) *storage.Branch {
	return &storage.Branch{
		XID:          xid,
		Resource:     resource,
		Type:         branchAT,
		Status:       registered,
		LockKeys:     keys,
		AppData:      []byte("app-data"),
		RegisteredAt: base.Add(time.Second),
	}
}

func mustCreate(t testing.TB, s storage.Store, g *storage.Global) {
	t.Helper()
	if err := s.CreateGlobal(context.Background(), g); err != nil {
		t.Fatalf("CreateGlobal(%q) = %v, want nil", g.XID, err)
	}
}

func mustGet(t testing.TB, s storage.Store, xid string) *storage.Global {
	t.Helper()
	g, err := s.GetGlobal(context.Background(), xid)
	if err != nil {
		t.Fatalf("GetGlobal(%q) = %v, want nil", xid, err)
	}
	return g
}

func mustRegister(t testing.TB, s storage.Store, b *storage.Branch) int64 {
	t.Helper()
	id, err := s.RegisterBranch(context.Background(), b, base)
	if err != nil {
		t.Fatalf("RegisterBranch(%q, %q, %q) = %v, want nil", b.XID, b.Resource, b.LockKeys, err)
	}
	return id
}

func mustBranches(t testing.TB, s storage.Store, xid string) []*storage.Branch {
	t.Helper()
	bs, err := s.Branches(context.Background(), xid)
	if err != nil {
		t.Fatalf("Branches(%q) = %v, want nil", xid, err)
	}
	return bs
}

func mustLocks(t testing.TB, s storage.Store, xid string, limit int) []storage.Lock {
	t.Helper()
	ls, err := s.Locks(context.Background(), xid, limit)
	if err != nil {
		t.Fatalf("Locks(%q, %d) = %v, want nil", xid, limit, err)
	}
	return ls
}

// normTime drops location and monotonic reading so that reflect.DeepEqual
// compares instants.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(t.Unix(), int64(t.Nanosecond())).UTC()
}

func normGlobal(g *storage.Global) *storage.Global {
	if g == nil {
		return nil
	}
	c := g.Clone()
	c.BeganAt = normTime(c.BeganAt)
	c.Deadline = normTime(c.Deadline)
	c.NextAt = normTime(c.NextAt)
	c.UpdatedAt = normTime(c.UpdatedAt)
	if len(c.History) == 0 {
		c.History = nil
	}
	for i := range c.History {
		c.History[i].At = normTime(c.History[i].At)
	}
	return c
}

func normBranch(b *storage.Branch) *storage.Branch {
	if b == nil {
		return nil
	}
	c := b.Clone()
	c.RegisteredAt = normTime(c.RegisteredAt)
	if len(c.LockKeys) == 0 {
		c.LockKeys = nil
	}
	if len(c.AppData) == 0 {
		c.AppData = nil
	}
	return c
}

func checkGlobal(t testing.TB, what string, got, want *storage.Global) {
	t.Helper()
	if g, w := normGlobal(got), normGlobal(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func checkBranch(t testing.TB, what string, got, want *storage.Branch) {
	t.Helper()
	if g, w := normBranch(got), normBranch(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func xids(gs []*storage.Global) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.XID
	}
	return out
}

func sortedXIDs(gs []*storage.Global) []string {
	out := xids(gs)
	slices.Sort(out)
	return out
}

func sortLocks(ls []storage.Lock) []storage.Lock {
	out := slices.Clone(ls)
	slices.SortFunc(out, func(a, b storage.Lock) int {
		if c := strings.Compare(a.Resource, b.Resource); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

func checkLocks(t testing.TB, what string, got, want []storage.Lock) {
	t.Helper()
	g, w := sortLocks(got), sortLocks(want)
	if len(g) == 0 && len(w) == 0 {
		return
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func checkConflict(t testing.TB, what string, err error, want *protocol.LockConflictError) {
	t.Helper()
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) {
		t.Errorf("%s = %v, want *protocol.LockConflictError %+v", what, err, want)
		return
	}
	if !errors.Is(err, protocol.ErrLockConflict) {
		t.Errorf("errors.Is(%s error, protocol.ErrLockConflict) = false, want true", what)
	}
	if *lc != *want {
		t.Errorf("%s conflict = %+v, want %+v", what, *lc, *want)
	}
}

func testCreateGet(t *testing.T, s storage.Store) {
	ctx := context.Background()
	want := newGlobal("x1")
	want.History = []storage.Event{{At: base, What: "begun"}, {At: base.Add(time.Nanosecond), What: "retry"}}
	want.Attempts = 3
	want.Reason = "why"
	want.Parked = true
	mustCreate(t, s, want.Clone())
	checkGlobal(t, `GetGlobal("x1")`, mustGet(t, s, "x1"), want)

	// A minimal global: every zero value round-trips as zero.
	mustCreate(t, s, &storage.Global{XID: "x2"})
	checkGlobal(t, `GetGlobal("x2")`, mustGet(t, s, "x2"), &storage.Global{XID: "x2"})

	// A time exactly at the Unix epoch is not the zero time.
	epoch := &storage.Global{XID: "x3", Status: begin, NextAt: time.Unix(0, 0)}
	mustCreate(t, s, epoch.Clone())
	checkGlobal(t, `GetGlobal("x3")`, mustGet(t, s, "x3"), epoch)

	other := newGlobal("x1")
	other.Name = "other"
	if err := s.CreateGlobal(ctx, other); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(existing) = %v, want %v", err, storage.ErrExists)
	}
	checkGlobal(t, `GetGlobal("x1") after failed create`, mustGet(t, s, "x1"), want)
}

func testCreateInvalid(t *testing.T, s storage.Store) {
	err := s.CreateGlobal(context.Background(), &storage.Global{XID: ""})
	if !errors.Is(err, protocol.ErrInvalidArgument) {
		t.Errorf("CreateGlobal(empty XID) = %v, want %v", err, protocol.ErrInvalidArgument)
	}
}

func testGetNotFound(t *testing.T, s storage.Store) {
	if g, err := s.GetGlobal(context.Background(), "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(missing) = %v, %v, want %v", g, err, storage.ErrNotFound)
	}
}

func testUpdateGlobal(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	want := newGlobal("x1")
	want.Status = committing
	want.Attempts = 1
	want.Reason = "deciding"
	want.History = []storage.Event{{At: base.Add(time.Millisecond), What: "commit"}}
	want.UpdatedAt = base.Add(2 * time.Second)
	got, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
		g.Status = committing
		g.Attempts++
		g.Reason = "deciding"
		g.History = append(g.History, storage.Event{At: base.Add(time.Millisecond), What: "commit"})
		g.UpdatedAt = base.Add(2 * time.Second)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateGlobal = %v, want nil", err)
	}
	checkGlobal(t, "UpdateGlobal result", got, want)
	checkGlobal(t, "GetGlobal after UpdateGlobal", mustGet(t, s, "x1"), want)
}

func testUpdateGlobalNotFound(t *testing.T, s storage.Store) {
	called := false
	_, err := s.UpdateGlobal(context.Background(), "missing", func(g *storage.Global) error {
		called = true
		return nil
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateGlobal(missing) = %v, want %v", err, storage.ErrNotFound)
	}
	if called {
		t.Errorf("UpdateGlobal(missing) called fn, want not called")
	}
}

func testUpdateGlobalFnError(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	errBoom := errors.New("boom")
	_, err := s.UpdateGlobal(context.Background(), "x1", func(g *storage.Global) error {
		g.Status = rollbacking
		g.NextAt = base.Add(-time.Hour)
		g.Attempts = 99
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("UpdateGlobal(fn fails) = %v, want %v", err, errBoom)
	}
	checkGlobal(t, "GetGlobal after failed update", mustGet(t, s, "x1"), newGlobal("x1"))
	// The due index did not move either.
	due, err := s.DueGlobals(context.Background(), base, 0)
	if err != nil {
		t.Fatalf("DueGlobals = %v", err)
	}
	if len(due) != 0 {
		t.Errorf("DueGlobals(base) after failed update = %v, want none", xids(due))
	}
}

func testUpdateGlobalProtectedFields(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "k1"))
	got, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
		g.XID = "other"
		g.BranchSeq = 0
		g.Finished = true
		g.Name = "renamed"
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateGlobal = %v, want nil", err)
	}
	want := newGlobal("x1")
	want.Name = "renamed"
	want.BranchSeq = 1
	checkGlobal(t, "UpdateGlobal result", got, want)
	checkGlobal(t, "GetGlobal(x1)", mustGet(t, s, "x1"), want)
	if _, err := s.GetGlobal(ctx, "other"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(other) = %v, want %v", err, storage.ErrNotFound)
	}
	if id := mustRegister(t, s, newBranch("x1", resourceA, "k2")); id != 2 {
		t.Errorf("RegisterBranch after BranchSeq tampering = %d, want 2", id)
	}
}

func testUpdateGlobalConcurrent(t *testing.T, s storage.Store) {
	const n = 50
	mustCreate(t, s, newGlobal("x1"))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.UpdateGlobal(context.Background(), "x1", func(g *storage.Global) error {
				g.Attempts++
				g.History = append(g.History, storage.Event{At: base, What: "inc"})
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent UpdateGlobal = %v, want nil", err)
		}
	}
	g := mustGet(t, s, "x1")
	if got, want := g.Attempts, n; got != want {
		t.Errorf("Attempts after %d concurrent increments = %d, want %d", n, got, want)
	}
	if got, want := len(g.History), n; got != want {
		t.Errorf("len(History) after %d concurrent appends = %d, want %d", n, got, want)
	}
}

func testFinishGlobal(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("x2"))
	mustRegister(t, s, newBranch("x1", resourceA, "k1", "k2"))
	mustRegister(t, s, newBranch("x1", resourceB, "k1"))
	mustRegister(t, s, newBranch("x2", resourceA, "k3"))
	if _, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
		g.Status = committing
		g.NextAt = base.Add(-time.Second)
		return nil
	}); err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}

	if err := s.FinishGlobal(ctx, "x1", committed); err != nil {
		t.Fatalf("FinishGlobal = %v, want nil", err)
	}
	g := mustGet(t, s, "x1")
	if !g.Finished || g.Status != committed || g.XID != "x1" {
		t.Errorf("GetGlobal(finished) = {XID:%q Finished:%v Status:%v}, want {XID:x1 Finished:true Status:%v}",
			g.XID, g.Finished, g.Status, committed)
	}
	if bs := mustBranches(t, s, "x1"); len(bs) != 0 {
		t.Errorf("Branches(finished) = %d branches, want 0", len(bs))
	}
	if ls := mustLocks(t, s, "x1", 0); len(ls) != 0 {
		t.Errorf("Locks(finished) = %+v, want none", ls)
	}
	checkLocks(t, "Locks(all) after finish", mustLocks(t, s, "", 0),
		[]storage.Lock{{Resource: resourceA, Key: "k3", XID: "x2", BranchID: 1}})
	if err := s.CheckLocks(ctx, "x3", resourceA, []string{"k1", "k2"}); err != nil {
		t.Errorf("CheckLocks(keys of finished) = %v, want nil", err)
	}
	list, err := s.ListGlobals(ctx, storage.Filter{})
	if err != nil {
		t.Fatalf("ListGlobals = %v", err)
	}
	if got, want := sortedXIDs(list), []string{"x2"}; !slices.Equal(got, want) {
		t.Errorf("ListGlobals after finish = %v, want %v", got, want)
	}
	due, err := s.DueGlobals(ctx, base.Add(time.Hour), 0)
	if err != nil {
		t.Fatalf("DueGlobals = %v", err)
	}
	if got, want := xids(due), []string{"x2"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after finish = %v, want %v", got, want)
	}
	if _, err := s.UpdateGlobal(ctx, "x1", func(*storage.Global) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateGlobal(tombstone) = %v, want %v", err, storage.ErrNotFound)
	}
	if _, err := s.UpdateBranch(ctx, "x1", 1, func(*storage.Branch) error { return nil }); !errors.Is(err, storage.ErrBranchNotFound) {
		t.Errorf("UpdateBranch(tombstone) = %v, want %v", err, storage.ErrBranchNotFound)
	}
	if _, err := s.RegisterBranch(ctx, newBranch("x1", resourceA, "k9"), base); !errors.Is(err, storage.ErrNotBegin) {
		t.Errorf("RegisterBranch(tombstone) = %v, want %v", err, storage.ErrNotBegin)
	}
	if err := s.CreateGlobal(ctx, newGlobal("x1")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(tombstone) = %v, want %v", err, storage.ErrExists)
	}
	// Finishing again is a no-op: the first final status stands.
	if err := s.FinishGlobal(ctx, "x1", rollbacked); err != nil {
		t.Errorf("FinishGlobal(tombstone) = %v, want nil", err)
	}
	if g := mustGet(t, s, "x1"); g.Status != committed || !g.Finished {
		t.Errorf("tombstone after second finish = {Status:%v Finished:%v}, want {Status:%v Finished:true}",
			g.Status, g.Finished, committed)
	}
	// The other global is untouched.
	if bs := mustBranches(t, s, "x2"); len(bs) != 1 {
		t.Errorf("Branches(x2) = %d branches, want 1", len(bs))
	}
}

func testFinishGlobalNotFound(t *testing.T, s storage.Store) {
	if err := s.FinishGlobal(context.Background(), "missing", committed); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FinishGlobal(missing) = %v, want %v", err, storage.ErrNotFound)
	}
}

func testRegisterBranch(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	var want []*storage.Branch
	for i, res := range []string{resourceA, resourceB, resourceA} {
		b := newBranch("x1", res, fmt.Sprintf("k%d", i), fmt.Sprintf("k%d", i+10))
		b.Type = branchTCC
		b.AppData = []byte{byte(i), 0, 0xff}
		b.Reason = "r"
		b.Attempts = i
		in := b.Clone()
		id := mustRegister(t, s, in)
		if got, want := id, int64(i+1); got != want {
			t.Errorf("RegisterBranch #%d = %d, want %d", i+1, got, want)
		}
		if in.ID != id {
			t.Errorf("RegisterBranch #%d set b.ID = %d, want %d", i+1, in.ID, id)
		}
		b.ID = id
		want = append(want, b)
	}
	got := mustBranches(t, s, "x1")
	if len(got) != len(want) {
		t.Fatalf("Branches = %d branches, want %d", len(got), len(want))
	}
	for i := range want {
		checkBranch(t, fmt.Sprintf("Branches[%d]", i), got[i], want[i])
	}
	if g := mustGet(t, s, "x1"); g.BranchSeq != 3 {
		t.Errorf("BranchSeq = %d, want 3", g.BranchSeq)
	}
	// A branch without lock keys (TCC, Saga) registers too.
	if id := mustRegister(t, s, newBranch("x1", resourceB)); id != 4 {
		t.Errorf("RegisterBranch(no keys) = %d, want 4", id)
	}
	// Branch ids are per global.
	mustCreate(t, s, newGlobal("x2"))
	if id := mustRegister(t, s, newBranch("x2", resourceA, "other")); id != 1 {
		t.Errorf("RegisterBranch(first of x2) = %d, want 1", id)
	}
	// Many branches keep registration order (ids past one byte).
	mustCreate(t, s, newGlobal("x3"))
	for range 300 {
		mustRegister(t, s, newBranch("x3", resourceA))
	}
	bs := mustBranches(t, s, "x3")
	for i, b := range bs {
		if b.ID != int64(i+1) {
			t.Fatalf("Branches(x3)[%d].ID = %d, want %d", i, b.ID, i+1)
		}
	}
	if len(bs) != 300 {
		t.Errorf("len(Branches(x3)) = %d, want 300", len(bs))
	}
	if bs := mustBranches(t, s, "missing"); len(bs) != 0 {
		t.Errorf("Branches(missing) = %d branches, want 0", len(bs))
	}
}

func testRegisterBranchRefused(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("begin"))
	notBegin := newGlobal("committing")
	notBegin.Status = committing
	mustCreate(t, s, notBegin)
	deadline := base.Add(testTimeout)
	tests := []struct {
		name string
		xid  string
		now  time.Time
		want error
	}{
		{"missing", "missing", base, storage.ErrNotFound},
		{"not begin", "committing", base, storage.ErrNotBegin},
		{"at deadline", "begin", deadline, storage.ErrTimedOut},
		{"past deadline", "begin", deadline.Add(time.Nanosecond), storage.ErrTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBranch(tt.xid, resourceA, "k1", "k2")
			id, err := s.RegisterBranch(ctx, b, tt.now)
			if !errors.Is(err, tt.want) || id != 0 {
				t.Errorf("RegisterBranch = %d, %v, want 0, %v", id, err, tt.want)
			}
		})
	}
	// Nothing changed.
	for _, xid := range []string{"begin", "committing"} {
		if g := mustGet(t, s, xid); g.BranchSeq != 0 {
			t.Errorf("BranchSeq(%s) after refusals = %d, want 0", xid, g.BranchSeq)
		}
		if bs := mustBranches(t, s, xid); len(bs) != 0 {
			t.Errorf("Branches(%s) after refusals = %d, want 0", xid, len(bs))
		}
	}
	if ls := mustLocks(t, s, "", 0); len(ls) != 0 {
		t.Errorf("Locks after refusals = %+v, want none", ls)
	}
	// Just before the deadline is fine.
	if _, err := s.RegisterBranch(ctx, newBranch("begin", resourceA, "k1"), deadline.Add(-time.Nanosecond)); err != nil {
		t.Errorf("RegisterBranch(1ns before deadline) = %v, want nil", err)
	}
	// A zero deadline means none.
	noDeadline := newGlobal("nodeadline")
	noDeadline.Deadline = time.Time{}
	mustCreate(t, s, noDeadline)
	if _, err := s.RegisterBranch(ctx, newBranch("nodeadline", resourceA, "k9"), base.Add(1000*time.Hour)); err != nil {
		t.Errorf("RegisterBranch(no deadline) = %v, want nil", err)
	}
}

func testRegisterBranchLockConflict(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("x2"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b"))

	_, err := s.RegisterBranch(ctx, newBranch("x2", resourceA, "c", "b", "a"), base)
	checkConflict(t, "RegisterBranch(x2, [c b a])", err,
		&protocol.LockConflictError{Resource: resourceA, Key: "b", Holder: "x1"})
	// Nothing was taken or recorded for x2.
	if ls := mustLocks(t, s, "x2", 0); len(ls) != 0 {
		t.Errorf("Locks(x2) after conflict = %+v, want none", ls)
	}
	if err := s.CheckLocks(ctx, "x3", resourceA, []string{"c"}); err != nil {
		t.Errorf("CheckLocks(c) after conflict = %v, want nil", err)
	}
	if g := mustGet(t, s, "x2"); g.BranchSeq != 0 {
		t.Errorf("BranchSeq(x2) after conflict = %d, want 0", g.BranchSeq)
	}
	if bs := mustBranches(t, s, "x2"); len(bs) != 0 {
		t.Errorf("Branches(x2) after conflict = %d, want 0", len(bs))
	}
	// The same key in another resource is a different row.
	if id := mustRegister(t, s, newBranch("x2", resourceB, "a", "b")); id != 1 {
		t.Errorf("RegisterBranch(x2, other resource) = %d, want 1", id)
	}
	checkLocks(t, "Locks(all)", mustLocks(t, s, "", 0), []storage.Lock{
		{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
		{Resource: resourceB, Key: "a", XID: "x2", BranchID: 1},
		{Resource: resourceB, Key: "b", XID: "x2", BranchID: 1},
	})
}

func testRegisterBranchOwnKeys(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b"))
	// The same global takes its own keys again, plus a new one; duplicate
	// keys within one registration are fine too.
	if id := mustRegister(t, s, newBranch("x1", resourceA, "b", "c", "c", "a")); id != 2 {
		t.Errorf("RegisterBranch(own keys) = %d, want 2", id)
	}
	checkLocks(t, "Locks(x1)", mustLocks(t, s, "x1", 0), []storage.Lock{
		{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
	})
	// The branch keeps the keys it asked for, as given.
	bs := mustBranches(t, s, "x1")
	if got, want := bs[1].LockKeys, []string{"b", "c", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("Branches[1].LockKeys = %q, want %q", got, want)
	}
}

// testRegisterBranchConcurrent races registrations of many globals on
// overlapping keys and checks I5 (a key is held by at most one global) and
// that branch ids are never handed out twice.
func testRegisterBranchConcurrent(t *testing.T, s storage.Store) {
	const (
		globals    = 8
		perGlobal  = 6
		keyspace   = 12
		keysPerReg = 3
	)
	for g := range globals {
		mustCreate(t, s, newGlobal(fmt.Sprintf("g%d", g)))
	}
	type result struct {
		xid  string
		keys []string
		id   int64
		err  error
	}
	results := make(chan result, globals*perGlobal)
	var wg sync.WaitGroup
	for g := range globals {
		for r := range perGlobal {
			wg.Go(func() {
				xid := fmt.Sprintf("g%d", g)
				var keys []string
				for k := range keysPerReg {
					keys = append(keys, fmt.Sprintf("row%d", (g*7+r*5+k*3)%keyspace))
				}
				id, err := s.RegisterBranch(context.Background(), newBranch(xid, resourceA, keys...), base)
				results <- result{xid, keys, id, err}
			})
		}
	}
	wg.Wait()
	close(results)

	holder := map[string]string{} // key -> global that registered it successfully
	ids := map[string][]int64{}
	for r := range results {
		if r.err != nil {
			var lc *protocol.LockConflictError
			if !errors.As(r.err, &lc) {
				t.Errorf("RegisterBranch(%s, %q) = %v, want nil or a lock conflict", r.xid, r.keys, r.err)
				continue
			}
			if lc.Holder == r.xid || lc.Holder == "" || lc.Resource != resourceA || !slices.Contains(r.keys, lc.Key) {
				t.Errorf("RegisterBranch(%s, %q) conflict = %+v, want another holder of one of its keys", r.xid, r.keys, lc)
			}
			continue
		}
		ids[r.xid] = append(ids[r.xid], r.id)
		for _, k := range r.keys {
			if h, ok := holder[k]; ok && h != r.xid {
				t.Errorf("I5: key %q granted to both %s and %s", k, h, r.xid)
			}
			holder[k] = r.xid
		}
	}
	locks := mustLocks(t, s, "", 0)
	seen := map[string]bool{}
	for _, l := range locks {
		if seen[l.Key] {
			t.Errorf("I5: key %q listed twice in Locks", l.Key)
		}
		seen[l.Key] = true
		if h := holder[l.Key]; h != l.XID {
			t.Errorf("Locks: key %q held by %s, want %s", l.Key, l.XID, h)
		}
	}
	if got, want := len(locks), len(holder); got != want {
		t.Errorf("len(Locks) = %d, want %d (keys of successful registrations)", got, want)
	}
	for g := range globals {
		xid := fmt.Sprintf("g%d", g)
		got := ids[xid]
		slices.Sort(got)
		for i, id := range got {
			if id != int64(i+1) {
				t.Errorf("branch ids of %s = %v, want 1..%d without gaps or duplicates", xid, got, len(got))
				break
			}
		}
		if gl := mustGet(t, s, xid); gl.BranchSeq != int64(len(got)) {
			t.Errorf("BranchSeq(%s) = %d, want %d", xid, gl.BranchSeq, len(got))
		}
		if bs := mustBranches(t, s, xid); len(bs) != len(got) {
			t.Errorf("len(Branches(%s)) = %d, want %d", xid, len(bs), len(got))
		}
	}
	if len(holder) == 0 {
		t.Errorf("no registration succeeded")
	}
}

func testUpdateBranch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	b := newBranch("x1", resourceA, "k1")
	mustRegister(t, s, b)
	mustRegister(t, s, newBranch("x1", resourceB, "k2"))

	want := b.Clone()
	want.Status = phaseOneOK
	want.AppData = []byte("new")
	want.Attempts = 2
	want.Reason = "ok"
	got, err := s.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error {
		b.Status = phaseOneOK
		b.AppData = []byte("new")
		b.Attempts += 2
		b.Reason = "ok"
		b.XID = "tampered"
		b.ID = 7
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateBranch = %v, want nil", err)
	}
	checkBranch(t, "UpdateBranch result", got, want)
	bs := mustBranches(t, s, "x1")
	if len(bs) != 2 {
		t.Fatalf("Branches = %d branches, want 2", len(bs))
	}
	checkBranch(t, "Branches[0] after update", bs[0], want)
	if bs[1].Status != registered {
		t.Errorf("Branches[1].Status = %v, want %v (untouched)", bs[1].Status, registered)
	}

	errBoom := errors.New("boom")
	if _, err := s.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error {
		b.Status = registered
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Errorf("UpdateBranch(fn fails) = %v, want %v", err, errBoom)
	}
	checkBranch(t, "branch after failed update", mustBranches(t, s, "x1")[0], want)

	for _, tt := range []struct {
		xid string
		id  int64
	}{{"x1", 3}, {"x1", 0}, {"missing", 1}} {
		if _, err := s.UpdateBranch(ctx, tt.xid, tt.id, func(*storage.Branch) error { return nil }); !errors.Is(err, storage.ErrBranchNotFound) {
			t.Errorf("UpdateBranch(%q, %d) = %v, want %v", tt.xid, tt.id, err, storage.ErrBranchNotFound)
		}
	}
}

func testReleaseLocks(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("x2"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b")) // 1
	mustRegister(t, s, newBranch("x1", resourceB, "c"))      // 2
	mustRegister(t, s, newBranch("x1", resourceA, "d"))      // 3
	mustRegister(t, s, newBranch("x2", resourceA, "z"))

	if err := s.ReleaseLocks(ctx, "x1", 1, 3); err != nil {
		t.Fatalf("ReleaseLocks(x1, 1, 3) = %v", err)
	}
	checkLocks(t, "Locks(x1) after releasing 1 and 3", mustLocks(t, s, "x1", 0), []storage.Lock{
		{Resource: resourceB, Key: "c", XID: "x1", BranchID: 2},
	})
	// A released key is free for another global.
	if _, err := s.RegisterBranch(ctx, newBranch("x2", resourceA, "a"), base); err != nil {
		t.Errorf("RegisterBranch(released key) = %v, want nil", err)
	}
	if err := s.ReleaseLocks(ctx, "x1"); err != nil {
		t.Fatalf("ReleaseLocks(x1) = %v", err)
	}
	if ls := mustLocks(t, s, "x1", 0); len(ls) != 0 {
		t.Errorf("Locks(x1) after release all = %+v, want none", ls)
	}
	checkLocks(t, "Locks(x2)", mustLocks(t, s, "x2", 0), []storage.Lock{
		{Resource: resourceA, Key: "a", XID: "x2", BranchID: 2},
		{Resource: resourceA, Key: "z", XID: "x2", BranchID: 1},
	})
	// Branches keep their lock keys; only the locks go.
	if bs := mustBranches(t, s, "x1"); len(bs) != 3 || len(bs[0].LockKeys) != 2 {
		t.Errorf("Branches(x1) after release = %d branches, want 3 with their keys", len(bs))
	}
	// Idempotent.
	for _, xid := range []string{"x1", "missing"} {
		if err := s.ReleaseLocks(ctx, xid); err != nil {
			t.Errorf("ReleaseLocks(%q) again = %v, want nil", xid, err)
		}
	}
}

func testCheckLocks(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b"))
	tests := []struct {
		xid      string
		resource string
		keys     []string
		want     *protocol.LockConflictError
	}{
		{"x1", resourceA, []string{"a", "b", "c"}, nil},
		{"x2", resourceA, []string{"c", "d"}, nil},
		{"x2", resourceB, []string{"a", "b"}, nil},
		{"x2", resourceA, nil, nil},
		{"x2", resourceA, []string{"c", "b", "a"}, &protocol.LockConflictError{Resource: resourceA, Key: "b", Holder: "x1"}},
		{"", resourceA, []string{"a"}, &protocol.LockConflictError{Resource: resourceA, Key: "a", Holder: "x1"}},
	}
	for _, tt := range tests {
		err := s.CheckLocks(ctx, tt.xid, tt.resource, tt.keys)
		what := fmt.Sprintf("CheckLocks(%q, %q, %q)", tt.xid, tt.resource, tt.keys)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s = %v, want nil", what, err)
			}
			continue
		}
		checkConflict(t, what, err, tt.want)
	}
}

func testLocks(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("x2"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b"))
	mustRegister(t, s, newBranch("x1", resourceB, "a"))
	mustRegister(t, s, newBranch("x2", resourceA, "c"))
	x1 := []storage.Lock{
		{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
		{Resource: resourceB, Key: "a", XID: "x1", BranchID: 2},
	}
	x2 := []storage.Lock{{Resource: resourceA, Key: "c", XID: "x2", BranchID: 1}}
	checkLocks(t, "Locks(all)", mustLocks(t, s, "", 0), append(slices.Clone(x1), x2...))
	checkLocks(t, "Locks(x1)", mustLocks(t, s, "x1", 0), x1)
	checkLocks(t, "Locks(x2)", mustLocks(t, s, "x2", -1), x2)
	checkLocks(t, "Locks(missing)", mustLocks(t, s, "missing", 0), nil)

	all := append(slices.Clone(x1), x2...)
	for _, tt := range []struct {
		xid   string
		limit int
		from  []storage.Lock
		want  int
	}{{"", 2, all, 2}, {"", 4, all, 4}, {"", 9, all, 4}, {"x1", 1, x1, 1}, {"x1", 2, x1, 2}} {
		got := mustLocks(t, s, tt.xid, tt.limit)
		if len(got) != tt.want {
			t.Errorf("len(Locks(%q, %d)) = %d, want %d", tt.xid, tt.limit, len(got), tt.want)
		}
		for _, l := range got {
			if !slices.Contains(tt.from, l) {
				t.Errorf("Locks(%q, %d) returned %+v, not a lock of %+v", tt.xid, tt.limit, l, tt.from)
			}
		}
	}
}

// testLockKeyEncoding checks that (resource, key) pairs whose plain
// concatenations coincide are distinct rows, and that keys may hold any
// byte.
func testLockKeyEncoding(t *testing.T, s storage.Store) {
	ctx := context.Background()
	pairs := []struct{ resource, key string }{
		{"ab", "c"},
		{"a", "bc"},
		{"a\x00", "bc"},
		{"a", "\x00bc"},
		{"a\x00\x01", "x"},
		{"a", "\x00\x01x"},
		{"", "abc"},
		{"abc", ""},
		{"r", "\xff\xfe\x00"},
	}
	for i, p := range pairs {
		xid := fmt.Sprintf("x%d", i)
		mustCreate(t, s, newGlobal(xid))
		if _, err := s.RegisterBranch(ctx, newBranch(xid, p.resource, p.key), base); err != nil {
			t.Errorf("RegisterBranch(%q, %q) = %v, want nil (distinct row)", p.resource, p.key, err)
		}
	}
	locks := mustLocks(t, s, "", 0)
	if len(locks) != len(pairs) {
		t.Errorf("len(Locks) = %d, want %d", len(locks), len(pairs))
	}
	for i, p := range pairs {
		xid := fmt.Sprintf("x%d", i)
		want := []storage.Lock{{Resource: p.resource, Key: p.key, XID: xid, BranchID: 1}}
		checkLocks(t, fmt.Sprintf("Locks(%s)", xid), mustLocks(t, s, xid, 0), want)
		checkConflict(t, fmt.Sprintf("CheckLocks(%q, %q)", p.resource, p.key),
			s.CheckLocks(ctx, "other", p.resource, []string{p.key}),
			&protocol.LockConflictError{Resource: p.resource, Key: p.key, Holder: xid})
	}
	// XIDs that prefix each other keep their branches and locks apart.
	for _, xid := range []string{"p", "p\x00", "p\x00\x01", "pp"} {
		mustCreate(t, s, newGlobal(xid))
		mustRegister(t, s, newBranch(xid, "prefix", xid))
	}
	for _, xid := range []string{"p", "p\x00", "p\x00\x01", "pp"} {
		bs := mustBranches(t, s, xid)
		if len(bs) != 1 || bs[0].XID != xid {
			t.Errorf("Branches(%q) = %d branches, want 1 of %q", xid, len(bs), xid)
		}
		checkLocks(t, fmt.Sprintf("Locks(%q)", xid), mustLocks(t, s, xid, 0),
			[]storage.Lock{{Resource: "prefix", Key: xid, XID: xid, BranchID: 1}})
	}
	if err := s.ReleaseLocks(ctx, "p"); err != nil {
		t.Fatalf("ReleaseLocks(p) = %v", err)
	}
	if got := len(mustLocks(t, s, "p\x00", 0)); got != 1 {
		t.Errorf("len(Locks(p\\x00)) after ReleaseLocks(p) = %d, want 1", got)
	}
}

func testListGlobals(t *testing.T, s storage.Store) {
	ctx := context.Background()
	set := func(xid string, st storage.Status, parked bool) {
		g := newGlobal(xid)
		g.Status = st
		g.Parked = parked
		mustCreate(t, s, g)
	}
	set("a", begin, false)
	set("b", committing, false)
	set("c", commitRetry, true)
	set("d", rollbacking, true)
	set("e", begin, false)
	set("f", committing, false)
	if err := s.FinishGlobal(ctx, "f", committed); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	tests := []struct {
		f    storage.Filter
		want []string
	}{
		{storage.Filter{}, []string{"a", "b", "c", "d", "e"}},
		{storage.Filter{Statuses: []storage.Status{begin}}, []string{"a", "e"}},
		{storage.Filter{Statuses: []storage.Status{committing, commitRetry}}, []string{"b", "c"}},
		{storage.Filter{Statuses: []storage.Status{committed}}, nil},
		{storage.Filter{ParkedOnly: true}, []string{"c", "d"}},
		{storage.Filter{ParkedOnly: true, Statuses: []storage.Status{rollbacking}}, []string{"d"}},
		{storage.Filter{Limit: -1}, []string{"a", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		got, err := s.ListGlobals(ctx, tt.f)
		if err != nil {
			t.Fatalf("ListGlobals(%+v) = %v", tt.f, err)
		}
		if g := sortedXIDs(got); !slices.Equal(g, tt.want) {
			t.Errorf("ListGlobals(%+v) = %v, want %v", tt.f, g, tt.want)
		}
	}
	for _, limit := range []int{1, 3, 5, 6} {
		f := storage.Filter{Limit: limit}
		got, err := s.ListGlobals(ctx, f)
		if err != nil {
			t.Fatalf("ListGlobals(%+v) = %v", f, err)
		}
		if want := min(limit, 5); len(got) != want {
			t.Errorf("len(ListGlobals(%+v)) = %d, want %d", f, len(got), want)
		}
	}
	got, err := s.ListGlobals(ctx, storage.Filter{Statuses: []storage.Status{begin}, Limit: 1})
	if err != nil {
		t.Fatalf("ListGlobals = %v", err)
	}
	if len(got) != 1 || got[0].Status != begin {
		t.Errorf("ListGlobals(Begin, limit 1) = %v, want one global in Begin", xids(got))
	}
}

func testDueGlobals(t *testing.T, s storage.Store) {
	ctx := context.Background()
	at := func(xid string, next time.Time) {
		g := newGlobal(xid)
		g.NextAt = next
		mustCreate(t, s, g)
	}
	at("late", base.Add(3*time.Second))
	at("never", time.Time{})
	at("early", base.Add(-time.Hour))
	at("exact", base)
	at("mid", base.Add(time.Nanosecond))
	at("pre1970", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	at("far", time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC))

	tests := []struct {
		t     time.Time
		limit int
		want  []string
	}{
		{base, 0, []string{"pre1970", "early", "exact"}},
		{base.Add(time.Nanosecond), 0, []string{"pre1970", "early", "exact", "mid"}},
		{base.Add(time.Hour), 0, []string{"pre1970", "early", "exact", "mid", "late"}},
		{base.Add(time.Hour), 2, []string{"pre1970", "early"}},
		{base.Add(time.Hour), -1, []string{"pre1970", "early", "exact", "mid", "late"}},
		{time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), 0, []string{"pre1970", "early", "exact", "mid", "late", "far"}},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0, nil},
	}
	for _, tt := range tests {
		got, err := s.DueGlobals(ctx, tt.t, tt.limit)
		if err != nil {
			t.Fatalf("DueGlobals(%v, %d) = %v", tt.t, tt.limit, err)
		}
		if g := xids(got); !slices.Equal(g, tt.want) {
			t.Errorf("DueGlobals(%v, %d) = %v, want %v", tt.t, tt.limit, g, tt.want)
		}
	}
	// Returned globals are whole.
	got, err := s.DueGlobals(ctx, base, 0)
	if err != nil {
		t.Fatalf("DueGlobals = %v", err)
	}
	want := newGlobal("exact")
	want.NextAt = base
	checkGlobal(t, "DueGlobals(base)[2]", got[2], want)
}

// testDueGlobalsReindex checks that moving NextAt moves the global in the
// due order and leaves no stale entry behind.
func testDueGlobalsReindex(t *testing.T, s storage.Store) {
	ctx := context.Background()
	for i, xid := range []string{"a", "b", "c"} {
		g := newGlobal(xid)
		g.NextAt = base.Add(time.Duration(i) * time.Second)
		mustCreate(t, s, g)
	}
	due := func(at time.Time) []string {
		t.Helper()
		got, err := s.DueGlobals(ctx, at, 0)
		if err != nil {
			t.Fatalf("DueGlobals = %v", err)
		}
		return xids(got)
	}
	setNext := func(xid string, next time.Time) {
		t.Helper()
		if _, err := s.UpdateGlobal(ctx, xid, func(g *storage.Global) error {
			g.NextAt = next
			g.Attempts++
			return nil
		}); err != nil {
			t.Fatalf("UpdateGlobal = %v", err)
		}
	}
	setNext("a", base.Add(10*time.Second)) // a moves after c
	if got, want := due(base.Add(5*time.Second)), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after moving a later = %v, want %v", got, want)
	}
	if got, want := due(base.Add(time.Minute)), []string{"b", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals(+1m) = %v, want %v", got, want)
	}
	setNext("c", time.Time{}) // c leaves the index
	if got, want := due(base.Add(time.Minute)), []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after clearing c = %v, want %v", got, want)
	}
	setNext("c", base.Add(-time.Second)) // and comes back first
	if got, want := due(base.Add(time.Minute)), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after setting c again = %v, want %v", got, want)
	}
	// An update that does not touch NextAt keeps the entry.
	if _, err := s.UpdateGlobal(ctx, "b", func(g *storage.Global) error { g.Reason = "x"; return nil }); err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}
	// Registering a branch rewrites the global (BranchSeq) and keeps it.
	mustRegister(t, s, newBranch("b", resourceA, "k"))
	if got, want := due(base.Add(time.Minute)), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after unrelated updates = %v, want %v", got, want)
	}
	if err := s.FinishGlobal(ctx, "c", rollbacked); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	if got, want := due(base.Add(time.Minute)), []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after finishing c = %v, want %v", got, want)
	}
}

// testCopies checks that the store never shares memory with its callers.
func testCopies(t *testing.T, s storage.Store) {
	ctx := context.Background()
	in := newGlobal("x1")
	in.History = []storage.Event{{At: base, What: "a"}}
	mustCreate(t, s, in)
	in.Name = "mutated"
	in.History[0].What = "mutated"

	want := newGlobal("x1")
	want.History = []storage.Event{{At: base, What: "a"}}
	g := mustGet(t, s, "x1")
	g.Name = "mutated"
	g.History[0].What = "mutated"
	checkGlobal(t, "GetGlobal after mutating input and result", mustGet(t, s, "x1"), want)

	var kept *storage.Global
	res, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { kept = g; return nil })
	if err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}
	kept.Name = "mutated"
	res.History[0].What = "mutated"
	checkGlobal(t, "GetGlobal after mutating fn's copy", mustGet(t, s, "x1"), want)

	list, err := s.ListGlobals(ctx, storage.Filter{})
	if err != nil {
		t.Fatalf("ListGlobals = %v", err)
	}
	list[0].History[0].What = "mutated"
	due, err := s.DueGlobals(ctx, base.Add(time.Hour), 0)
	if err != nil {
		t.Fatalf("DueGlobals = %v", err)
	}
	due[0].Name = "mutated"
	checkGlobal(t, "GetGlobal after mutating listed", mustGet(t, s, "x1"), want)

	b := newBranch("x1", resourceA, "k1")
	mustRegister(t, s, b)
	wantB := b.Clone()
	b.LockKeys[0] = "mutated"
	b.AppData[0] = 'X'
	bs := mustBranches(t, s, "x1")
	bs[0].LockKeys[0] = "mutated"
	bs[0].AppData[0] = 'X'
	var keptB *storage.Branch
	resB, err := s.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error { keptB = b; return nil })
	if err != nil {
		t.Fatalf("UpdateBranch = %v", err)
	}
	keptB.AppData[0] = 'Y'
	resB.LockKeys[0] = "mutated"
	checkBranch(t, "Branches[0] after mutations", mustBranches(t, s, "x1")[0], wantB)
	if err := s.CheckLocks(ctx, "x2", resourceA, []string{"k1"}); err == nil {
		t.Errorf("CheckLocks(k1) = nil after mutating the registered branch's keys, want a conflict")
	}
}

func testCancelledContext(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "k1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]error{
		"CreateGlobal": s.CreateGlobal(ctx, newGlobal("x2")),
		"UpdateGlobal": func() error {
			_, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { g.Attempts = 9; return nil })
			return err
		}(),
		"FinishGlobal": s.FinishGlobal(ctx, "x1", committed),
		"RegisterBranch": func() error {
			_, err := s.RegisterBranch(ctx, newBranch("x1", resourceA, "k2"), base)
			return err
		}(),
		"UpdateBranch": func() error {
			_, err := s.UpdateBranch(ctx, "x1", 1, func(*storage.Branch) error { return nil })
			return err
		}(),
		"ReleaseLocks": s.ReleaseLocks(ctx, "x1"),
		"BeginRegisterBranch": func() error {
			_, _, err := s.BeginRegisterBranch(ctx, newGlobal("x2"), newBranch("x2", resourceA, "k3"), base)
			return err
		}(),
	}
	for name, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s(cancelled ctx) = %v, want %v", name, err, context.Canceled)
		}
	}
	g := mustGet(t, s, "x1")
	if g.Finished || g.Attempts != 0 || g.BranchSeq != 1 {
		t.Errorf("global after cancelled calls = %+v, want unchanged", g)
	}
	if _, err := s.GetGlobal(context.Background(), "x2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(x2) = %v, want %v (create was cancelled)", err, storage.ErrNotFound)
	}
	if got := len(mustLocks(t, s, "x1", 0)); got != 1 {
		t.Errorf("len(Locks(x1)) after cancelled calls = %d, want 1", got)
	}
}

func testClosed(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	calls := map[string]error{
		"CreateGlobal": s.CreateGlobal(ctx, newGlobal("x2")),
		"GetGlobal": func() error {
			_, err := s.GetGlobal(ctx, "x1")
			return err
		}(),
		"UpdateGlobal": func() error {
			_, err := s.UpdateGlobal(ctx, "x1", func(*storage.Global) error { return nil })
			return err
		}(),
		"FinishGlobal": s.FinishGlobal(ctx, "x1", committed),
		"ListGlobals": func() error {
			_, err := s.ListGlobals(ctx, storage.Filter{})
			return err
		}(),
		"DueGlobals": func() error {
			_, err := s.DueGlobals(ctx, base, 0)
			return err
		}(),
		"RegisterBranch": func() error {
			_, err := s.RegisterBranch(ctx, newBranch("x1", resourceA, "k"), base)
			return err
		}(),
		"UpdateBranch": func() error {
			_, err := s.UpdateBranch(ctx, "x1", 1, func(*storage.Branch) error { return nil })
			return err
		}(),
		"Branches": func() error {
			_, err := s.Branches(ctx, "x1")
			return err
		}(),
		"ReleaseLocks": s.ReleaseLocks(ctx, "x1"),
		"BeginRegisterBranch": func() error {
			_, _, err := s.BeginRegisterBranch(ctx, newGlobal("x3"), newBranch("x3", resourceA, "k"), base)
			return err
		}(),
		"CheckLocks": s.CheckLocks(ctx, "x1", resourceA, []string{"k"}),
		"Locks": func() error {
			_, err := s.Locks(ctx, "", 0)
			return err
		}(),
	}
	for name, err := range calls {
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close = %v, want %v", name, err, storage.ErrClosed)
		}
	}
}

// testRelaxed: changes acknowledged under storage.Relaxed are atomic and
// visible to every later read, like any other.
func testRelaxed(t *testing.T, s storage.Store) {
	ctx := storage.Relaxed(context.Background())
	want := newGlobal("r1")
	if err := s.CreateGlobal(ctx, want.Clone()); err != nil {
		t.Fatalf("relaxed CreateGlobal: %v", err)
	}
	checkGlobal(t, `GetGlobal("r1") after a relaxed create`, mustGet(t, s, "r1"), want)
	id, err := s.RegisterBranch(ctx, &storage.Branch{XID: "r1", Resource: "db", LockKeys: []string{"k"}}, base)
	if err != nil || id != 1 {
		t.Fatalf("relaxed RegisterBranch = %d, %v; want 1, nil", id, err)
	}
	if err := s.FinishGlobal(ctx, "r1", committed); err != nil {
		t.Fatalf("relaxed FinishGlobal: %v", err)
	}
	if g := mustGet(t, s, "r1"); !g.Finished || g.Status != committed {
		t.Errorf("GetGlobal after a relaxed finish = %+v, want the committed tombstone", g)
	}
	if locks, err := s.Locks(context.Background(), "r1", 0); err != nil || len(locks) != 0 {
		t.Errorf("Locks after a relaxed finish = %v, %v; want none", locks, err)
	}
}

// testReleaseFlags: ReleaseLocks records the release on the branches or
// the global, and a released global takes no more branches.
func testReleaseFlags(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b"))
	mustRegister(t, s, newBranch("x1", resourceB, "c"))
	if err := s.ReleaseLocks(ctx, "x1", 1, 7); err != nil { // 7: no such branch
		t.Fatalf("ReleaseLocks(x1, 1, 7) = %v", err)
	}
	bs := mustBranches(t, s, "x1")
	if !bs[0].LocksReleased || bs[1].LocksReleased {
		t.Errorf("Branches(x1) LocksReleased = %v, %v; want true, false", bs[0].LocksReleased, bs[1].LocksReleased)
	}
	if g := mustGet(t, s, "x1"); g.LocksReleased {
		t.Errorf("GetGlobal(x1).LocksReleased after a branch release = true, want false")
	}
	checkLocks(t, "Locks(x1) after releasing branch 1", mustLocks(t, s, "x1", 0),
		[]storage.Lock{{Resource: resourceB, Key: "c", XID: "x1", BranchID: 2}})

	if err := s.ReleaseLocks(ctx, "x1"); err != nil {
		t.Fatalf("ReleaseLocks(x1) = %v", err)
	}
	if g := mustGet(t, s, "x1"); !g.LocksReleased {
		t.Errorf("GetGlobal(x1).LocksReleased after ReleaseLocks(x1) = false, want true")
	}
	if ls := mustLocks(t, s, "", 0); len(ls) != 0 {
		t.Errorf("Locks after releasing x1 = %+v, want none", ls)
	}
	_, err := s.RegisterBranch(ctx, newBranch("x1", resourceA, "d"), base)
	if !errors.Is(err, storage.ErrNotBegin) {
		t.Errorf("RegisterBranch(x1) after its locks were released = %v, want %v", err, storage.ErrNotBegin)
	}
	if err := s.CheckLocks(ctx, "x2", resourceA, []string{"d"}); err != nil {
		t.Errorf("CheckLocks(d) after the refused registration = %v, want nil", err)
	}
	// A registered branch never starts out released.
	mustCreate(t, s, newGlobal("x2"))
	b := newBranch("x2", resourceA, "e")
	b.LocksReleased = true
	mustRegister(t, s, b)
	if bs := mustBranches(t, s, "x2"); bs[0].LocksReleased {
		t.Errorf("RegisterBranch kept LocksReleased from its argument")
	}
	checkLocks(t, "Locks(x2)", mustLocks(t, s, "x2", 0),
		[]storage.Lock{{Resource: resourceA, Key: "e", XID: "x2", BranchID: 1}})
}

// testReleaseThroughUpdates: setting LocksReleased in UpdateGlobal or
// UpdateBranch releases in the same write; clearing it is ignored.
func testReleaseThroughUpdates(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("x2"))
	mustCreate(t, s, newGlobal("other"))
	mustRegister(t, s, newBranch("x1", resourceA, "a"))
	mustRegister(t, s, newBranch("x1", resourceA, "b"))
	mustRegister(t, s, newBranch("x2", resourceA, "c", "d"))

	got, err := s.UpdateBranch(ctx, "x1", 2, func(b *storage.Branch) error {
		b.Status = phaseOneOK
		b.LocksReleased = true
		return nil
	})
	if err != nil || !got.LocksReleased || got.Status != phaseOneOK {
		t.Fatalf("UpdateBranch(release) = %+v, %v; want released, PhaseOneDone", got, err)
	}
	checkLocks(t, "Locks(x1) after releasing branch 2 by update", mustLocks(t, s, "x1", 0),
		[]storage.Lock{{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1}})
	mustRegister(t, s, newBranch("other", resourceA, "b"))
	got, err = s.UpdateBranch(ctx, "x1", 2, func(b *storage.Branch) error { b.LocksReleased = false; return nil })
	if err != nil || !got.LocksReleased {
		t.Errorf("UpdateBranch(clear LocksReleased) = %+v, %v; want it still released", got, err)
	}
	if bs := mustBranches(t, s, "x1"); !bs[1].LocksReleased {
		t.Errorf("Branches(x1)[1].LocksReleased after clearing = false, want true")
	}
	checkLocks(t, "Locks(other) after x1 tried to clear its release", mustLocks(t, s, "other", 0),
		[]storage.Lock{{Resource: resourceA, Key: "b", XID: "other", BranchID: 1}})

	g, err := s.UpdateGlobal(ctx, "x2", func(g *storage.Global) error {
		g.Status = committing
		g.LocksReleased = true
		return nil
	})
	if err != nil || !g.LocksReleased || g.Status != committing {
		t.Fatalf("UpdateGlobal(commit and release) = %+v, %v; want Committing, released", g, err)
	}
	if ls := mustLocks(t, s, "x2", 0); len(ls) != 0 {
		t.Errorf("Locks(x2) after UpdateGlobal released them = %+v, want none", ls)
	}
	mustRegister(t, s, newBranch("other", resourceA, "c", "d"))
	g, err = s.UpdateGlobal(ctx, "x2", func(g *storage.Global) error { g.LocksReleased = false; return nil })
	if err != nil || !g.LocksReleased || !mustGet(t, s, "x2").LocksReleased {
		t.Errorf("UpdateGlobal(clear LocksReleased) = %+v, %v; want it still released", g, err)
	}
	if ls := mustLocks(t, s, "x2", 0); len(ls) != 0 {
		t.Errorf("Locks(x2) after clearing LocksReleased = %+v, want none", ls)
	}
}

// testReleasePassesRowOn: a row listed by two branches of a global stays
// held while either is unreleased.
func testReleasePassesRowOn(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b")) // 1
	mustRegister(t, s, newBranch("x1", resourceA, "b", "c")) // 2
	mustRegister(t, s, newBranch("x1", resourceA, "b"))      // 3
	checkLocks(t, "Locks(x1)", mustLocks(t, s, "x1", 0), []storage.Lock{
		{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
	})
	if err := s.ReleaseLocks(ctx, "x1", 1); err != nil {
		t.Fatalf("ReleaseLocks(x1, 1) = %v", err)
	}
	checkLocks(t, "Locks(x1) after releasing branch 1", mustLocks(t, s, "x1", 0), []storage.Lock{
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 2},
		{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
	})
	checkConflict(t, "CheckLocks(b)", s.CheckLocks(ctx, "x2", resourceA, []string{"a", "b"}),
		&protocol.LockConflictError{Resource: resourceA, Key: "b", Holder: "x1"})
	if err := s.ReleaseLocks(ctx, "x1", 2); err != nil {
		t.Fatalf("ReleaseLocks(x1, 2) = %v", err)
	}
	checkLocks(t, "Locks(x1) after releasing branch 2", mustLocks(t, s, "x1", 0), []storage.Lock{
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 3},
	})
	if err := s.ReleaseLocks(ctx, "x1", 3); err != nil {
		t.Fatalf("ReleaseLocks(x1, 3) = %v", err)
	}
	if ls := mustLocks(t, s, "", 0); len(ls) != 0 {
		t.Errorf("Locks after releasing every branch = %+v, want none", ls)
	}
}

// testRegisterBranchRefusedTakesNothing: whatever refuses a registration,
// its keys are free afterwards.
func testRegisterBranchRefusedTakesNothing(t *testing.T, s storage.Store) {
	ctx := context.Background()
	notBegin := newGlobal("committing")
	notBegin.Status = committing
	mustCreate(t, s, notBegin)
	mustCreate(t, s, newGlobal("begin"))
	mustCreate(t, s, newGlobal("released"))
	if err := s.ReleaseLocks(ctx, "released"); err != nil {
		t.Fatalf("ReleaseLocks = %v", err)
	}
	mustCreate(t, s, newGlobal("holder"))
	mustRegister(t, s, newBranch("holder", resourceA, "held"))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		xid  string
		keys []string
		now  time.Time
		want error
	}{
		{"missing", ctx, "missing", []string{"k1", "k2"}, base, storage.ErrNotFound},
		{"not begin", ctx, "committing", []string{"k1", "k2"}, base, storage.ErrNotBegin},
		{"locks released", ctx, "released", []string{"k1", "k2"}, base, storage.ErrNotBegin},
		{"past deadline", ctx, "begin", []string{"k1", "k2"}, base.Add(time.Hour), storage.ErrTimedOut},
		{"cancelled", cancelled, "begin", []string{"k1", "k2"}, base, context.Canceled},
		{"conflict", ctx, "begin", []string{"k1", "held", "k2"}, base, protocol.ErrLockConflict},
		// Refused by its global's state, even though a key conflicts too.
		{"not begin and conflict", ctx, "committing", []string{"k1", "held"}, base, storage.ErrNotBegin},
		{"past deadline and conflict", ctx, "begin", []string{"k1", "held"}, base.Add(time.Hour), storage.ErrTimedOut},
	}
	for _, tt := range tests {
		_, err := s.RegisterBranch(tt.ctx, newBranch(tt.xid, resourceA, tt.keys...), tt.now)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: RegisterBranch = %v, want %v", tt.name, err, tt.want)
		}
		if err := s.CheckLocks(ctx, "other", resourceA, []string{"k1", "k2"}); err != nil {
			t.Errorf("%s: CheckLocks(k1, k2) after the refusal = %v, want nil", tt.name, err)
		}
		if ls := mustLocks(t, s, tt.xid, 0); len(ls) != 0 {
			t.Errorf("%s: Locks(%s) = %+v, want none", tt.name, tt.xid, ls)
		}
	}
	mustCreate(t, s, newGlobal("next"))
	mustRegister(t, s, newBranch("next", resourceA, "k1", "k2"))
	checkLocks(t, "Locks(all)", mustLocks(t, s, "", 0), []storage.Lock{
		{Resource: resourceA, Key: "held", XID: "holder", BranchID: 1},
		{Resource: resourceA, Key: "k1", XID: "next", BranchID: 1},
		{Resource: resourceA, Key: "k2", XID: "next", BranchID: 1},
	})
}

// testRegisterBranchRace races two globals for one key, many times:
// exactly one wins, and the other is told who holds it. In every round one
// more global, past its deadline, races too: it never wins, and it is told
// it timed out, not that the key is taken.
func testRegisterBranchRace(t *testing.T, s storage.Store) {
	const rounds = 100
	late := base.Add(2 * testTimeout)
	for i := range rounds {
		key := fmt.Sprintf("hot%d", i)
		xids := []string{fmt.Sprintf("r%d-a", i), fmt.Sprintf("r%d-b", i), fmt.Sprintf("r%d-late", i)}
		for j, xid := range xids {
			g := newGlobal(xid)
			if j == 2 {
				g.Deadline = base.Add(time.Second)
			}
			mustCreate(t, s, g)
		}
		start := make(chan struct{})
		errs := make([]error, len(xids))
		var wg sync.WaitGroup
		for j, xid := range xids {
			wg.Go(func() {
				<-start
				now := base
				if j == 2 {
					now = late
				}
				_, errs[j] = s.RegisterBranch(context.Background(), newBranch(xid, resourceA, key), now)
			})
		}
		close(start)
		wg.Wait()
		if !errors.Is(errs[2], storage.ErrTimedOut) {
			t.Errorf("round %d: RegisterBranch of the global past its deadline = %v, want %v", i, errs[2], storage.ErrTimedOut)
		}
		var winners []string
		for j, err := range errs[:2] {
			if err == nil {
				winners = append(winners, xids[j])
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: winners %v (errors %v), want exactly one", i, winners, errs)
		}
		loser := 1
		if winners[0] == xids[1] {
			loser = 0
		}
		checkConflict(t, fmt.Sprintf("round %d: RegisterBranch of the loser", i), errs[loser],
			&protocol.LockConflictError{Resource: resourceA, Key: key, Holder: winners[0]})
		checkLocks(t, fmt.Sprintf("round %d: Locks(%s)", i, winners[0]), mustLocks(t, s, winners[0], 0),
			[]storage.Lock{{Resource: resourceA, Key: key, XID: winners[0], BranchID: 1}})
	}
}

// testBeginRegisterBranch: the first registration of a global nobody
// created creates it in the same write; later ones just register.
func testBeginRegisterBranch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	g := newGlobal("lazy")
	g.BranchSeq = 7 // ignored: the first branch is 1
	b := newBranch("lazy", resourceA, "k1")
	id, created, err := s.BeginRegisterBranch(ctx, g, b, base)
	if err != nil || id != 1 || !created || b.ID != 1 {
		t.Fatalf("BeginRegisterBranch(new) = %d, %v, %v (b.ID %d); want 1, true, nil", id, created, err, b.ID)
	}
	want := newGlobal("lazy")
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy)", mustGet(t, s, "lazy"), want)
	wantB := newBranch("lazy", resourceA, "k1")
	wantB.ID = 1
	if bs := mustBranches(t, s, "lazy"); len(bs) != 1 {
		t.Fatalf("Branches(lazy) = %d branches, want 1", len(bs))
	} else {
		checkBranch(t, "Branches(lazy)[0]", bs[0], wantB)
	}
	checkLocks(t, "Locks(lazy)", mustLocks(t, s, "lazy", 0),
		[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "lazy", BranchID: 1}})
	// The due index knows the created global.
	due, err := s.DueGlobals(ctx, base.Add(time.Hour), 0)
	if err != nil || !slices.Equal(xids(due), []string{"lazy"}) {
		t.Errorf("DueGlobals after BeginRegisterBranch = %v, %v; want [lazy]", xids(due), err)
	}

	// A stored global is kept as it is: only the branch is added.
	other := newGlobal("lazy")
	other.Name = "other"
	id, created, err = s.BeginRegisterBranch(ctx, other, newBranch("lazy", resourceB, "k1"), base)
	if err != nil || id != 2 || created {
		t.Fatalf("BeginRegisterBranch(stored) = %d, %v, %v; want 2, false, nil", id, created, err)
	}
	want.BranchSeq = 2
	checkGlobal(t, "GetGlobal(lazy) after a second registration", mustGet(t, s, "lazy"), want)
	if _, err := s.RegisterBranch(ctx, newBranch("lazy", resourceA, "k2"), base); err != nil {
		t.Errorf("RegisterBranch(lazy) = %v, want nil", err)
	}
	if err := s.CreateGlobal(ctx, newGlobal("lazy")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(lazy) = %v, want %v", err, storage.ErrExists)
	}
}

// testBeginRegisterBranchRefused: a refused registration creates nothing.
func testBeginRegisterBranchRefused(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("holder"))
	mustRegister(t, s, newBranch("holder", resourceA, "held"))
	mustCreate(t, s, newGlobal("done"))
	if err := s.FinishGlobal(ctx, "done", rollbacked); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	decided := newGlobal("decided")
	decided.Status = committing
	tests := []struct {
		name string
		g    *storage.Global
		b    *storage.Branch
		now  time.Time
		want error
	}{
		{"conflict", newGlobal("g1"), newBranch("g1", resourceA, "k", "held"), base, protocol.ErrLockConflict},
		{"past deadline", newGlobal("g2"), newBranch("g2", resourceA, "k"), base.Add(time.Hour), storage.ErrTimedOut},
		{"past deadline and conflict", newGlobal("g3"), newBranch("g3", resourceA, "held"), base.Add(time.Hour), storage.ErrTimedOut},
		{"tombstone", newGlobal("done"), newBranch("done", resourceA, "k"), base, storage.ErrNotBegin},
		{"not in Begin", decided, newBranch("decided", resourceA, "k"), base, storage.ErrNotBegin},
		{"other xid", newGlobal("g4"), newBranch("g5", resourceA, "k"), base, protocol.ErrInvalidArgument},
		{"empty xid", newGlobal(""), newBranch("", resourceA, "k"), base, protocol.ErrInvalidArgument},
	}
	for _, tt := range tests {
		id, created, err := s.BeginRegisterBranch(ctx, tt.g, tt.b, tt.now)
		if !errors.Is(err, tt.want) || id != 0 || created {
			t.Errorf("%s: BeginRegisterBranch = %d, %v, %v; want 0, false, %v", tt.name, id, created, err, tt.want)
		}
		if tt.g.XID != "done" && tt.g.XID != "" {
			if g, err := s.GetGlobal(ctx, tt.g.XID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: GetGlobal(%s) = %+v, %v; want %v (nothing created)", tt.name, tt.g.XID, g, err, storage.ErrNotFound)
			}
		}
		if err := s.CheckLocks(ctx, "other", resourceA, []string{"k"}); err != nil {
			t.Errorf("%s: CheckLocks(k) = %v, want nil", tt.name, err)
		}
	}
	if g := mustGet(t, s, "done"); !g.Finished || g.Status != rollbacked {
		t.Errorf("tombstone after BeginRegisterBranch = %+v, want it unchanged", g)
	}
}

// testBeginRegisterBranchConcurrent: of concurrent first registrations of
// one global, exactly one creates it, and branch ids are not repeated.
func testBeginRegisterBranchConcurrent(t *testing.T, s storage.Store) {
	const n = 16
	type result struct {
		id      int64
		created bool
		err     error
	}
	results := make(chan result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			id, created, err := s.BeginRegisterBranch(context.Background(), newGlobal("lazy"),
				newBranch("lazy", resourceA, fmt.Sprintf("k%d", i)), base)
			results <- result{id, created, err}
		})
	}
	close(start)
	wg.Wait()
	close(results)
	var ids []int64
	creators := 0
	for r := range results {
		if r.err != nil {
			t.Errorf("BeginRegisterBranch = %v, want nil", r.err)
			continue
		}
		if r.created {
			creators++
		}
		ids = append(ids, r.id)
	}
	if creators != 1 {
		t.Errorf("%d calls created the global, want 1", creators)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("branch ids = %v, want 1..%d", ids, n)
		}
	}
	if g := mustGet(t, s, "lazy"); g.BranchSeq != n {
		t.Errorf("BranchSeq = %d, want %d", g.BranchSeq, n)
	}
	if got := len(mustLocks(t, s, "lazy", 0)); got != n {
		t.Errorf("len(Locks(lazy)) = %d, want %d", got, n)
	}
}

// RunDurable runs the part of the contract that only a durable store
// keeps: what it holds survives Close and a new open of the same data, in
// particular the locks (which a store may keep in memory and rebuild) and
// their releases. open returns a fresh, empty store and a function that
// closes that store and opens its data again; both stores must be closed
// when the test ends.
func RunDurable(t *testing.T, open func(t *testing.T) (storage.Store, func() storage.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store, reopen func() storage.Store)
	}{
		{"LocksSurviveReopen", testLocksSurviveReopen},
		{"RefusedRegistrationAfterReopen", testRefusedRegistrationAfterReopen},
		{"BeginRegisterBranchAfterReopen", testBeginRegisterBranchAfterReopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, reopen := open(t)
			tt.fn(t, s, reopen)
		})
	}
}

// testLocksSurviveReopen: held locks come back after a reopen, released
// ones (per branch, per global, by update, by finishing) stay released.
func testLocksSurviveReopen(t *testing.T, s storage.Store, reopen func() storage.Store) {
	ctx := context.Background()
	for _, xid := range []string{"held", "branches", "global", "update", "finished", "passed"} {
		mustCreate(t, s, newGlobal(xid))
	}
	mustRegister(t, s, newBranch("held", resourceA, "h1", "h2"))
	mustRegister(t, s, newBranch("held", resourceB, "h1"))
	mustRegister(t, s, newBranch("branches", resourceA, "b1")) // 1
	mustRegister(t, s, newBranch("branches", resourceA, "b2")) // 2
	mustRegister(t, s, newBranch("branches", resourceA, "b3")) // 3
	mustRegister(t, s, newBranch("global", resourceA, "g1"))
	mustRegister(t, s, newBranch("update", resourceA, "u1"))
	mustRegister(t, s, newBranch("update", resourceA, "u2"))
	mustRegister(t, s, newBranch("finished", resourceA, "f1"))
	mustRegister(t, s, newBranch("passed", resourceA, "p1", "p2")) // 1
	mustRegister(t, s, newBranch("passed", resourceA, "p2"))       // 2
	if err := s.ReleaseLocks(ctx, "branches", 3, 1); err != nil {
		t.Fatalf("ReleaseLocks(branches, 3, 1) = %v", err)
	}
	if err := s.ReleaseLocks(ctx, "global"); err != nil {
		t.Fatalf("ReleaseLocks(global) = %v", err)
	}
	if _, err := s.UpdateBranch(ctx, "update", 2, func(b *storage.Branch) error { b.LocksReleased = true; return nil }); err != nil {
		t.Fatalf("UpdateBranch = %v", err)
	}
	if err := s.FinishGlobal(ctx, "finished", committed); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	if err := s.ReleaseLocks(ctx, "passed", 1); err != nil {
		t.Fatalf("ReleaseLocks(passed, 1) = %v", err)
	}
	want := []storage.Lock{
		{Resource: resourceA, Key: "h1", XID: "held", BranchID: 1},
		{Resource: resourceA, Key: "h2", XID: "held", BranchID: 1},
		{Resource: resourceB, Key: "h1", XID: "held", BranchID: 2},
		{Resource: resourceA, Key: "b2", XID: "branches", BranchID: 2},
		{Resource: resourceA, Key: "u1", XID: "update", BranchID: 1},
		{Resource: resourceA, Key: "p2", XID: "passed", BranchID: 2},
	}
	checkLocks(t, "Locks before reopen", mustLocks(t, s, "", 0), want)

	s = reopen()
	checkLocks(t, "Locks after reopen", mustLocks(t, s, "", 0), want)
	checkLocks(t, "Locks(held) after reopen", mustLocks(t, s, "held", 0), want[:3])
	checkConflict(t, "CheckLocks(h2) after reopen", s.CheckLocks(ctx, "x", resourceA, []string{"h2"}),
		&protocol.LockConflictError{Resource: resourceA, Key: "h2", Holder: "held"})
	if bs := mustBranches(t, s, "branches"); !bs[0].LocksReleased || bs[1].LocksReleased || !bs[2].LocksReleased {
		t.Errorf("Branches(branches) LocksReleased after reopen = %v %v %v, want true false true",
			bs[0].LocksReleased, bs[1].LocksReleased, bs[2].LocksReleased)
	}
	if g := mustGet(t, s, "global"); !g.LocksReleased {
		t.Errorf("GetGlobal(global).LocksReleased after reopen = false, want true")
	}
	// Released rows are free for others; held ones are not.
	mustCreate(t, s, newGlobal("new"))
	mustRegister(t, s, newBranch("new", resourceA, "b1", "b3", "g1", "u2", "f1", "p1"))
	_, err := s.RegisterBranch(ctx, newBranch("new", resourceA, "p2"), base)
	checkConflict(t, "RegisterBranch(p2) after reopen", err,
		&protocol.LockConflictError{Resource: resourceA, Key: "p2", Holder: "passed"})
	if _, err := s.RegisterBranch(ctx, newBranch("global", resourceA, "g2"), base); !errors.Is(err, storage.ErrNotBegin) {
		t.Errorf("RegisterBranch(global) after reopen = %v, want %v (its locks are released)", err, storage.ErrNotBegin)
	}
	// The held global still holds across a second reopen, and the table
	// goes on working: its registrations add to it.
	mustRegister(t, s, newBranch("held", resourceA, "h3"))
	s = reopen()
	checkLocks(t, "Locks(held) after the second reopen", mustLocks(t, s, "held", 0), append(slices.Clone(want[:3]),
		storage.Lock{Resource: resourceA, Key: "h3", XID: "held", BranchID: 3}))
	checkLocks(t, "Locks(new) after the second reopen", mustLocks(t, s, "new", 0), []storage.Lock{
		{Resource: resourceA, Key: "b1", XID: "new", BranchID: 1},
		{Resource: resourceA, Key: "b3", XID: "new", BranchID: 1},
		{Resource: resourceA, Key: "f1", XID: "new", BranchID: 1},
		{Resource: resourceA, Key: "g1", XID: "new", BranchID: 1},
		{Resource: resourceA, Key: "p1", XID: "new", BranchID: 1},
		{Resource: resourceA, Key: "u2", XID: "new", BranchID: 1},
	})
}

// testRefusedRegistrationAfterReopen: a refused registration leaves
// nothing that a reopen could bring back.
func testRefusedRegistrationAfterReopen(t *testing.T, s storage.Store, reopen func() storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("holder"))
	mustRegister(t, s, newBranch("holder", resourceA, "held"))
	if _, err := s.RegisterBranch(ctx, newBranch("x1", resourceA, "k1"), base.Add(time.Hour)); !errors.Is(err, storage.ErrTimedOut) {
		t.Fatalf("RegisterBranch past deadline = %v, want %v", err, storage.ErrTimedOut)
	}
	if _, err := s.RegisterBranch(ctx, newBranch("x1", resourceA, "k2", "held"), base); !errors.Is(err, protocol.ErrLockConflict) {
		t.Fatalf("RegisterBranch(held key) = %v, want a lock conflict", err)
	}
	s = reopen()
	checkLocks(t, "Locks after reopen", mustLocks(t, s, "", 0),
		[]storage.Lock{{Resource: resourceA, Key: "held", XID: "holder", BranchID: 1}})
	if g := mustGet(t, s, "x1"); g.BranchSeq != 0 {
		t.Errorf("BranchSeq(x1) after refused registrations and reopen = %d, want 0", g.BranchSeq)
	}
	mustRegister(t, s, newBranch("x1", resourceA, "k1", "k2"))
}

// testBeginRegisterBranchAfterReopen: a global created by its first
// registration is stored like any other: it, its branch, its lock and its
// due time survive a reopen; a refused one leaves nothing.
func testBeginRegisterBranchAfterReopen(t *testing.T, s storage.Store, reopen func() storage.Store) {
	ctx := context.Background()
	if _, _, err := s.BeginRegisterBranch(ctx, newGlobal("lazy"), newBranch("lazy", resourceA, "k1"), base); err != nil {
		t.Fatalf("BeginRegisterBranch = %v", err)
	}
	if _, _, err := s.BeginRegisterBranch(ctx, newGlobal("late"), newBranch("late", resourceA, "k2"), base.Add(time.Hour)); !errors.Is(err, storage.ErrTimedOut) {
		t.Fatalf("BeginRegisterBranch past deadline = %v, want %v", err, storage.ErrTimedOut)
	}
	s = reopen()
	want := newGlobal("lazy")
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy) after reopen", mustGet(t, s, "lazy"), want)
	if _, err := s.GetGlobal(ctx, "late"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(late) after reopen = %v, want %v", err, storage.ErrNotFound)
	}
	checkLocks(t, "Locks after reopen", mustLocks(t, s, "", 0),
		[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "lazy", BranchID: 1}})
	due, err := s.DueGlobals(ctx, base.Add(time.Hour), 0)
	if err != nil || !slices.Equal(xids(due), []string{"lazy"}) {
		t.Errorf("DueGlobals after reopen = %v, %v; want [lazy]", xids(due), err)
	}
}
