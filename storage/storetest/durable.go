package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

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
