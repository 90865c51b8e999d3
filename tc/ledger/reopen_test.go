package ledger_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/ledger"
)

// The lock table after a reopen: LoadTable rebuilds it from the stored
// branches.

// TestLocksSurviveReopen: held locks come back after a reopen, released
// ones (per branch, per global, by update, by finishing) stay released,
// and rows passed on stay with the branch they passed to.
func TestLocksSurviveReopen(t *testing.T) {
	runReopen(t, func(t *testing.T, l *ledger.Ledger, reopen func() *ledger.Ledger) {
		ctx := context.Background()
		for _, xid := range []string{"held", "branches", "global", "update", "finished", "passed"} {
			mustCreate(t, l, newGlobal(xid))
		}
		mustRegister(t, l, newBranch("held", resourceA, "h1", "h2"))
		mustRegister(t, l, newBranch("held", resourceB, "h1"))
		mustRegister(t, l, newBranch("branches", resourceA, "b1")) // 1
		mustRegister(t, l, newBranch("branches", resourceA, "b2")) // 2
		mustRegister(t, l, newBranch("branches", resourceA, "b3")) // 3
		mustRegister(t, l, newBranch("global", resourceA, "g1"))
		mustRegister(t, l, newBranch("update", resourceA, "u1"))
		mustRegister(t, l, newBranch("update", resourceA, "u2"))
		mustRegister(t, l, newBranch("finished", resourceA, "f1"))
		mustRegister(t, l, newBranch("passed", resourceA, "p1", "p2")) // 1
		mustRegister(t, l, newBranch("passed", resourceA, "p2"))       // 2
		if err := l.ReleaseLocks(ctx, "branches", 3, 1); err != nil {
			t.Fatalf("ReleaseLocks(branches, 3, 1) = %v", err)
		}
		if err := l.ReleaseLocks(ctx, "global"); err != nil {
			t.Fatalf("ReleaseLocks(global) = %v", err)
		}
		mustUpdateBranch(t, l, "update", 2, true)
		if err := l.FinishGlobal(ctx, "finished", committed, storage.Durable); err != nil {
			t.Fatalf("FinishGlobal = %v", err)
		}
		if err := l.ReleaseLocks(ctx, "passed", 1); err != nil {
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
		checkLocks(t, "Locks before reopen", mustLocks(t, l, "", 0), want)

		l = reopen()
		checkLocks(t, "Locks after reopen", mustLocks(t, l, "", 0), want)
		checkLocks(t, "Locks(held) after reopen", mustLocks(t, l, "held", 0), want[:3])
		checkConflict(t, "CheckLocks(h2) after reopen", l.CheckLocks(ctx, "x", resourceA, []string{"h2"}),
			&protocol.LockConflictError{Resource: resourceA, Key: "h2", Holder: "held"})
		if bs := mustBranches(t, l, "branches"); !bs[0].LocksReleased || bs[1].LocksReleased || !bs[2].LocksReleased {
			t.Errorf("Branches(branches) LocksReleased after reopen = %v %v %v, want true false true",
				bs[0].LocksReleased, bs[1].LocksReleased, bs[2].LocksReleased)
		}
		if g := mustGet(t, l, "global"); !g.LocksReleased {
			t.Errorf("GetGlobal(global).LocksReleased after reopen = false, want true")
		}
		// Released rows are free for others; held ones are not.
		mustCreate(t, l, newGlobal("new"))
		mustRegister(t, l, newBranch("new", resourceA, "b1", "b3", "g1", "u2", "f1", "p1"))
		_, err := l.RegisterBranch(ctx, newBranch("new", resourceA, "p2"), base)
		checkConflict(t, "RegisterBranch(p2) after reopen", err,
			&protocol.LockConflictError{Resource: resourceA, Key: "p2", Holder: "passed"})
		if _, err := l.RegisterBranch(ctx, newBranch("global", resourceA, "g2"), base); !errors.Is(err, protocol.ErrNotBegin) {
			t.Errorf("RegisterBranch(global) after reopen = %v, want %v (its locks are released)", err, protocol.ErrNotBegin)
		}
		// The held global still holds across a second reopen, and the
		// table goes on working: its registrations add to it.
		mustRegister(t, l, newBranch("held", resourceA, "h3"))
		l = reopen()
		checkLocks(t, "Locks(held) after the second reopen", mustLocks(t, l, "held", 0), append(slices.Clone(want[:3]),
			storage.Lock{Resource: resourceA, Key: "h3", XID: "held", BranchID: 3}))
		checkLocks(t, "Locks(new) after the second reopen", mustLocks(t, l, "new", 0), []storage.Lock{
			{Resource: resourceA, Key: "b1", XID: "new", BranchID: 1},
			{Resource: resourceA, Key: "b3", XID: "new", BranchID: 1},
			{Resource: resourceA, Key: "f1", XID: "new", BranchID: 1},
			{Resource: resourceA, Key: "g1", XID: "new", BranchID: 1},
			{Resource: resourceA, Key: "p1", XID: "new", BranchID: 1},
			{Resource: resourceA, Key: "u2", XID: "new", BranchID: 1},
		})
		// Releases after a reopen pass rows on as before it.
		if err := l.ReleaseLocks(ctx, "passed", 2); err != nil {
			t.Fatalf("ReleaseLocks(passed, 2) = %v", err)
		}
		mustRegister(t, l, newBranch("new", resourceA, "p2"))
	})
}

// TestRefusedRegistrationAfterReopen: a refused registration leaves
// nothing that a reopen could bring back.
func TestRefusedRegistrationAfterReopen(t *testing.T) {
	runReopen(t, func(t *testing.T, l *ledger.Ledger, reopen func() *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustCreate(t, l, newGlobal("holder"))
		mustRegister(t, l, newBranch("holder", resourceA, "held"))
		if _, err := l.RegisterBranch(ctx, newBranch("x1", resourceA, "k1"), base.Add(time.Hour)); !errors.Is(err, protocol.ErrTimedOut) {
			t.Fatalf("RegisterBranch past deadline = %v, want %v", err, protocol.ErrTimedOut)
		}
		if _, err := l.RegisterBranch(ctx, newBranch("x1", resourceA, "k2", "held"), base); !errors.Is(err, protocol.ErrLockConflict) {
			t.Fatalf("RegisterBranch(held key) = %v, want a lock conflict", err)
		}
		l = reopen()
		checkLocks(t, "Locks after reopen", mustLocks(t, l, "", 0),
			[]storage.Lock{{Resource: resourceA, Key: "held", XID: "holder", BranchID: 1}})
		if g := mustGet(t, l, "x1"); g.BranchSeq != 0 {
			t.Errorf("BranchSeq(x1) after refused registrations and reopen = %d, want 0", g.BranchSeq)
		}
		mustRegister(t, l, newBranch("x1", resourceA, "k1", "k2"))
	})
}

// TestBeginRegisterBranchAfterReopen: a global created by its first
// registration is stored like any other: it, its branch, its lock and its
// due time survive a reopen; a refused one leaves nothing.
func TestBeginRegisterBranchAfterReopen(t *testing.T) {
	runReopen(t, func(t *testing.T, l *ledger.Ledger, reopen func() *ledger.Ledger) {
		ctx := context.Background()
		if _, _, err := l.BeginRegisterBranch(ctx, newGlobal("lazy"), newBranch("lazy", resourceA, "k1"), base); err != nil {
			t.Fatalf("BeginRegisterBranch = %v", err)
		}
		if _, _, err := l.BeginRegisterBranch(ctx, newGlobal("late"), newBranch("late", resourceA, "k2"), base.Add(time.Hour)); !errors.Is(err, protocol.ErrTimedOut) {
			t.Fatalf("BeginRegisterBranch past deadline = %v, want %v", err, protocol.ErrTimedOut)
		}
		l = reopen()
		want := newGlobal("lazy")
		want.BranchSeq = 1
		checkGlobal(t, "GetGlobal(lazy) after reopen", mustGet(t, l, "lazy"), want)
		if _, err := l.GetGlobal(ctx, "late"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetGlobal(late) after reopen = %v, want %v", err, storage.ErrNotFound)
		}
		checkLocks(t, "Locks after reopen", mustLocks(t, l, "", 0),
			[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "lazy", BranchID: 1}})
		due, err := l.DueGlobals(ctx, base.Add(time.Hour), 0)
		if err != nil || len(due) != 1 || due[0].XID != "lazy" {
			t.Errorf("DueGlobals after reopen = %d globals, %v; want [lazy]", len(due), err)
		}
	})
}

// TestLoadTableCorrupt: stored branches of two globals that both hold one
// row contradict I5, and LoadTable (so ledger.Open) fails with an error
// matching storage.ErrCorrupt that names both globals. Rows that one of
// them released, or that two branches of one global list, load.
func TestLoadTableCorrupt(t *testing.T) {
	accept := func(*storage.Global) error { return nil }
	for _, st := range stores {
		if st.shared {
			continue // its lock rows are taken with the branch; no table is loaded
		}
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := st.open(t)
			add := func(xid string, b *storage.Branch) {
				t.Helper()
				// Straight to the store: no lock table stands in the way.
				if _, _, err := s.AddBranch(ctx, b, newGlobal(xid), accept, storage.Durable); err != nil {
					t.Fatalf("AddBranch(%s) = %v", xid, err)
				}
			}
			add("g1", newBranch("g1", resourceA, "a", "shared"))
			add("g1", newBranch("g1", resourceA, "shared"))
			b := newBranch("g2", resourceA, "shared")
			b.LocksReleased = true
			add("g2", b)
			released := newGlobal("g3")
			released.LocksReleased = true
			if _, _, err := s.AddBranch(ctx, newBranch("g3", resourceA, "shared"), released, accept, storage.Durable); err != nil {
				t.Fatalf("AddBranch(g3) = %v", err)
			}
			add("g4", newBranch("g4", resourceB, "shared"))
			tbl, err := ledger.LoadTable(ctx, s)
			if err != nil {
				t.Fatalf("LoadTable(released and own duplicates) = %v, want nil", err)
			}
			if got := tbl.Len(); got != 3 {
				t.Errorf("LoadTable: %d rows held, want 3", got)
			}
			l := mustOpen(t, s)
			checkLocks(t, "Locks", mustLocks(t, l, "", 0), []storage.Lock{
				{Resource: resourceA, Key: "a", XID: "g1", BranchID: 1},
				{Resource: resourceA, Key: "shared", XID: "g1", BranchID: 1},
				{Resource: resourceB, Key: "shared", XID: "g4", BranchID: 1},
			})

			add("g5", newBranch("g5", resourceA, "other", "shared"))
			if tbl, err := ledger.LoadTable(ctx, s); !errors.Is(err, storage.ErrCorrupt) || tbl != nil {
				t.Errorf("LoadTable(two holders) = %v, %v; want nil, %v", tbl, err, storage.ErrCorrupt)
			} else if msg := err.Error(); !strings.Contains(msg, "g1") || !strings.Contains(msg, "g5") {
				t.Errorf("LoadTable(two holders) = %q, want it to name g1 and g5", msg)
			}
			if l, err := ledger.Open(ctx, s); !errors.Is(err, storage.ErrCorrupt) || l != nil {
				t.Errorf("ledger.Open(two holders) = %v, %v; want nil, %v", l, err, storage.ErrCorrupt)
			}
		})
	}
}
