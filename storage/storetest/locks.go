package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
)

// The contract for row locks: conflicts, releases, listing, key encoding.

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
