package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// The contract for globals: create, get, update, finish, list, due.

// testCreateGet: a created global reads back whole (every field, zero
// values, times to the nanosecond), and creating a stored XID again fails
// with ErrExists and changes nothing.
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
	if err := s.CreateGlobal(ctx, other, storage.Durable); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(existing) = %v, want %v", err, storage.ErrExists)
	}
	checkGlobal(t, `GetGlobal("x1") after failed create`, mustGet(t, s, "x1"), want)
}

// testCreateInvalid: a global without an XID is refused.
func testCreateInvalid(t *testing.T, s storage.Store) {
	err := s.CreateGlobal(context.Background(), &storage.Global{XID: ""}, storage.Durable)
	if !errors.Is(err, protocol.ErrInvalidArgument) {
		t.Errorf("CreateGlobal(empty XID) = %v, want %v", err, protocol.ErrInvalidArgument)
	}
}

// testGetNotFound: an unknown XID is ErrNotFound.
func testGetNotFound(t *testing.T, s storage.Store) {
	if g, err := s.GetGlobal(context.Background(), "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(missing) = %v, %v, want %v", g, err, storage.ErrNotFound)
	}
}

// testUpdateGlobal: fn's changes are stored and returned.
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
	}, storage.Durable)
	if err != nil {
		t.Fatalf("UpdateGlobal = %v, want nil", err)
	}
	checkGlobal(t, "UpdateGlobal result", got, want)
	checkGlobal(t, "GetGlobal after UpdateGlobal", mustGet(t, s, "x1"), want)
}

// testUpdateGlobalNotFound: an unknown global is ErrNotFound, and fn is
// not called.
func testUpdateGlobalNotFound(t *testing.T, s storage.Store) {
	called := false
	_, err := s.UpdateGlobal(context.Background(), "missing", func(g *storage.Global) error {
		called = true
		return nil
	}, storage.Durable)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateGlobal(missing) = %v, want %v", err, storage.ErrNotFound)
	}
	if called {
		t.Errorf("UpdateGlobal(missing) called fn, want not called")
	}
}

// testUpdateGlobalFnError: an error from fn aborts the update (the due
// index included) and comes back.
func testUpdateGlobalFnError(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	errBoom := errors.New("boom")
	_, err := s.UpdateGlobal(context.Background(), "x1", func(g *storage.Global) error {
		g.Status = rollbacking
		g.NextAt = base.Add(-time.Hour)
		g.Attempts = 99
		return errBoom
	}, storage.Durable)
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

// testUpdateGlobalProtectedFields: fn cannot change XID, BranchSeq or
// Finished.
func testUpdateGlobalProtectedFields(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustAdd(t, s, newBranch("x1", resourceA, "k1"))
	got, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
		g.XID = "other"
		g.BranchSeq = 0
		g.Finished = true
		g.Name = "renamed"
		return nil
	}, storage.Durable)
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
	if id := mustAdd(t, s, newBranch("x1", resourceA, "k2")); id != 2 {
		t.Errorf("AddBranch after BranchSeq tampering = %d, want 2", id)
	}
}

// testUpdateGlobalConcurrent: concurrent updates of one global lose no
// change.
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
			}, storage.Durable)
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

// testFinishGlobal: finishing replaces the global and its branches by a
// tombstone with the final status, which later calls see as finished.
func testFinishGlobal(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustCreate(t, s, newGlobal("x2"))
	mustAdd(t, s, newBranch("x1", resourceA, "k1", "k2"))
	mustAdd(t, s, newBranch("x1", resourceB, "k1"))
	mustAdd(t, s, newBranch("x2", resourceA, "k3"))
	if _, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error {
		g.Status = committing
		g.NextAt = base.Add(-time.Second)
		return nil
	}, storage.Durable); err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}

	if err := s.FinishGlobal(ctx, "x1", committed, storage.Durable); err != nil {
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
	list, err := s.ListGlobals(ctx, storage.Filter{})
	if err != nil {
		t.Fatalf("ListGlobals = %v", err)
	}
	if got, want := sortedXIDs(list), []string{"x2"}; !slices.Equal(got, want) {
		t.Errorf("ListGlobals after finish = %v, want %v", got, want)
	}
	if got, want := mustDue(t, s, base.Add(time.Hour)), []string{"x2"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after finish = %v, want %v", got, want)
	}
	if _, err := s.UpdateGlobal(ctx, "x1", func(*storage.Global) error { return nil }, storage.Durable); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateGlobal(tombstone) = %v, want %v", err, storage.ErrNotFound)
	}
	if _, err := s.UpdateBranch(ctx, "x1", 1, func(*storage.Branch) error { return nil }, storage.Durable); !errors.Is(err, storage.ErrBranchNotFound) {
		t.Errorf("UpdateBranch(tombstone) = %v, want %v", err, storage.ErrBranchNotFound)
	}
	if id, _, err := s.AddBranch(ctx, newBranch("x1", resourceA, "k9"), nil, accept, storage.Durable); err == nil {
		t.Errorf("AddBranch(tombstone) = %d, nil; want an error", id)
	}
	if err := s.CreateGlobal(ctx, newGlobal("x1"), storage.Durable); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(tombstone) = %v, want %v", err, storage.ErrExists)
	}
	// Finishing again is a no-op: the first final status stands.
	if err := s.FinishGlobal(ctx, "x1", rollbacked, storage.Durable); err != nil {
		t.Errorf("FinishGlobal(tombstone) = %v, want nil", err)
	}
	if g := mustGet(t, s, "x1"); g.Status != committed || !g.Finished {
		t.Errorf("tombstone after second finish = {Status:%v Finished:%v}, want {Status:%v Finished:true}",
			g.Status, g.Finished, committed)
	}
	if bs := mustBranches(t, s, "x1"); len(bs) != 0 {
		t.Errorf("Branches(finished) after the refused AddBranch = %d branches, want 0", len(bs))
	}
	// The other global is untouched.
	if bs := mustBranches(t, s, "x2"); len(bs) != 1 {
		t.Errorf("Branches(x2) = %d branches, want 1", len(bs))
	}
}

// testFinishGlobalNotFound: finishing an unknown global is ErrNotFound.
func testFinishGlobalNotFound(t *testing.T, s storage.Store) {
	if err := s.FinishGlobal(context.Background(), "missing", committed, storage.Durable); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FinishGlobal(missing) = %v, want %v", err, storage.ErrNotFound)
	}
}

// testListGlobals: filters by status and parked, limits, and leaves out
// tombstones.
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
	if err := s.FinishGlobal(ctx, "f", committed, storage.Durable); err != nil {
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

// testDueGlobals: globals due at t come earliest first, limited; a zero
// NextAt is never due, and times before 1970 and far ahead sort right.
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
		}, storage.Durable); err != nil {
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
	if _, err := s.UpdateGlobal(ctx, "b", func(g *storage.Global) error { g.Reason = "x"; return nil }, storage.Durable); err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}
	// Adding a branch rewrites the global (BranchSeq) and keeps it.
	mustAdd(t, s, newBranch("b", resourceA, "k"))
	if got, want := due(base.Add(time.Minute)), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after unrelated updates = %v, want %v", got, want)
	}
	if err := s.FinishGlobal(ctx, "c", rollbacked, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	if got, want := due(base.Add(time.Minute)), []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after finishing c = %v, want %v", got, want)
	}
	// A global created through AddBranch is indexed like a created one; a
	// refused creation indexes nothing.
	d := newGlobal("d")
	d.NextAt = base.Add(-time.Minute)
	if _, _, err := s.AddBranch(ctx, newBranch("d", resourceA), d, accept, storage.Durable); err != nil {
		t.Fatalf("AddBranch(create d) = %v", err)
	}
	e := newGlobal("e")
	e.NextAt = base.Add(-time.Hour)
	if _, _, err := s.AddBranch(ctx, newBranch("e", resourceA), e, func(*storage.Global) error { return errRefused }, storage.Durable); !errors.Is(err, errRefused) {
		t.Fatalf("AddBranch(create e, refused) = %v, want %v", err, errRefused)
	}
	if got, want := due(base.Add(time.Minute)), []string{"d", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after AddBranch created d = %v, want %v", got, want)
	}
}
