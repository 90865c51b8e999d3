package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/storage"
)

// The contract for copies, cancelled contexts, Close and relaxed writes.

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
