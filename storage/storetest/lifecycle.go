package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/storage"
)

// The contract for copies, cancelled contexts, Close and relaxed writes.

// testCopies checks that the store never shares memory with its callers:
// not through what it is given, what it returns, what fn or admit see.
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
	res, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { kept = g; return nil }, storage.Durable)
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

	// admit's global is not the stored one.
	b := newBranch("x1", resourceA, "k1")
	if _, _, err := s.AddBranch(ctx, b, nil, func(g *storage.Global) error {
		g.Name = "mutated"
		g.Status = committing
		g.History[0].What = "mutated"
		return nil
	}, storage.Durable); err != nil {
		t.Fatalf("AddBranch = %v", err)
	}
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal after mutating admit's global", mustGet(t, s, "x1"), want)

	wantB := b.Clone()
	b.LockKeys[0] = "mutated"
	b.AppData[0] = 'X'
	bs := mustBranches(t, s, "x1")
	bs[0].LockKeys[0] = "mutated"
	bs[0].AppData[0] = 'X'
	var keptB *storage.Branch
	resB, err := s.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error { keptB = b; return nil }, storage.Durable)
	if err != nil {
		t.Fatalf("UpdateBranch = %v", err)
	}
	keptB.AppData[0] = 'Y'
	resB.LockKeys[0] = "mutated"
	checkBranch(t, "Branches[0] after mutations", mustBranches(t, s, "x1")[0], wantB)

	// The global AddBranch creates is a copy of create.
	create := newGlobal("lazy")
	create.History = []storage.Event{{At: base, What: "a"}}
	wantLazy := create.Clone()
	if _, _, err := s.AddBranch(ctx, newBranch("lazy", resourceA), create, accept, storage.Durable); err != nil {
		t.Fatalf("AddBranch(create) = %v", err)
	}
	create.Name = "mutated"
	create.History[0].What = "mutated"
	wantLazy.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy) after mutating create", mustGet(t, s, "lazy"), wantLazy)
}

// testCancelledContext: a write with a cancelled context returns an error
// matching context.Canceled and changes nothing.
func testCancelledContext(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	mustAdd(t, s, newBranch("x1", resourceA, "k1"))
	wantB := mustBranches(t, s, "x1")[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]error{
		"CreateGlobal": s.CreateGlobal(ctx, newGlobal("x2"), storage.Durable),
		"UpdateGlobal": func() error {
			_, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { g.Attempts = 9; return nil }, storage.Durable)
			return err
		}(),
		"FinishGlobal": s.FinishGlobal(ctx, "x1", committed, storage.Durable),
		"AddBranch": func() error {
			_, _, err := s.AddBranch(ctx, newBranch("x1", resourceA, "k2"), nil, accept, storage.Durable)
			return err
		}(),
		"AddBranch(create)": func() error {
			_, _, err := s.AddBranch(ctx, newBranch("x2", resourceA, "k3"), newGlobal("x2"), accept, storage.Durable)
			return err
		}(),
		"UpdateBranch": func() error {
			_, err := s.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error { b.Attempts = 9; return nil }, storage.Durable)
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
		t.Errorf("GetGlobal(x2) = %v, want %v (its creations were cancelled)", err, storage.ErrNotFound)
	}
	checkBranches(t, "Branches(x1) after cancelled calls", mustBranches(t, s, "x1"), []*storage.Branch{wantB})
}

// testClosed: after Close every method returns storage.ErrClosed, and
// Close may be called again.
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
		"CreateGlobal": s.CreateGlobal(ctx, newGlobal("x2"), storage.Durable),
		"GetGlobal": func() error {
			_, err := s.GetGlobal(ctx, "x1")
			return err
		}(),
		"UpdateGlobal": func() error {
			_, err := s.UpdateGlobal(ctx, "x1", func(*storage.Global) error { return nil }, storage.Durable)
			return err
		}(),
		"FinishGlobal": s.FinishGlobal(ctx, "x1", committed, storage.Durable),
		"ListGlobals": func() error {
			_, err := s.ListGlobals(ctx, storage.Filter{})
			return err
		}(),
		"DueGlobals": func() error {
			_, err := s.DueGlobals(ctx, base, 0)
			return err
		}(),
		"AddBranch": func() error {
			_, _, err := s.AddBranch(ctx, newBranch("x1", resourceA, "k"), nil, accept, storage.Durable)
			return err
		}(),
		"AddBranch(create)": func() error {
			_, _, err := s.AddBranch(ctx, newBranch("x3", resourceA, "k"), newGlobal("x3"), accept, storage.Durable)
			return err
		}(),
		"UpdateBranch": func() error {
			_, err := s.UpdateBranch(ctx, "x1", 1, func(*storage.Branch) error { return nil }, storage.Durable)
			return err
		}(),
		"Branches": func() error {
			_, err := s.Branches(ctx, "x1")
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
	ctx := context.Background()
	const relaxed = storage.Relaxed
	want := newGlobal("r1")
	if err := s.CreateGlobal(ctx, want.Clone(), relaxed); err != nil {
		t.Fatalf("relaxed CreateGlobal: %v", err)
	}
	checkGlobal(t, `GetGlobal("r1") after a relaxed create`, mustGet(t, s, "r1"), want)
	id, _, err := s.AddBranch(ctx, &storage.Branch{XID: "r1", Resource: "db", LockKeys: []string{"k"}}, nil, accept, relaxed)
	if err != nil || id != 1 {
		t.Fatalf("relaxed AddBranch = %d, %v; want 1, nil", id, err)
	}
	if _, err := s.UpdateBranch(ctx, "r1", 1, func(b *storage.Branch) error { b.Status = phaseOneOK; return nil }, relaxed); err != nil {
		t.Fatalf("relaxed UpdateBranch: %v", err)
	}
	if bs := mustBranches(t, s, "r1"); len(bs) != 1 || bs[0].Status != phaseOneOK {
		t.Errorf("Branches(r1) after a relaxed add and update = %+v, want one, %v", bs, phaseOneOK)
	}
	if _, err := s.UpdateGlobal(ctx, "r1", func(g *storage.Global) error { g.Status = committing; return nil }, relaxed); err != nil {
		t.Fatalf("relaxed UpdateGlobal: %v", err)
	}
	if g := mustGet(t, s, "r1"); g.Status != committing || g.BranchSeq != 1 {
		t.Errorf("GetGlobal(r1) after a relaxed update = %+v, want %v with BranchSeq 1", g, committing)
	}
	if err := s.FinishGlobal(ctx, "r1", committed, relaxed); err != nil {
		t.Fatalf("relaxed FinishGlobal: %v", err)
	}
	if g := mustGet(t, s, "r1"); !g.Finished || g.Status != committed {
		t.Errorf("GetGlobal after a relaxed finish = %+v, want the committed tombstone", g)
	}
	if bs := mustBranches(t, s, "r1"); len(bs) != 0 {
		t.Errorf("Branches(r1) after a relaxed finish = %d branches, want 0", len(bs))
	}
	id, created, err := s.AddBranch(ctx, newBranch("r2", resourceA), newGlobal("r2"), accept, relaxed)
	if err != nil || id != 1 || !created {
		t.Fatalf("relaxed AddBranch(create) = %d, %v, %v; want 1, true, nil", id, created, err)
	}
	if g := mustGet(t, s, "r2"); g.BranchSeq != 1 {
		t.Errorf("GetGlobal(r2) after a relaxed AddBranch(create) = BranchSeq %d, want 1", g.BranchSeq)
	}
}
