package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xact-io/xact/storage"
)

// RunDurable runs the part of the contract that only a durable store
// keeps: what it holds survives Close and a new open of the same data.
// open returns a fresh, empty store and a function that closes that store
// and opens its data again; both stores must be closed when the test ends.
func RunDurable(t *testing.T, open func(t *testing.T) (storage.Store, func() storage.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store, reopen func() storage.Store)
	}{
		{"RecordsSurviveReopen", testRecordsSurviveReopen},
		{"RefusedAddBranchAfterReopen", testRefusedAddBranchAfterReopen},
		{"AddBranchCreateAfterReopen", testAddBranchCreateAfterReopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, reopen := open(t)
			tt.fn(t, s, reopen)
		})
	}
}

// testRecordsSurviveReopen: globals, tombstones and branches come back
// whole after a reopen, with their LocksReleased flags (set and cleared),
// BranchSeq (ids go on from it) and due times.
func testRecordsSurviveReopen(t *testing.T, s storage.Store, reopen func() storage.Store) {
	ctx := context.Background()
	x1 := newGlobal("x1")
	x1.History = []storage.Event{{At: base, What: "begun"}}
	x1.Attempts = 2
	x1.Reason = "why"
	mustCreate(t, s, x1.Clone())
	var branches []*storage.Branch
	for i, res := range []string{resourceA, resourceB, resourceA} {
		b := newBranch("x1", res, "k", "\x00k\xff", "k")
		b.Type = branchTCC
		b.AppData = []byte{byte(i), 0, 0xff}
		b.ID = mustAdd(t, s, b.Clone())
		branches = append(branches, b)
	}
	// Released flags: branch 1 set, branch 2 set and cleared again, the
	// global set.
	for _, u := range []struct {
		id  int64
		set bool
	}{{1, true}, {2, true}, {2, false}} {
		if _, err := s.UpdateBranch(ctx, "x1", u.id, func(b *storage.Branch) error { b.LocksReleased = u.set; return nil }, storage.Durable); err != nil {
			t.Fatalf("UpdateBranch(%d) = %v", u.id, err)
		}
	}
	branches[0].LocksReleased = true
	if _, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
		g.LocksReleased = true
		g.Status = committing
		return nil
	}, storage.Durable); err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}
	x1.LocksReleased = true
	x1.Status = committing
	x1.BranchSeq = 3

	// x2 had its flag set and cleared; x3 is finished.
	mustCreate(t, s, newGlobal("x2"))
	mustAdd(t, s, newBranch("x2", resourceA, "k"))
	for _, set := range []bool{true, false} {
		if _, err := s.UpdateGlobal(ctx, "x2", func(g *storage.Global) error { g.LocksReleased = set; return nil }, storage.Durable); err != nil {
			t.Fatalf("UpdateGlobal(x2) = %v", err)
		}
	}
	x2 := newGlobal("x2")
	x2.BranchSeq = 1
	mustCreate(t, s, newGlobal("x3"))
	mustAdd(t, s, newBranch("x3", resourceA, "k"))
	if err := s.FinishGlobal(ctx, "x3", rollbacked, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}

	check := func(when string) {
		t.Helper()
		checkGlobal(t, "GetGlobal(x1) "+when, mustGet(t, s, "x1"), x1)
		checkGlobal(t, "GetGlobal(x2) "+when, mustGet(t, s, "x2"), x2)
		checkBranches(t, "Branches(x1) "+when, mustBranches(t, s, "x1"), branches)
		if g := mustGet(t, s, "x3"); !g.Finished || g.Status != rollbacked {
			t.Errorf("GetGlobal(x3) %s = %+v, want the tombstone", when, g)
		}
		if bs := mustBranches(t, s, "x3"); len(bs) != 0 {
			t.Errorf("Branches(x3) %s = %d branches, want 0", when, len(bs))
		}
		if got, want := slices.Sorted(slices.Values(mustDue(t, s, base.Add(time.Hour)))), []string{"x1", "x2"}; !slices.Equal(got, want) {
			t.Errorf("DueGlobals %s = %v, want %v", when, got, want)
		}
	}
	check("before reopen")
	s = reopen()
	check("after reopen")

	// Ids go on from BranchSeq; the tombstone still refuses.
	b := newBranch("x1", resourceA, "k4")
	if id := mustAdd(t, s, b.Clone()); id != 4 {
		t.Errorf("AddBranch(x1) after reopen = %d, want 4", id)
	}
	if id, _, err := s.AddBranch(ctx, newBranch("x3", resourceA), nil, accept, storage.Durable); err == nil {
		t.Errorf("AddBranch(tombstone) after reopen = %d, nil; want an error", id)
	}
	if err := s.CreateGlobal(ctx, newGlobal("x3"), storage.Durable); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(tombstone) after reopen = %v, want %v", err, storage.ErrExists)
	}
	b.ID = 4
	branches = append(branches, b)
	x1.BranchSeq = 4
	s = reopen()
	check("after the second reopen")
}

// testRefusedAddBranchAfterReopen: a refused AddBranch leaves nothing that
// a reopen could bring back.
func testRefusedAddBranchAfterReopen(t *testing.T, s storage.Store, reopen func() storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	for _, create := range []*storage.Global{nil, newGlobal("x1")} {
		if _, _, err := s.AddBranch(ctx, newBranch("x1", resourceA, "k1"), create, refuse, storage.Durable); !errors.Is(err, errRefused) {
			t.Fatalf("AddBranch(refused) = %v, want %v", err, errRefused)
		}
	}
	if _, _, err := s.AddBranch(ctx, newBranch("x2", resourceA, "k1"), newGlobal("x2"), refuse, storage.Durable); !errors.Is(err, errRefused) {
		t.Fatalf("AddBranch(create x2, refused) = %v, want %v", err, errRefused)
	}
	s = reopen()
	if g := mustGet(t, s, "x1"); g.BranchSeq != 0 {
		t.Errorf("BranchSeq(x1) after refusals and reopen = %d, want 0", g.BranchSeq)
	}
	if bs := mustBranches(t, s, "x1"); len(bs) != 0 {
		t.Errorf("Branches(x1) after refusals and reopen = %d branches, want 0", len(bs))
	}
	if _, err := s.GetGlobal(ctx, "x2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(x2) after a refused creation and reopen = %v, want %v", err, storage.ErrNotFound)
	}
	if id := mustAdd(t, s, newBranch("x1", resourceA, "k1", "k2")); id != 1 {
		t.Errorf("AddBranch(x1) after reopen = %d, want 1", id)
	}
}

// testAddBranchCreateAfterReopen: a global created by AddBranch is stored
// like any other: it, its branch and its due time survive a reopen, after
// which AddBranch with create finds it stored; and AddBranch creates
// after a reopen too.
func testAddBranchCreateAfterReopen(t *testing.T, s storage.Store, reopen func() storage.Store) {
	ctx := context.Background()
	if _, _, err := s.AddBranch(ctx, newBranch("lazy", resourceA, "k1"), newGlobal("lazy"), accept, storage.Durable); err != nil {
		t.Fatalf("AddBranch(create lazy) = %v", err)
	}
	s = reopen()
	want := newGlobal("lazy")
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy) after reopen", mustGet(t, s, "lazy"), want)
	wantB := newBranch("lazy", resourceA, "k1")
	wantB.ID = 1
	checkBranches(t, "Branches(lazy) after reopen", mustBranches(t, s, "lazy"), []*storage.Branch{wantB})
	if got := mustDue(t, s, base.Add(time.Hour)); !slices.Equal(got, []string{"lazy"}) {
		t.Errorf("DueGlobals after reopen = %v, want [lazy]", got)
	}
	other := newGlobal("lazy")
	other.Name = "other"
	id, created, err := s.AddBranch(ctx, newBranch("lazy", resourceA, "k2"), other, accept, storage.Durable)
	if err != nil || id != 2 || created {
		t.Errorf("AddBranch(create lazy) after reopen = %d, %v, %v; want 2, false, nil", id, created, err)
	}
	id, created, err = s.AddBranch(ctx, newBranch("new", resourceA, "k3"), newGlobal("new"), accept, storage.Durable)
	if err != nil || id != 1 || !created {
		t.Errorf("AddBranch(create new) after reopen = %d, %v, %v; want 1, true, nil", id, created, err)
	}
	s = reopen()
	want.BranchSeq = 2
	checkGlobal(t, "GetGlobal(lazy) after the second reopen", mustGet(t, s, "lazy"), want)
	want = newGlobal("new")
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(new) after the second reopen", mustGet(t, s, "new"), want)
	if got := slices.Sorted(slices.Values(mustDue(t, s, base.Add(time.Hour)))); !slices.Equal(got, []string{"lazy", "new"}) {
		t.Errorf("DueGlobals after the second reopen = %v, want [lazy new]", got)
	}
}
