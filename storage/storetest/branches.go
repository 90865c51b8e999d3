package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// The contract for branches: AddBranch (its ids, its admit, its lazily
// created global) and UpdateBranch.

// errRefused is what the suite's refusing admits return (wrapped).
var errRefused = errors.New("storetest: refused by admit")

// refuse is an admit that refuses every global.
func refuse(g *storage.Global) error { return fmt.Errorf("%s: %w", g.XID, errRefused) }

// testAddBranch: branches get ids 1, 2, ... per global in the order they
// are added, b.ID is set, BranchSeq follows, and Branches returns them
// whole in that order (also past one byte of ids, also without keys).
func testAddBranch(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	var want []*storage.Branch
	for i, res := range []string{resourceA, resourceB, resourceA} {
		b := newBranch("x1", res, fmt.Sprintf("k%d", i), fmt.Sprintf("k%d", i+10))
		b.Type = branchTCC
		b.AppData = []byte{byte(i), 0, 0xff}
		b.Reason = "r"
		b.Attempts = i
		in := b.Clone()
		id := mustAdd(t, s, in)
		if got, want := id, int64(i+1); got != want {
			t.Errorf("AddBranch #%d = %d, want %d", i+1, got, want)
		}
		if in.ID != id {
			t.Errorf("AddBranch #%d set b.ID = %d, want %d", i+1, in.ID, id)
		}
		b.ID = id
		want = append(want, b)
	}
	checkBranches(t, "Branches(x1)", mustBranches(t, s, "x1"), want)
	if g := mustGet(t, s, "x1"); g.BranchSeq != 3 {
		t.Errorf("BranchSeq = %d, want 3", g.BranchSeq)
	}
	// A branch without lock keys (TCC, Saga) is added too.
	if id := mustAdd(t, s, newBranch("x1", resourceB)); id != 4 {
		t.Errorf("AddBranch(no keys) = %d, want 4", id)
	}
	if bs := mustBranches(t, s, "x1"); len(bs) != 4 || len(bs[3].LockKeys) != 0 {
		t.Errorf("Branches(x1) = %d branches, want 4, the last without keys", len(bs))
	}
	// Branch ids are per global.
	mustCreate(t, s, newGlobal("x2"))
	if id := mustAdd(t, s, newBranch("x2", resourceA, "other")); id != 1 {
		t.Errorf("AddBranch(first of x2) = %d, want 1", id)
	}
	// Many branches keep their order (ids past one byte).
	mustCreate(t, s, newGlobal("x3"))
	for range 300 {
		mustAdd(t, s, newBranch("x3", resourceA))
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
	if g := mustGet(t, s, "x3"); g.BranchSeq != 300 {
		t.Errorf("BranchSeq(x3) = %d, want 300", g.BranchSeq)
	}
	if bs := mustBranches(t, s, "missing"); len(bs) != 0 {
		t.Errorf("Branches(missing) = %d branches, want 0", len(bs))
	}
}

// testAddBranchLockKeys: a branch keeps its resource and lock keys exactly
// as given (order, duplicates, empty keys, any byte), and globals whose
// XIDs prefix each other keep their branches apart.
func testAddBranchLockKeys(t *testing.T, s storage.Store) {
	tests := []struct {
		resource string
		keys     []string
	}{
		{"ab", []string{"c"}},
		{"a", []string{"bc"}},
		{"a\x00", []string{"bc", "\x00bc"}},
		{"a\x00\x01", []string{"x", "\x00\x01x"}},
		{"", []string{"abc", ""}},
		{"abc", []string{""}},
		{"r", []string{"\xff\xfe\x00", "\x00", "\xff"}},
		{resourceA, []string{"b", "c", "c", "a", "b"}},
		{resourceA, []string{"k\n1", "k,1", "k 1", "ключ"}},
	}
	mustCreate(t, s, newGlobal("x1"))
	var want []*storage.Branch
	for i, tt := range tests {
		b := newBranch("x1", tt.resource, tt.keys...)
		b.ID = mustAdd(t, s, b.Clone())
		if b.ID != int64(i+1) {
			t.Errorf("AddBranch(%q, %q) = %d, want %d", tt.resource, tt.keys, b.ID, i+1)
		}
		want = append(want, b)
	}
	bs := mustBranches(t, s, "x1")
	checkBranches(t, "Branches(x1)", bs, want)
	for i, b := range bs {
		if !slices.Equal(b.LockKeys, tests[i].keys) || b.Resource != tests[i].resource {
			t.Errorf("Branches(x1)[%d] = %q %q, want %q %q", i, b.Resource, b.LockKeys, tests[i].resource, tests[i].keys)
		}
	}
	prefixes := []string{"p", "p\x00", "p\x00\x01", "pp", "p\xff"}
	for _, xid := range prefixes {
		mustCreate(t, s, newGlobal(xid))
		mustAdd(t, s, newBranch(xid, "prefix", xid))
	}
	for _, xid := range prefixes {
		bs := mustBranches(t, s, xid)
		if len(bs) != 1 || bs[0].XID != xid || bs[0].ID != 1 || !slices.Equal(bs[0].LockKeys, []string{xid}) {
			t.Errorf("Branches(%q) = %+v, want one branch 1 of %q with key %q", xid, bs, xid, xid)
		}
	}
}

// testAddBranchRefused: when admit refuses, nothing changes (no branch, no
// id used, no global created) and admit's error comes back, matchable with
// errors.Is.
func testAddBranchRefused(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	mustAdd(t, s, newBranch("x1", resourceA, "k1"))
	before := mustGet(t, s, "x1")
	for _, create := range []*storage.Global{nil, newGlobal("x1")} {
		b := newBranch("x1", resourceA, "k2")
		id, created, err := s.AddBranch(ctx, b, create, refuse, storage.Durable)
		if !errors.Is(err, errRefused) || id != 0 || created || b.ID != 0 {
			t.Errorf("AddBranch(refused, create %v) = %d, %v, %v (b.ID %d); want 0, false, %v",
				create != nil, id, created, err, b.ID, errRefused)
		}
	}
	checkGlobal(t, "GetGlobal(x1) after refusals", mustGet(t, s, "x1"), before)
	if bs := mustBranches(t, s, "x1"); len(bs) != 1 {
		t.Errorf("Branches(x1) after refusals = %d branches, want 1", len(bs))
	}
	// The refusals used no id.
	if id := mustAdd(t, s, newBranch("x1", resourceA, "k2")); id != 2 {
		t.Errorf("AddBranch after refusals = %d, want 2", id)
	}
	// Whatever error admit returns comes back.
	errOwn := &protocol.LockConflictError{Resource: resourceA, Key: "k", Holder: "other"}
	_, _, err := s.AddBranch(ctx, newBranch("x1", resourceA), nil, func(*storage.Global) error { return errOwn }, storage.Durable)
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc != errOwn || !errors.Is(err, protocol.ErrLockConflict) {
		t.Errorf("AddBranch(admit returns %v) = %v, want it back", errOwn, err)
	}
	// A refused creation creates nothing.
	if _, _, err := s.AddBranch(ctx, newBranch("lazy", resourceA, "k"), newGlobal("lazy"), refuse, storage.Durable); !errors.Is(err, errRefused) {
		t.Errorf("AddBranch(create lazy, refused) = %v, want %v", err, errRefused)
	}
	if g, err := s.GetGlobal(ctx, "lazy"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(lazy) after a refused creation = %+v, %v; want %v", g, err, storage.ErrNotFound)
	}
	if bs := mustBranches(t, s, "lazy"); len(bs) != 0 {
		t.Errorf("Branches(lazy) after a refused creation = %d branches, want 0", len(bs))
	}
	list, err := s.ListGlobals(ctx, storage.Filter{})
	if err != nil || !slices.Equal(xids(list), []string{"x1"}) {
		t.Errorf("ListGlobals after a refused creation = %v, %v; want [x1]", xids(list), err)
	}
}

// testAddBranchAdmitSees: admit is given the stored global as it is before
// the branch is added (create, if given, is ignored), a finished global's
// tombstone (Finished set; even if admit accepts it no branch is stored),
// or the global to be created with BranchSeq 0 and Finished false.
func testAddBranchAdmitSees(t *testing.T, s storage.Store) {
	ctx := context.Background()
	add := func(b *storage.Branch, create *storage.Global) (seen *storage.Global, id int64, created bool, err error) {
		t.Helper()
		id, created, err = s.AddBranch(ctx, b, create, func(g *storage.Global) error {
			seen = g.Clone()
			return nil
		}, storage.Durable)
		if seen == nil && err == nil {
			t.Errorf("AddBranch(%s) = nil without calling admit", b.XID)
		}
		return seen, id, created, err
	}

	stored := newGlobal("stored")
	stored.Status = committing
	stored.Parked = true
	stored.Reason = "why"
	stored.Attempts = 2
	stored.History = []storage.Event{{At: base, What: "e"}}
	mustCreate(t, s, stored)
	mustAdd(t, s, newBranch("stored", resourceA, "k"))
	stored.BranchSeq = 1
	other := newGlobal("stored")
	other.Name = "other"
	seen, id, created, err := add(newBranch("stored", resourceB), other)
	if err != nil || id != 2 || created {
		t.Errorf("AddBranch(stored) = %d, %v, %v; want 2, false, nil", id, created, err)
	}
	checkGlobal(t, "admit's global (stored)", seen, stored)

	mustCreate(t, s, newGlobal("done"))
	mustAdd(t, s, newBranch("done", resourceA, "k"))
	if err := s.FinishGlobal(ctx, "done", rollbacked, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	tomb := mustGet(t, s, "done")
	for _, create := range []*storage.Global{nil, newGlobal("done")} {
		seen, id, created, err := add(newBranch("done", resourceA, "k2"), create)
		if err == nil || id != 0 || created {
			t.Errorf("AddBranch(tombstone, admit accepts, create %v) = %d, %v, %v; want 0, false, an error", create != nil, id, created, err)
		}
		if seen == nil || !seen.Finished || seen.Status != rollbacked || seen.XID != "done" {
			t.Errorf("admit's global (tombstone, create %v) = %+v, want the tombstone (Finished, %v)", create != nil, seen, rollbacked)
		}
	}
	checkGlobal(t, "GetGlobal(done) after AddBranch", mustGet(t, s, "done"), tomb)
	if bs := mustBranches(t, s, "done"); len(bs) != 0 {
		t.Errorf("Branches(done) = %d branches, want 0 (never with a tombstone)", len(bs))
	}

	create := newGlobal("lazy")
	create.BranchSeq = 7
	create.Finished = true
	create.Attempts = 1
	seen, id, created, err = add(newBranch("lazy", resourceA, "k"), create)
	if err != nil || id != 1 || !created {
		t.Errorf("AddBranch(create) = %d, %v, %v; want 1, true, nil", id, created, err)
	}
	want := newGlobal("lazy")
	want.Attempts = 1
	checkGlobal(t, "admit's global (create)", seen, want)
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy)", mustGet(t, s, "lazy"), want)
}

// testAddBranchNotFound: with no global, no tombstone and no create,
// AddBranch is ErrNotFound, admit is not called and nothing is stored.
func testAddBranchNotFound(t *testing.T, s storage.Store) {
	ctx := context.Background()
	called := false
	b := newBranch("missing", resourceA, "k")
	id, created, err := s.AddBranch(ctx, b, nil, func(*storage.Global) error { called = true; return nil }, storage.Durable)
	if !errors.Is(err, storage.ErrNotFound) || id != 0 || created || b.ID != 0 {
		t.Errorf("AddBranch(missing) = %d, %v, %v (b.ID %d); want 0, false, %v", id, created, err, b.ID, storage.ErrNotFound)
	}
	if called {
		t.Errorf("AddBranch(missing) called admit, want not called")
	}
	if _, err := s.GetGlobal(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(missing) = %v, want %v", err, storage.ErrNotFound)
	}
	if bs := mustBranches(t, s, "missing"); len(bs) != 0 {
		t.Errorf("Branches(missing) = %d branches, want 0", len(bs))
	}
}

// testAddBranchCreate: a global nobody created is created in the same
// write as its first branch; a stored global is kept as it is (create is
// ignored); create must name the branch's global.
func testAddBranchCreate(t *testing.T, s storage.Store) {
	ctx := context.Background()
	g := newGlobal("lazy")
	b := newBranch("lazy", resourceA, "k1")
	id, created, err := s.AddBranch(ctx, b, g, accept, storage.Durable)
	if err != nil || id != 1 || !created || b.ID != 1 {
		t.Fatalf("AddBranch(create) = %d, %v, %v (b.ID %d); want 1, true, nil", id, created, err, b.ID)
	}
	want := newGlobal("lazy")
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy)", mustGet(t, s, "lazy"), want)
	wantB := newBranch("lazy", resourceA, "k1")
	wantB.ID = 1
	checkBranches(t, "Branches(lazy)", mustBranches(t, s, "lazy"), []*storage.Branch{wantB})
	if got := mustDue(t, s, base.Add(testTimeout)); !slices.Equal(got, []string{"lazy"}) {
		t.Errorf("DueGlobals after AddBranch created lazy = %v, want [lazy]", got)
	}

	other := newGlobal("lazy")
	other.Name = "other"
	other.Status = committing
	id, created, err = s.AddBranch(ctx, newBranch("lazy", resourceB, "k1"), other, accept, storage.Durable)
	if err != nil || id != 2 || created {
		t.Fatalf("AddBranch(stored, create) = %d, %v, %v; want 2, false, nil", id, created, err)
	}
	want.BranchSeq = 2
	checkGlobal(t, "GetGlobal(lazy) after a second AddBranch", mustGet(t, s, "lazy"), want)
	if id := mustAdd(t, s, newBranch("lazy", resourceA, "k2")); id != 3 {
		t.Errorf("AddBranch(lazy) = %d, want 3", id)
	}
	if err := s.CreateGlobal(ctx, newGlobal("lazy"), storage.Durable); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(lazy) = %v, want %v", err, storage.ErrExists)
	}

	for _, tt := range []struct{ create, branch string }{{"g1", "g2"}, {"", ""}, {"", "g3"}, {"lazy", "g4"}, {"g5", "lazy"}} {
		called := false
		id, created, err := s.AddBranch(ctx, newBranch(tt.branch, resourceA, "k"), newGlobal(tt.create),
			func(*storage.Global) error { called = true; return nil }, storage.Durable)
		if !errors.Is(err, protocol.ErrInvalidArgument) || id != 0 || created || called {
			t.Errorf("AddBranch(branch of %q, create %q) = %d, %v, %v (admit called %v); want 0, false, %v, not called",
				tt.branch, tt.create, id, created, err, called, protocol.ErrInvalidArgument)
		}
		for _, xid := range []string{tt.create, tt.branch} {
			if xid == "lazy" || xid == "" {
				continue
			}
			if _, err := s.GetGlobal(ctx, xid); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetGlobal(%q) after an invalid AddBranch = %v, want %v", xid, err, storage.ErrNotFound)
			}
		}
	}
	if g := mustGet(t, s, "lazy"); g.BranchSeq != 3 {
		t.Errorf("BranchSeq(lazy) after invalid AddBranch calls = %d, want 3", g.BranchSeq)
	}
}

// testAddBranchConcurrent: concurrent AddBranch calls on a few globals,
// some refused, hand out each global's ids 1..n without gaps or
// duplicates, and store exactly the admitted branches.
func testAddBranchConcurrent(t *testing.T, s storage.Store) {
	const (
		globals   = 4
		perGlobal = 24
	)
	for g := range globals {
		mustCreate(t, s, newGlobal(fmt.Sprintf("g%d", g)))
	}
	type result struct {
		xid string
		id  int64
		err error
	}
	results := make(chan result, globals*perGlobal)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range globals {
		for r := range perGlobal {
			wg.Go(func() {
				<-start
				xid := fmt.Sprintf("g%d", g)
				admit := accept
				if r%3 == 2 {
					admit = refuse
				}
				b := newBranch(xid, resourceA, fmt.Sprintf("k%d", r))
				b.Reason = fmt.Sprintf("r%d", r)
				id, _, err := s.AddBranch(context.Background(), b, nil, admit, storage.Durable)
				if err == nil && b.ID != id {
					err = fmt.Errorf("b.ID = %d, want %d", b.ID, id)
				}
				results <- result{xid, id, err}
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)

	ids := map[string][]int64{}
	refused := 0
	for r := range results {
		switch {
		case errors.Is(r.err, errRefused):
			refused++
		case r.err != nil:
			t.Errorf("AddBranch(%s) = %v, want nil or refused", r.xid, r.err)
		default:
			ids[r.xid] = append(ids[r.xid], r.id)
		}
	}
	if want := globals * (perGlobal / 3); refused != want {
		t.Errorf("%d AddBranch calls refused, want %d", refused, want)
	}
	for g := range globals {
		xid := fmt.Sprintf("g%d", g)
		got := ids[xid]
		slices.Sort(got)
		n := perGlobal - perGlobal/3
		if len(got) != n || got[0] != 1 || got[n-1] != int64(n) || len(slices.Compact(slices.Clone(got))) != n {
			t.Errorf("branch ids of %s = %v, want 1..%d without gaps or duplicates", xid, got, n)
		}
		if gl := mustGet(t, s, xid); gl.BranchSeq != int64(n) {
			t.Errorf("BranchSeq(%s) = %d, want %d", xid, gl.BranchSeq, n)
		}
		bs := mustBranches(t, s, xid)
		if len(bs) != n {
			t.Errorf("len(Branches(%s)) = %d, want %d", xid, len(bs), n)
		}
		for i, b := range bs {
			if b.ID != int64(i+1) || b.XID != xid {
				t.Errorf("Branches(%s)[%d] = %s/%d, want %s/%d", xid, i, b.XID, b.ID, xid, i+1)
			}
			var r int
			if _, err := fmt.Sscanf(b.Reason, "r%d", &r); err != nil || r%3 == 2 {
				t.Errorf("Branches(%s)[%d] is a refused branch (%q)", xid, i, b.Reason)
			}
		}
	}
}

// testAddBranchConcurrentCreate: of concurrent AddBranch calls that all
// create one global, exactly one reports created, and the ids are 1..n.
func testAddBranchConcurrentCreate(t *testing.T, s storage.Store) {
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
			id, created, err := s.AddBranch(context.Background(), newBranch("lazy", resourceA, fmt.Sprintf("k%d", i)),
				newGlobal("lazy"), accept, storage.Durable)
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
			t.Errorf("AddBranch(create) = %v, want nil", r.err)
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
	if bs := mustBranches(t, s, "lazy"); len(bs) != n {
		t.Errorf("len(Branches(lazy)) = %d, want %d", len(bs), n)
	}
}

// testAddBranchAtomic: admit decides inside AddBranch's atomic write, so
// a concurrent write that makes admit refuse (a decision by UpdateGlobal,
// a FinishGlobal) is ordered against every AddBranch: the branches stored
// are exactly those added before it.
func testAddBranchAtomic(t *testing.T, s storage.Store) {
	const (
		adders  = 8
		maxAdds = 5000 // per adder: far more than run before the decision
	)
	ctx := context.Background()
	inBegin := func(g *storage.Global) error {
		if g.Finished || g.Status != begin {
			return errRefused
		}
		return nil
	}
	// race runs adders that add branches to xid until they are refused,
	// and runs decide once the first branch is stored. It returns how many
	// branches were added.
	race := func(xid string, decide func() error) int64 {
		t.Helper()
		mustCreate(t, s, newGlobal(xid))
		var added atomic.Int64
		var stop atomic.Bool // decide failed: nothing will refuse
		first := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for range adders {
			wg.Go(func() {
				for range maxAdds {
					if stop.Load() {
						return
					}
					_, _, err := s.AddBranch(ctx, newBranch(xid, resourceA), nil, inBegin, storage.Durable)
					if errors.Is(err, errRefused) {
						return
					}
					if err != nil {
						t.Errorf("AddBranch(%s) = %v, want nil or refused", xid, err)
						return
					}
					added.Add(1)
					once.Do(func() { close(first) })
				}
				t.Errorf("AddBranch(%s) still admitted after %d branches, want it refused once decided", xid, maxAdds)
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-first:
			if err := decide(); err != nil {
				t.Errorf("deciding %s = %v", xid, err)
				stop.Store(true)
			}
		case <-done:
			t.Errorf("no AddBranch(%s) succeeded", xid)
		}
		<-done
		return added.Load()
	}

	var decided *storage.Global
	added := race("decided", func() (err error) {
		decided, err = s.UpdateGlobal(ctx, "decided", func(g *storage.Global) error {
			g.Status = committing
			return nil
		}, storage.Durable)
		return err
	})
	if decided != nil && decided.BranchSeq != added {
		t.Errorf("BranchSeq when decided = %d, want %d (every branch added)", decided.BranchSeq, added)
	}
	if g := mustGet(t, s, "decided"); g.BranchSeq != added || g.Status != committing {
		t.Errorf("GetGlobal(decided) = BranchSeq %d, %v; want %d, %v", g.BranchSeq, g.Status, added, committing)
	}
	if bs := mustBranches(t, s, "decided"); int64(len(bs)) != added {
		t.Errorf("len(Branches(decided)) = %d, want %d", len(bs), added)
	}

	race("finished", func() error {
		return s.FinishGlobal(ctx, "finished", rollbacked, storage.Durable)
	})
	if g := mustGet(t, s, "finished"); !g.Finished || g.Status != rollbacked {
		t.Errorf("GetGlobal(finished) = %+v, want the tombstone", g)
	}
	if bs := mustBranches(t, s, "finished"); len(bs) != 0 {
		t.Errorf("Branches(finished) = %d branches, want 0", len(bs))
	}
}

// testUpdateBranch: fn's changes to one branch are stored and returned,
// except to XID and ID; an error from fn changes nothing; an unknown
// branch is ErrBranchNotFound.
func testUpdateBranch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	b := newBranch("x1", resourceA, "k1")
	mustAdd(t, s, b)
	mustAdd(t, s, newBranch("x1", resourceB, "k2"))

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
	}, storage.Durable)
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
	}, storage.Durable); !errors.Is(err, errBoom) {
		t.Errorf("UpdateBranch(fn fails) = %v, want %v", err, errBoom)
	}
	checkBranch(t, "branch after failed update", mustBranches(t, s, "x1")[0], want)

	for _, tt := range []struct {
		xid string
		id  int64
	}{{"x1", 3}, {"x1", 0}, {"missing", 1}} {
		if _, err := s.UpdateBranch(ctx, tt.xid, tt.id, func(*storage.Branch) error { return nil }, storage.Durable); !errors.Is(err, storage.ErrBranchNotFound) {
			t.Errorf("UpdateBranch(%q, %d) = %v, want %v", tt.xid, tt.id, err, storage.ErrBranchNotFound)
		}
	}
}

// testLocksReleasedIsAField: a store keeps LocksReleased as it is given,
// like any other field: CreateGlobal, AddBranch, UpdateGlobal and
// UpdateBranch store it set or clear, and a global with it set still takes
// the branches admit accepts. (What it means is the ledger's business.)
func testLocksReleasedIsAField(t *testing.T, s storage.Store) {
	ctx := context.Background()
	released := newGlobal("released")
	released.LocksReleased = true
	mustCreate(t, s, released)
	if g := mustGet(t, s, "released"); !g.LocksReleased {
		t.Errorf("GetGlobal(released).LocksReleased = false, want true as created")
	}
	var seen *storage.Global
	b := newBranch("released", resourceA, "k")
	b.LocksReleased = true
	if _, _, err := s.AddBranch(ctx, b, nil, func(g *storage.Global) error { seen = g.Clone(); return nil }, storage.Durable); err != nil {
		t.Fatalf("AddBranch(released) = %v, want nil", err)
	}
	if seen == nil || !seen.LocksReleased {
		t.Errorf("admit's global = %+v, want LocksReleased set", seen)
	}
	if g := mustGet(t, s, "released"); !g.LocksReleased || g.BranchSeq != 1 {
		t.Errorf("GetGlobal(released) after AddBranch = %+v, want LocksReleased, BranchSeq 1", g)
	}
	mustAdd(t, s, newBranch("released", resourceA, "k"))
	if bs := mustBranches(t, s, "released"); len(bs) != 2 || !bs[0].LocksReleased || bs[1].LocksReleased {
		t.Errorf("Branches(released) = %+v, want two, LocksReleased as added (true, false)", bs)
	}

	lazy := newGlobal("lazy")
	lazy.LocksReleased = true
	if _, _, err := s.AddBranch(ctx, newBranch("lazy", resourceA), lazy, accept, storage.Durable); err != nil {
		t.Fatalf("AddBranch(create lazy) = %v", err)
	}
	if g := mustGet(t, s, "lazy"); !g.LocksReleased {
		t.Errorf("GetGlobal(lazy).LocksReleased = false, want true as created")
	}

	mustCreate(t, s, newGlobal("x1"))
	mustAdd(t, s, newBranch("x1", resourceA, "k"))
	for _, set := range []bool{true, false, true, false} {
		g, err := s.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { g.LocksReleased = set; return nil }, storage.Durable)
		if err != nil || g.LocksReleased != set || mustGet(t, s, "x1").LocksReleased != set {
			t.Errorf("UpdateGlobal(LocksReleased = %v) = %+v, %v; want it stored", set, g, err)
		}
		b, err := s.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error { b.LocksReleased = set; return nil }, storage.Durable)
		if err != nil || b.LocksReleased != set || mustBranches(t, s, "x1")[0].LocksReleased != set {
			t.Errorf("UpdateBranch(LocksReleased = %v) = %+v, %v; want it stored", set, b, err)
		}
	}
}
