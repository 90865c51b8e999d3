package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/tc/ledger"
)

// The row locks: checks, listing, key encoding and releases (I5).

// TestReleaseLocks: releasing branches frees their rows for other
// globals, releasing the global frees the rest; branches keep their keys;
// releasing again, or an unknown global, is a no-op.
func TestReleaseLocks(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustCreate(t, l, newGlobal("x2"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b")) // 1
		mustRegister(t, l, newBranch("x1", resourceB, "c"))      // 2
		mustRegister(t, l, newBranch("x1", resourceA, "d"))      // 3
		mustRegister(t, l, newBranch("x2", resourceA, "z"))

		if err := l.ReleaseLocks(ctx, "x1", 1, 3); err != nil {
			t.Fatalf("ReleaseLocks(x1, 1, 3) = %v", err)
		}
		checkLocks(t, "Locks(x1) after releasing 1 and 3", mustLocks(t, l, "x1", 0), []storage.Lock{
			{Resource: resourceB, Key: "c", XID: "x1", BranchID: 2},
		})
		// A released key is free for another global.
		if _, err := l.RegisterBranch(ctx, newBranch("x2", resourceA, "a"), base); err != nil {
			t.Errorf("RegisterBranch(released key) = %v, want nil", err)
		}
		if err := l.ReleaseLocks(ctx, "x1"); err != nil {
			t.Fatalf("ReleaseLocks(x1) = %v", err)
		}
		if ls := mustLocks(t, l, "x1", 0); len(ls) != 0 {
			t.Errorf("Locks(x1) after release all = %+v, want none", ls)
		}
		checkLocks(t, "Locks(x2)", mustLocks(t, l, "x2", 0), []storage.Lock{
			{Resource: resourceA, Key: "a", XID: "x2", BranchID: 2},
			{Resource: resourceA, Key: "z", XID: "x2", BranchID: 1},
		})
		// Branches keep their lock keys; only the locks go.
		if bs := mustBranches(t, l, "x1"); len(bs) != 3 || len(bs[0].LockKeys) != 2 {
			t.Errorf("Branches(x1) after release = %d branches, want 3 with their keys", len(bs))
		}
		// Idempotent.
		for _, xid := range []string{"x1", "missing"} {
			if err := l.ReleaseLocks(ctx, xid); err != nil {
				t.Errorf("ReleaseLocks(%q) again = %v, want nil", xid, err)
			}
		}
		if err := l.ReleaseLocks(ctx, "missing", 1); err != nil {
			t.Errorf("ReleaseLocks(missing, 1) = %v, want nil", err)
		}
	})
}

// TestCheckLocks: CheckLocks reports the first key of the resource that
// another global holds, and nothing for the holder itself, other
// resources or no keys.
func TestCheckLocks(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b"))
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
			err := l.CheckLocks(ctx, tt.xid, tt.resource, tt.keys)
			what := fmt.Sprintf("CheckLocks(%q, %q, %q)", tt.xid, tt.resource, tt.keys)
			if tt.want == nil {
				if err != nil {
					t.Errorf("%s = %v, want nil", what, err)
				}
				continue
			}
			checkConflict(t, what, err, tt.want)
		}
	})
}

// TestLocks: Locks lists every held lock or one global's, attributed to
// branches, within its limit.
func TestLocks(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		mustCreate(t, l, newGlobal("x1"))
		mustCreate(t, l, newGlobal("x2"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b"))
		mustRegister(t, l, newBranch("x1", resourceB, "a"))
		mustRegister(t, l, newBranch("x2", resourceA, "c"))
		x1 := []storage.Lock{
			{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
			{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
			{Resource: resourceB, Key: "a", XID: "x1", BranchID: 2},
		}
		x2 := []storage.Lock{{Resource: resourceA, Key: "c", XID: "x2", BranchID: 1}}
		all := append(slices.Clone(x1), x2...)
		checkLocks(t, "Locks(all)", mustLocks(t, l, "", 0), all)
		checkLocks(t, "Locks(x1)", mustLocks(t, l, "x1", 0), x1)
		checkLocks(t, "Locks(x2)", mustLocks(t, l, "x2", -1), x2)
		checkLocks(t, "Locks(missing)", mustLocks(t, l, "missing", 0), nil)

		for _, tt := range []struct {
			xid   string
			limit int
			from  []storage.Lock
			want  int
		}{{"", 2, all, 2}, {"", 4, all, 4}, {"", 9, all, 4}, {"x1", 1, x1, 1}, {"x1", 2, x1, 2}} {
			got := mustLocks(t, l, tt.xid, tt.limit)
			if len(got) != tt.want {
				t.Errorf("len(Locks(%q, %d)) = %d, want %d", tt.xid, tt.limit, len(got), tt.want)
			}
			for _, lk := range got {
				if !slices.Contains(tt.from, lk) {
					t.Errorf("Locks(%q, %d) returned %+v, not a lock of %+v", tt.xid, tt.limit, lk, tt.from)
				}
			}
		}
	})
}

// TestLockKeyEncoding checks that (resource, key) pairs whose plain
// concatenations coincide are distinct rows, that keys may hold any byte,
// and that XIDs that prefix each other keep their locks apart.
func TestLockKeyEncoding(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
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
			mustCreate(t, l, newGlobal(xid))
			if _, err := l.RegisterBranch(ctx, newBranch(xid, p.resource, p.key), base); err != nil {
				t.Errorf("RegisterBranch(%q, %q) = %v, want nil (distinct row)", p.resource, p.key, err)
			}
		}
		locks := mustLocks(t, l, "", 0)
		if len(locks) != len(pairs) {
			t.Errorf("len(Locks) = %d, want %d", len(locks), len(pairs))
		}
		for i, p := range pairs {
			xid := fmt.Sprintf("x%d", i)
			want := []storage.Lock{{Resource: p.resource, Key: p.key, XID: xid, BranchID: 1}}
			checkLocks(t, fmt.Sprintf("Locks(%s)", xid), mustLocks(t, l, xid, 0), want)
			checkConflict(t, fmt.Sprintf("CheckLocks(%q, %q)", p.resource, p.key),
				l.CheckLocks(ctx, "other", p.resource, []string{p.key}),
				&protocol.LockConflictError{Resource: p.resource, Key: p.key, Holder: xid})
		}
		// XIDs that prefix each other keep their branches and locks apart.
		for _, xid := range []string{"p", "p\x00", "p\x00\x01", "pp"} {
			mustCreate(t, l, newGlobal(xid))
			mustRegister(t, l, newBranch(xid, "prefix", xid))
		}
		for _, xid := range []string{"p", "p\x00", "p\x00\x01", "pp"} {
			bs := mustBranches(t, l, xid)
			if len(bs) != 1 || bs[0].XID != xid {
				t.Errorf("Branches(%q) = %d branches, want 1 of %q", xid, len(bs), xid)
			}
			checkLocks(t, fmt.Sprintf("Locks(%q)", xid), mustLocks(t, l, xid, 0),
				[]storage.Lock{{Resource: "prefix", Key: xid, XID: xid, BranchID: 1}})
		}
		if err := l.ReleaseLocks(ctx, "p"); err != nil {
			t.Fatalf("ReleaseLocks(p) = %v", err)
		}
		if got := len(mustLocks(t, l, "p\x00", 0)); got != 1 {
			t.Errorf("len(Locks(p\\x00)) after ReleaseLocks(p) = %d, want 1", got)
		}
	})
}

// TestReleaseFlags: ReleaseLocks records the release on the branches or
// the global, a released global takes no more branches, and a registered
// branch never starts out released.
func TestReleaseFlags(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b"))
		mustRegister(t, l, newBranch("x1", resourceB, "c"))
		if err := l.ReleaseLocks(ctx, "x1", 1, 7); err != nil { // 7: no such branch
			t.Fatalf("ReleaseLocks(x1, 1, 7) = %v", err)
		}
		bs := mustBranches(t, l, "x1")
		if !bs[0].LocksReleased || bs[1].LocksReleased {
			t.Errorf("Branches(x1) LocksReleased = %v, %v; want true, false", bs[0].LocksReleased, bs[1].LocksReleased)
		}
		if g := mustGet(t, l, "x1"); g.LocksReleased {
			t.Errorf("GetGlobal(x1).LocksReleased after a branch release = true, want false")
		}
		checkLocks(t, "Locks(x1) after releasing branch 1", mustLocks(t, l, "x1", 0),
			[]storage.Lock{{Resource: resourceB, Key: "c", XID: "x1", BranchID: 2}})

		if err := l.ReleaseLocks(ctx, "x1"); err != nil {
			t.Fatalf("ReleaseLocks(x1) = %v", err)
		}
		if g := mustGet(t, l, "x1"); !g.LocksReleased {
			t.Errorf("GetGlobal(x1).LocksReleased after ReleaseLocks(x1) = false, want true")
		}
		if ls := mustLocks(t, l, "", 0); len(ls) != 0 {
			t.Errorf("Locks after releasing x1 = %+v, want none", ls)
		}
		_, err := l.RegisterBranch(ctx, newBranch("x1", resourceA, "d"), base)
		if !errors.Is(err, protocol.ErrNotBegin) {
			t.Errorf("RegisterBranch(x1) after its locks were released = %v, want %v", err, protocol.ErrNotBegin)
		}
		if err := l.CheckLocks(ctx, "x2", resourceA, []string{"d"}); err != nil {
			t.Errorf("CheckLocks(d) after the refused registration = %v, want nil", err)
		}
		// A registered branch never starts out released.
		mustCreate(t, l, newGlobal("x2"))
		b := newBranch("x2", resourceA, "e")
		b.LocksReleased = true
		mustRegister(t, l, b)
		if bs := mustBranches(t, l, "x2"); bs[0].LocksReleased {
			t.Errorf("RegisterBranch kept LocksReleased from its argument")
		}
		checkLocks(t, "Locks(x2)", mustLocks(t, l, "x2", 0),
			[]storage.Lock{{Resource: resourceA, Key: "e", XID: "x2", BranchID: 1}})
	})
}

// TestReleaseThroughUpdates: setting LocksReleased in UpdateGlobal or
// UpdateBranch releases once the write returns, with fn's other changes.
func TestReleaseThroughUpdates(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustCreate(t, l, newGlobal("x2"))
		mustCreate(t, l, newGlobal("other"))
		mustRegister(t, l, newBranch("x1", resourceA, "a"))
		mustRegister(t, l, newBranch("x1", resourceA, "b"))
		mustRegister(t, l, newBranch("x2", resourceA, "c", "d"))

		got, err := l.UpdateBranch(ctx, "x1", 2, func(b *storage.Branch) error {
			b.Status = phaseOneOK
			b.LocksReleased = true
			return nil
		}, storage.Durable)
		if err != nil || !got.LocksReleased || got.Status != phaseOneOK {
			t.Fatalf("UpdateBranch(release) = %+v, %v; want released, PhaseOneDone", got, err)
		}
		checkLocks(t, "Locks(x1) after releasing branch 2 by update", mustLocks(t, l, "x1", 0),
			[]storage.Lock{{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1}})
		mustRegister(t, l, newBranch("other", resourceA, "b"))

		g, err := l.UpdateGlobal(ctx, "x2", func(g *storage.Global) error {
			g.Status = committing
			g.LocksReleased = true
			return nil
		}, storage.Durable)
		if err != nil || !g.LocksReleased || g.Status != committing {
			t.Fatalf("UpdateGlobal(commit and release) = %+v, %v; want Committing, released", g, err)
		}
		if ls := mustLocks(t, l, "x2", 0); len(ls) != 0 {
			t.Errorf("Locks(x2) after UpdateGlobal released them = %+v, want none", ls)
		}
		mustRegister(t, l, newBranch("other", resourceA, "c", "d"))
		checkLocks(t, "Locks(other)", mustLocks(t, l, "other", 0), []storage.Lock{
			{Resource: resourceA, Key: "b", XID: "other", BranchID: 1},
			{Resource: resourceA, Key: "c", XID: "other", BranchID: 2},
			{Resource: resourceA, Key: "d", XID: "other", BranchID: 2},
		})
	})
}

// TestClearReleasedIgnored: clearing LocksReleased through the ledger's
// UpdateGlobal or UpdateBranch is ignored (in the result, in the store
// and across a reload of the lock table), fn's other changes are kept,
// and the rows stay free: a released flag is never cleared (I5).
func TestClearReleasedIgnored(t *testing.T) {
	runReopen(t, func(t *testing.T, l *ledger.Ledger, reopen func() *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustCreate(t, l, newGlobal("x2"))
		mustCreate(t, l, newGlobal("other"))
		mustRegister(t, l, newBranch("x1", resourceA, "a"))
		mustRegister(t, l, newBranch("x1", resourceA, "b"))
		mustRegister(t, l, newBranch("x2", resourceA, "c"))
		mustUpdateBranch(t, l, "x1", 2, true)
		if err := l.ReleaseLocks(ctx, "x2"); err != nil {
			t.Fatalf("ReleaseLocks(x2) = %v", err)
		}
		mustRegister(t, l, newBranch("other", resourceA, "b", "c"))

		b, err := l.UpdateBranch(ctx, "x1", 2, func(b *storage.Branch) error {
			b.LocksReleased = false
			b.Attempts = 5
			return nil
		}, storage.Durable)
		if err != nil || !b.LocksReleased || b.Attempts != 5 {
			t.Errorf("UpdateBranch(clear LocksReleased) = %+v, %v; want it still released, Attempts 5", b, err)
		}
		g, err := l.UpdateGlobal(ctx, "x2", func(g *storage.Global) error {
			g.LocksReleased = false
			g.Attempts = 5
			return nil
		}, storage.Durable)
		if err != nil || !g.LocksReleased || g.Attempts != 5 {
			t.Errorf("UpdateGlobal(clear LocksReleased) = %+v, %v; want it still released, Attempts 5", g, err)
		}
		// Setting it again (still set) releases nothing more.
		mustUpdateBranch(t, l, "x1", 2, true)
		check := func(when string) {
			t.Helper()
			if bs := mustBranches(t, l, "x1"); bs[0].LocksReleased || !bs[1].LocksReleased || bs[1].Attempts != 5 {
				t.Errorf("Branches(x1) LocksReleased %s = %v, %v; want false, true (Attempts 5)", when, bs[0].LocksReleased, bs[1].LocksReleased)
			}
			if g := mustGet(t, l, "x2"); !g.LocksReleased || g.Attempts != 5 {
				t.Errorf("GetGlobal(x2) %s = %+v, want LocksReleased, Attempts 5", when, g)
			}
			checkLocks(t, "Locks(all) "+when, mustLocks(t, l, "", 0), []storage.Lock{
				{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
				{Resource: resourceA, Key: "b", XID: "other", BranchID: 1},
				{Resource: resourceA, Key: "c", XID: "other", BranchID: 1},
			})
			if _, err := l.RegisterBranch(ctx, newBranch("x2", resourceA, "e"), base); !errors.Is(err, protocol.ErrNotBegin) {
				t.Errorf("RegisterBranch(x2) %s = %v, want %v (its locks are released)", when, err, protocol.ErrNotBegin)
			}
		}
		check("after clearing")
		l = reopen()
		check("after reopen")
	})
}

// TestReleasePassesRowOn: a row listed by two branches of a global stays
// held while either is unreleased, attributed to the lowest.
func TestReleasePassesRowOn(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b")) // 1
		mustRegister(t, l, newBranch("x1", resourceA, "b", "c")) // 2
		mustRegister(t, l, newBranch("x1", resourceA, "b"))      // 3
		checkLocks(t, "Locks(x1)", mustLocks(t, l, "x1", 0), []storage.Lock{
			{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
			{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
			{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
		})
		if err := l.ReleaseLocks(ctx, "x1", 1); err != nil {
			t.Fatalf("ReleaseLocks(x1, 1) = %v", err)
		}
		checkLocks(t, "Locks(x1) after releasing branch 1", mustLocks(t, l, "x1", 0), []storage.Lock{
			{Resource: resourceA, Key: "b", XID: "x1", BranchID: 2},
			{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
		})
		checkConflict(t, "CheckLocks(b)", l.CheckLocks(ctx, "x2", resourceA, []string{"a", "b"}),
			&protocol.LockConflictError{Resource: resourceA, Key: "b", Holder: "x1"})
		if err := l.ReleaseLocks(ctx, "x1", 2); err != nil {
			t.Fatalf("ReleaseLocks(x1, 2) = %v", err)
		}
		checkLocks(t, "Locks(x1) after releasing branch 2", mustLocks(t, l, "x1", 0), []storage.Lock{
			{Resource: resourceA, Key: "b", XID: "x1", BranchID: 3},
		})
		if err := l.ReleaseLocks(ctx, "x1", 3); err != nil {
			t.Fatalf("ReleaseLocks(x1, 3) = %v", err)
		}
		if ls := mustLocks(t, l, "", 0); len(ls) != 0 {
			t.Errorf("Locks after releasing every branch = %+v, want none", ls)
		}
	})
}

// TestFinishGlobalReleases: finishing a global (durably or relaxed) frees
// its rows, leaves the others' alone, and its tombstone refuses
// registrations.
func TestFinishGlobalReleases(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		for _, xid := range []string{"x1", "x2", "x3"} {
			mustCreate(t, l, newGlobal(xid))
		}
		mustRegister(t, l, newBranch("x1", resourceA, "k1", "k2"))
		mustRegister(t, l, newBranch("x1", resourceB, "k1"))
		mustRegister(t, l, newBranch("x2", resourceA, "k3"))
		mustRegister(t, l, newBranch("x3", resourceA, "k4"))
		if err := l.FinishGlobal(ctx, "x1", committed, storage.Durable); err != nil {
			t.Fatalf("FinishGlobal(x1) = %v", err)
		}
		if err := l.FinishGlobal(ctx, "x3", rollbacked, storage.Relaxed); err != nil {
			t.Fatalf("FinishGlobal(x3, relaxed) = %v", err)
		}
		for _, xid := range []string{"x1", "x3"} {
			if ls := mustLocks(t, l, xid, 0); len(ls) != 0 {
				t.Errorf("Locks(%s) after finishing = %+v, want none", xid, ls)
			}
		}
		checkLocks(t, "Locks(all) after finish", mustLocks(t, l, "", 0),
			[]storage.Lock{{Resource: resourceA, Key: "k3", XID: "x2", BranchID: 1}})
		if err := l.CheckLocks(ctx, "x4", resourceA, []string{"k1", "k2", "k4"}); err != nil {
			t.Errorf("CheckLocks(keys of finished) = %v, want nil", err)
		}
		if _, err := l.RegisterBranch(ctx, newBranch("x1", resourceA, "k9"), base); !errors.Is(err, protocol.ErrNotBegin) {
			t.Errorf("RegisterBranch(tombstone) = %v, want %v", err, protocol.ErrNotBegin)
		}
		if err := l.CheckLocks(ctx, "x4", resourceA, []string{"k9"}); err != nil {
			t.Errorf("CheckLocks(k9) after the refused registration = %v, want nil", err)
		}
		// Finishing again is a no-op.
		if err := l.FinishGlobal(ctx, "x1", rollbacked, storage.Durable); err != nil {
			t.Errorf("FinishGlobal(tombstone) = %v, want nil", err)
		}
		if err := l.FinishGlobal(ctx, "missing", rollbacked, storage.Durable); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("FinishGlobal(missing) = %v, want %v", err, storage.ErrNotFound)
		}
	})
}

// TestRegisteredKeysAreCopies: the ledger keeps its own copy of a
// registered branch's keys: changing the caller's slice changes no lock.
func TestRegisteredKeysAreCopies(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		mustCreate(t, l, newGlobal("x1"))
		b := newBranch("x1", resourceA, "k1")
		mustRegister(t, l, b)
		b.LockKeys[0] = "mutated"
		checkConflict(t, "CheckLocks(k1) after mutating the registered branch's keys",
			l.CheckLocks(context.Background(), "x2", resourceA, []string{"k1"}),
			&protocol.LockConflictError{Resource: resourceA, Key: "k1", Holder: "x1"})
		checkLocks(t, "Locks(x1)", mustLocks(t, l, "x1", 0),
			[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "x1", BranchID: 1}})
	})
}

// TestCancelledContext: the ledger's writes with a cancelled context fail
// with context.Canceled and change neither the records nor the locks.
func TestCancelledContext(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		mustCreate(t, l, newGlobal("x1"))
		mustRegister(t, l, newBranch("x1", resourceA, "k1"))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := map[string]error{
			"RegisterBranch": func() error {
				_, err := l.RegisterBranch(ctx, newBranch("x1", resourceA, "k2"), base)
				return err
			}(),
			"BeginRegisterBranch": func() error {
				_, _, err := l.BeginRegisterBranch(ctx, newGlobal("x2"), newBranch("x2", resourceA, "k3"), base)
				return err
			}(),
			"ReleaseLocks":         l.ReleaseLocks(ctx, "x1"),
			"ReleaseLocks(branch)": l.ReleaseLocks(ctx, "x1", 1),
			"UpdateGlobal": func() error {
				_, err := l.UpdateGlobal(ctx, "x1", func(g *storage.Global) error { g.LocksReleased = true; return nil }, storage.Durable)
				return err
			}(),
			"UpdateBranch": func() error {
				_, err := l.UpdateBranch(ctx, "x1", 1, func(b *storage.Branch) error { b.LocksReleased = true; return nil }, storage.Durable)
				return err
			}(),
			"FinishGlobal": l.FinishGlobal(ctx, "x1", committed, storage.Durable),
		}
		for name, err := range calls {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s(cancelled ctx) = %v, want %v", name, err, context.Canceled)
			}
		}
		if g := mustGet(t, l, "x1"); g.Finished || g.LocksReleased || g.BranchSeq != 1 {
			t.Errorf("global after cancelled calls = %+v, want unchanged", g)
		}
		if _, err := l.GetGlobal(context.Background(), "x2"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetGlobal(x2) = %v, want %v (its creation was cancelled)", err, storage.ErrNotFound)
		}
		checkLocks(t, "Locks after cancelled calls", mustLocks(t, l, "", 0),
			[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "x1", BranchID: 1}})
	})
}
