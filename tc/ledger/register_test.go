package ledger_test

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
	"github.com/xact-io/xact/tc/ledger"
)

// The registration rule (I4) and the locks registrations take.

// TestRegisterBranch: registered branches get ids 1, 2, ... per global,
// b.ID is set, they are stored as given and in order, BranchSeq follows,
// and branches without keys register too.
func TestRegisterBranch(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		mustCreate(t, l, newGlobal("x1"))
		var want []*storage.Branch
		for i, res := range []string{resourceA, resourceB, resourceA} {
			b := newBranch("x1", res, fmt.Sprintf("k%d", i), fmt.Sprintf("k%d", i+10))
			b.AppData = []byte{byte(i), 0, 0xff}
			b.Reason = "r"
			b.Attempts = i
			in := b.Clone()
			id := mustRegister(t, l, in)
			if got, want := id, int64(i+1); got != want {
				t.Errorf("RegisterBranch #%d = %d, want %d", i+1, got, want)
			}
			if in.ID != id {
				t.Errorf("RegisterBranch #%d set b.ID = %d, want %d", i+1, in.ID, id)
			}
			b.ID = id
			want = append(want, b)
		}
		got := mustBranches(t, l, "x1")
		if len(got) != len(want) {
			t.Fatalf("Branches = %d branches, want %d", len(got), len(want))
		}
		for i := range want {
			checkBranch(t, fmt.Sprintf("Branches[%d]", i), got[i], want[i])
		}
		if g := mustGet(t, l, "x1"); g.BranchSeq != 3 {
			t.Errorf("BranchSeq = %d, want 3", g.BranchSeq)
		}
		// A branch without lock keys (TCC, Saga) registers too.
		if id := mustRegister(t, l, newBranch("x1", resourceB)); id != 4 {
			t.Errorf("RegisterBranch(no keys) = %d, want 4", id)
		}
		// Branch ids are per global.
		mustCreate(t, l, newGlobal("x2"))
		if id := mustRegister(t, l, newBranch("x2", resourceA, "other")); id != 1 {
			t.Errorf("RegisterBranch(first of x2) = %d, want 1", id)
		}
	})
}

// TestRegisterBranchRefused: a registration is refused when its global is
// missing (ErrNotFound), not in Begin (ErrNotBegin) or at or past its
// deadline (ErrTimedOut), and then changes nothing; a zero deadline is
// none.
func TestRegisterBranchRefused(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("begin"))
		notBegin := newGlobal("committing")
		notBegin.Status = committing
		mustCreate(t, l, notBegin)
		deadline := base.Add(testTimeout)
		tests := []struct {
			name string
			xid  string
			now  time.Time
			want error
		}{
			{"missing", "missing", base, storage.ErrNotFound},
			{"not begin", "committing", base, protocol.ErrNotBegin},
			{"at deadline", "begin", deadline, protocol.ErrTimedOut},
			{"past deadline", "begin", deadline.Add(time.Nanosecond), protocol.ErrTimedOut},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := newBranch(tt.xid, resourceA, "k1", "k2")
				id, err := l.RegisterBranch(ctx, b, tt.now)
				if !errors.Is(err, tt.want) || id != 0 {
					t.Errorf("RegisterBranch = %d, %v, want 0, %v", id, err, tt.want)
				}
			})
		}
		// Nothing changed.
		for _, xid := range []string{"begin", "committing"} {
			if g := mustGet(t, l, xid); g.BranchSeq != 0 {
				t.Errorf("BranchSeq(%s) after refusals = %d, want 0", xid, g.BranchSeq)
			}
			if bs := mustBranches(t, l, xid); len(bs) != 0 {
				t.Errorf("Branches(%s) after refusals = %d, want 0", xid, len(bs))
			}
		}
		if ls := mustLocks(t, l, "", 0); len(ls) != 0 {
			t.Errorf("Locks after refusals = %+v, want none", ls)
		}
		// Just before the deadline is fine.
		if _, err := l.RegisterBranch(ctx, newBranch("begin", resourceA, "k1"), deadline.Add(-time.Nanosecond)); err != nil {
			t.Errorf("RegisterBranch(1ns before deadline) = %v, want nil", err)
		}
		// A zero deadline means none.
		noDeadline := newGlobal("nodeadline")
		noDeadline.Deadline = time.Time{}
		mustCreate(t, l, noDeadline)
		if _, err := l.RegisterBranch(ctx, newBranch("nodeadline", resourceA, "k9"), base.Add(1000*time.Hour)); err != nil {
			t.Errorf("RegisterBranch(no deadline) = %v, want nil", err)
		}
	})
}

// TestRegisterBranchOwnKeys: a global takes keys it holds again without a
// conflict; they stay with the branch that took them first, and the
// branch keeps the keys it asked for, as given.
func TestRegisterBranchOwnKeys(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		mustCreate(t, l, newGlobal("x1"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b"))
		// The same global takes its own keys again, plus a new one;
		// duplicate keys within one registration are fine too.
		if id := mustRegister(t, l, newBranch("x1", resourceA, "b", "c", "c", "a")); id != 2 {
			t.Errorf("RegisterBranch(own keys) = %d, want 2", id)
		}
		checkLocks(t, "Locks(x1)", mustLocks(t, l, "x1", 0), []storage.Lock{
			{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
			{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
			{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
		})
		bs := mustBranches(t, l, "x1")
		if got, want := bs[1].LockKeys, []string{"b", "c", "c", "a"}; !slices.Equal(got, want) {
			t.Errorf("Branches[1].LockKeys = %q, want %q", got, want)
		}
	})
}

// TestRegisterBranchLockConflict: a key another global holds refuses the
// whole registration with a *protocol.LockConflictError naming it, and
// nothing is taken or stored; the same key of another resource is another
// row.
func TestRegisterBranchLockConflict(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("x1"))
		mustCreate(t, l, newGlobal("x2"))
		mustRegister(t, l, newBranch("x1", resourceA, "a", "b"))

		_, err := l.RegisterBranch(ctx, newBranch("x2", resourceA, "c", "b", "a"), base)
		checkConflict(t, "RegisterBranch(x2, [c b a])", err,
			&protocol.LockConflictError{Resource: resourceA, Key: "b", Holder: "x1"})
		// Nothing was taken or recorded for x2.
		if ls := mustLocks(t, l, "x2", 0); len(ls) != 0 {
			t.Errorf("Locks(x2) after conflict = %+v, want none", ls)
		}
		if err := l.CheckLocks(ctx, "x3", resourceA, []string{"c"}); err != nil {
			t.Errorf("CheckLocks(c) after conflict = %v, want nil", err)
		}
		if g := mustGet(t, l, "x2"); g.BranchSeq != 0 {
			t.Errorf("BranchSeq(x2) after conflict = %d, want 0", g.BranchSeq)
		}
		if bs := mustBranches(t, l, "x2"); len(bs) != 0 {
			t.Errorf("Branches(x2) after conflict = %d, want 0", len(bs))
		}
		// The same key in another resource is a different row.
		if id := mustRegister(t, l, newBranch("x2", resourceB, "a", "b")); id != 1 {
			t.Errorf("RegisterBranch(x2, other resource) = %d, want 1", id)
		}
		checkLocks(t, "Locks(all)", mustLocks(t, l, "", 0), []storage.Lock{
			{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
			{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
			{Resource: resourceB, Key: "a", XID: "x2", BranchID: 1},
			{Resource: resourceB, Key: "b", XID: "x2", BranchID: 1},
		})
	})
}

// TestRegisterBranchConcurrent races registrations of many globals on
// overlapping keys and checks I5 (a key is held by at most one global) and
// that branch ids are never handed out twice.
func TestRegisterBranchConcurrent(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		const (
			globals    = 8
			perGlobal  = 6
			keyspace   = 12
			keysPerReg = 3
		)
		for g := range globals {
			mustCreate(t, l, newGlobal(fmt.Sprintf("g%d", g)))
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
					id, err := l.RegisterBranch(context.Background(), newBranch(xid, resourceA, keys...), base)
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
		locks := mustLocks(t, l, "", 0)
		seen := map[string]bool{}
		for _, lk := range locks {
			if seen[lk.Key] {
				t.Errorf("I5: key %q listed twice in Locks", lk.Key)
			}
			seen[lk.Key] = true
			if h := holder[lk.Key]; h != lk.XID {
				t.Errorf("Locks: key %q held by %s, want %s", lk.Key, lk.XID, h)
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
			if gl := mustGet(t, l, xid); gl.BranchSeq != int64(len(got)) {
				t.Errorf("BranchSeq(%s) = %d, want %d", xid, gl.BranchSeq, len(got))
			}
			if bs := mustBranches(t, l, xid); len(bs) != len(got) {
				t.Errorf("len(Branches(%s)) = %d, want %d", xid, len(bs), len(got))
			}
		}
		if len(holder) == 0 {
			t.Errorf("no registration succeeded")
		}
	})
}

// TestRegisterBranchRefusedTakesNothing: whatever refuses a registration,
// its keys are free afterwards; a registration its global's state refuses
// reports that, not a lock conflict.
func TestRegisterBranchRefusedTakesNothing(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		notBegin := newGlobal("committing")
		notBegin.Status = committing
		mustCreate(t, l, notBegin)
		mustCreate(t, l, newGlobal("begin"))
		mustCreate(t, l, newGlobal("released"))
		if err := l.ReleaseLocks(ctx, "released"); err != nil {
			t.Fatalf("ReleaseLocks = %v", err)
		}
		mustCreate(t, l, newGlobal("holder"))
		mustRegister(t, l, newBranch("holder", resourceA, "held"))
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
			{"not begin", ctx, "committing", []string{"k1", "k2"}, base, protocol.ErrNotBegin},
			{"locks released", ctx, "released", []string{"k1", "k2"}, base, protocol.ErrNotBegin},
			{"past deadline", ctx, "begin", []string{"k1", "k2"}, base.Add(time.Hour), protocol.ErrTimedOut},
			{"cancelled", cancelled, "begin", []string{"k1", "k2"}, base, context.Canceled},
			{"conflict", ctx, "begin", []string{"k1", "held", "k2"}, base, protocol.ErrLockConflict},
			// Refused by its global's state, even though a key conflicts too.
			{"not begin and conflict", ctx, "committing", []string{"k1", "held"}, base, protocol.ErrNotBegin},
			{"past deadline and conflict", ctx, "begin", []string{"k1", "held"}, base.Add(time.Hour), protocol.ErrTimedOut},
			{"missing and conflict", ctx, "missing", []string{"k1", "held"}, base, storage.ErrNotFound},
		}
		for _, tt := range tests {
			_, err := l.RegisterBranch(tt.ctx, newBranch(tt.xid, resourceA, tt.keys...), tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: RegisterBranch = %v, want %v", tt.name, err, tt.want)
			}
			if err := l.CheckLocks(ctx, "other", resourceA, []string{"k1", "k2"}); err != nil {
				t.Errorf("%s: CheckLocks(k1, k2) after the refusal = %v, want nil", tt.name, err)
			}
			if ls := mustLocks(t, l, tt.xid, 0); len(ls) != 0 {
				t.Errorf("%s: Locks(%s) = %+v, want none", tt.name, tt.xid, ls)
			}
		}
		mustCreate(t, l, newGlobal("next"))
		mustRegister(t, l, newBranch("next", resourceA, "k1", "k2"))
		checkLocks(t, "Locks(all)", mustLocks(t, l, "", 0), []storage.Lock{
			{Resource: resourceA, Key: "held", XID: "holder", BranchID: 1},
			{Resource: resourceA, Key: "k1", XID: "next", BranchID: 1},
			{Resource: resourceA, Key: "k2", XID: "next", BranchID: 1},
		})
	})
}

// TestRegisterBranchRace races two globals for one key, many times:
// exactly one wins, and the other is told who holds it. In every round one
// more global, past its deadline, races too: it never wins, and it is told
// it timed out, not that the key is taken.
func TestRegisterBranchRace(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
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
				mustCreate(t, l, g)
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
					_, errs[j] = l.RegisterBranch(context.Background(), newBranch(xid, resourceA, key), now)
				})
			}
			close(start)
			wg.Wait()
			if !errors.Is(errs[2], protocol.ErrTimedOut) {
				t.Errorf("round %d: RegisterBranch of the global past its deadline = %v, want %v", i, errs[2], protocol.ErrTimedOut)
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
			checkLocks(t, fmt.Sprintf("round %d: Locks(%s)", i, winners[0]), mustLocks(t, l, winners[0], 0),
				[]storage.Lock{{Resource: resourceA, Key: key, XID: winners[0], BranchID: 1}})
		}
	})
}

// TestBeginRegisterBranch: the first registration of a global nobody
// created creates it in the same write, with its lock; later ones just
// register, and keep the stored global as it is.
func TestBeginRegisterBranch(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		g := newGlobal("lazy")
		g.BranchSeq = 7 // ignored: the first branch is 1
		b := newBranch("lazy", resourceA, "k1")
		id, created, err := l.BeginRegisterBranch(ctx, g, b, base)
		if err != nil || id != 1 || !created || b.ID != 1 {
			t.Fatalf("BeginRegisterBranch(new) = %d, %v, %v (b.ID %d); want 1, true, nil", id, created, err, b.ID)
		}
		want := newGlobal("lazy")
		want.BranchSeq = 1
		checkGlobal(t, "GetGlobal(lazy)", mustGet(t, l, "lazy"), want)
		wantB := newBranch("lazy", resourceA, "k1")
		wantB.ID = 1
		if bs := mustBranches(t, l, "lazy"); len(bs) != 1 {
			t.Fatalf("Branches(lazy) = %d branches, want 1", len(bs))
		} else {
			checkBranch(t, "Branches(lazy)[0]", bs[0], wantB)
		}
		checkLocks(t, "Locks(lazy)", mustLocks(t, l, "lazy", 0),
			[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "lazy", BranchID: 1}})
		// The due index knows the created global.
		due, err := l.DueGlobals(ctx, base.Add(time.Hour), 0)
		if err != nil || len(due) != 1 || due[0].XID != "lazy" {
			t.Errorf("DueGlobals after BeginRegisterBranch = %d globals, %v; want [lazy]", len(due), err)
		}

		// A stored global is kept as it is: only the branch is added.
		other := newGlobal("lazy")
		other.Name = "other"
		id, created, err = l.BeginRegisterBranch(ctx, other, newBranch("lazy", resourceB, "k1"), base)
		if err != nil || id != 2 || created {
			t.Fatalf("BeginRegisterBranch(stored) = %d, %v, %v; want 2, false, nil", id, created, err)
		}
		want.BranchSeq = 2
		checkGlobal(t, "GetGlobal(lazy) after a second registration", mustGet(t, l, "lazy"), want)
		if _, err := l.RegisterBranch(ctx, newBranch("lazy", resourceA, "k2"), base); err != nil {
			t.Errorf("RegisterBranch(lazy) = %v, want nil", err)
		}
		if err := l.CreateGlobal(ctx, newGlobal("lazy"), storage.Durable); !errors.Is(err, storage.ErrExists) {
			t.Errorf("CreateGlobal(lazy) = %v, want %v", err, storage.ErrExists)
		}
	})
}

// TestBeginRegisterBranchRefused: a refused registration creates nothing
// and takes no key, whatever refuses it (a conflict, the deadline, a
// tombstone, a global not in Begin, an XID mismatch).
func TestBeginRegisterBranchRefused(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
		ctx := context.Background()
		mustCreate(t, l, newGlobal("holder"))
		mustRegister(t, l, newBranch("holder", resourceA, "held"))
		mustCreate(t, l, newGlobal("done"))
		if err := l.FinishGlobal(ctx, "done", rollbacked, storage.Durable); err != nil {
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
			{"past deadline", newGlobal("g2"), newBranch("g2", resourceA, "k"), base.Add(time.Hour), protocol.ErrTimedOut},
			{"past deadline and conflict", newGlobal("g3"), newBranch("g3", resourceA, "held"), base.Add(time.Hour), protocol.ErrTimedOut},
			{"tombstone", newGlobal("done"), newBranch("done", resourceA, "k"), base, protocol.ErrNotBegin},
			{"tombstone and conflict", newGlobal("done"), newBranch("done", resourceA, "held"), base, protocol.ErrNotBegin},
			{"not in Begin", decided, newBranch("decided", resourceA, "k"), base, protocol.ErrNotBegin},
			{"other xid", newGlobal("g4"), newBranch("g5", resourceA, "k"), base, protocol.ErrInvalidArgument},
			{"empty xid", newGlobal(""), newBranch("", resourceA, "k"), base, protocol.ErrInvalidArgument},
		}
		for _, tt := range tests {
			id, created, err := l.BeginRegisterBranch(ctx, tt.g, tt.b, tt.now)
			if !errors.Is(err, tt.want) || id != 0 || created {
				t.Errorf("%s: BeginRegisterBranch = %d, %v, %v; want 0, false, %v", tt.name, id, created, err, tt.want)
			}
			if tt.g.XID != "done" && tt.g.XID != "" {
				if g, err := l.GetGlobal(ctx, tt.g.XID); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("%s: GetGlobal(%s) = %+v, %v; want %v (nothing created)", tt.name, tt.g.XID, g, err, storage.ErrNotFound)
				}
			}
			if err := l.CheckLocks(ctx, "other", resourceA, []string{"k"}); err != nil {
				t.Errorf("%s: CheckLocks(k) = %v, want nil", tt.name, err)
			}
		}
		if g := mustGet(t, l, "done"); !g.Finished || g.Status != rollbacked {
			t.Errorf("tombstone after BeginRegisterBranch = %+v, want it unchanged", g)
		}
		if bs := mustBranches(t, l, "done"); len(bs) != 0 {
			t.Errorf("Branches(done) = %d branches, want 0", len(bs))
		}
	})
}

// TestBeginRegisterBranchConcurrent: of concurrent first registrations of
// one global, exactly one creates it, branch ids are not repeated, and
// every branch holds its key.
func TestBeginRegisterBranchConcurrent(t *testing.T) {
	run(t, func(t *testing.T, l *ledger.Ledger) {
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
				id, created, err := l.BeginRegisterBranch(context.Background(), newGlobal("lazy"),
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
		if g := mustGet(t, l, "lazy"); g.BranchSeq != n {
			t.Errorf("BranchSeq = %d, want %d", g.BranchSeq, n)
		}
		if got := len(mustLocks(t, l, "lazy", 0)); got != n {
			t.Errorf("len(Locks(lazy)) = %d, want %d", got, n)
		}
	})
}
