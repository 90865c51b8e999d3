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

// The contract for branches: registration (also with a lazy Begin) and updates.

func testRegisterBranch(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	var want []*storage.Branch
	for i, res := range []string{resourceA, resourceB, resourceA} {
		b := newBranch("x1", res, fmt.Sprintf("k%d", i), fmt.Sprintf("k%d", i+10))
		b.Type = branchTCC
		b.AppData = []byte{byte(i), 0, 0xff}
		b.Reason = "r"
		b.Attempts = i
		in := b.Clone()
		id := mustRegister(t, s, in)
		if got, want := id, int64(i+1); got != want {
			t.Errorf("RegisterBranch #%d = %d, want %d", i+1, got, want)
		}
		if in.ID != id {
			t.Errorf("RegisterBranch #%d set b.ID = %d, want %d", i+1, in.ID, id)
		}
		b.ID = id
		want = append(want, b)
	}
	got := mustBranches(t, s, "x1")
	if len(got) != len(want) {
		t.Fatalf("Branches = %d branches, want %d", len(got), len(want))
	}
	for i := range want {
		checkBranch(t, fmt.Sprintf("Branches[%d]", i), got[i], want[i])
	}
	if g := mustGet(t, s, "x1"); g.BranchSeq != 3 {
		t.Errorf("BranchSeq = %d, want 3", g.BranchSeq)
	}
	// A branch without lock keys (TCC, Saga) registers too.
	if id := mustRegister(t, s, newBranch("x1", resourceB)); id != 4 {
		t.Errorf("RegisterBranch(no keys) = %d, want 4", id)
	}
	// Branch ids are per global.
	mustCreate(t, s, newGlobal("x2"))
	if id := mustRegister(t, s, newBranch("x2", resourceA, "other")); id != 1 {
		t.Errorf("RegisterBranch(first of x2) = %d, want 1", id)
	}
	// Many branches keep registration order (ids past one byte).
	mustCreate(t, s, newGlobal("x3"))
	for range 300 {
		mustRegister(t, s, newBranch("x3", resourceA))
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
	if bs := mustBranches(t, s, "missing"); len(bs) != 0 {
		t.Errorf("Branches(missing) = %d branches, want 0", len(bs))
	}
}

func testRegisterBranchRefused(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("begin"))
	notBegin := newGlobal("committing")
	notBegin.Status = committing
	mustCreate(t, s, notBegin)
	deadline := base.Add(testTimeout)
	tests := []struct {
		name string
		xid  string
		now  time.Time
		want error
	}{
		{"missing", "missing", base, storage.ErrNotFound},
		{"not begin", "committing", base, storage.ErrNotBegin},
		{"at deadline", "begin", deadline, storage.ErrTimedOut},
		{"past deadline", "begin", deadline.Add(time.Nanosecond), storage.ErrTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBranch(tt.xid, resourceA, "k1", "k2")
			id, err := s.RegisterBranch(ctx, b, tt.now)
			if !errors.Is(err, tt.want) || id != 0 {
				t.Errorf("RegisterBranch = %d, %v, want 0, %v", id, err, tt.want)
			}
		})
	}
	// Nothing changed.
	for _, xid := range []string{"begin", "committing"} {
		if g := mustGet(t, s, xid); g.BranchSeq != 0 {
			t.Errorf("BranchSeq(%s) after refusals = %d, want 0", xid, g.BranchSeq)
		}
		if bs := mustBranches(t, s, xid); len(bs) != 0 {
			t.Errorf("Branches(%s) after refusals = %d, want 0", xid, len(bs))
		}
	}
	if ls := mustLocks(t, s, "", 0); len(ls) != 0 {
		t.Errorf("Locks after refusals = %+v, want none", ls)
	}
	// Just before the deadline is fine.
	if _, err := s.RegisterBranch(ctx, newBranch("begin", resourceA, "k1"), deadline.Add(-time.Nanosecond)); err != nil {
		t.Errorf("RegisterBranch(1ns before deadline) = %v, want nil", err)
	}
	// A zero deadline means none.
	noDeadline := newGlobal("nodeadline")
	noDeadline.Deadline = time.Time{}
	mustCreate(t, s, noDeadline)
	if _, err := s.RegisterBranch(ctx, newBranch("nodeadline", resourceA, "k9"), base.Add(1000*time.Hour)); err != nil {
		t.Errorf("RegisterBranch(no deadline) = %v, want nil", err)
	}
}

func testRegisterBranchOwnKeys(t *testing.T, s storage.Store) {
	mustCreate(t, s, newGlobal("x1"))
	mustRegister(t, s, newBranch("x1", resourceA, "a", "b"))
	// The same global takes its own keys again, plus a new one; duplicate
	// keys within one registration are fine too.
	if id := mustRegister(t, s, newBranch("x1", resourceA, "b", "c", "c", "a")); id != 2 {
		t.Errorf("RegisterBranch(own keys) = %d, want 2", id)
	}
	checkLocks(t, "Locks(x1)", mustLocks(t, s, "x1", 0), []storage.Lock{
		{Resource: resourceA, Key: "a", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "b", XID: "x1", BranchID: 1},
		{Resource: resourceA, Key: "c", XID: "x1", BranchID: 2},
	})
	// The branch keeps the keys it asked for, as given.
	bs := mustBranches(t, s, "x1")
	if got, want := bs[1].LockKeys, []string{"b", "c", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("Branches[1].LockKeys = %q, want %q", got, want)
	}
}

// testRegisterBranchConcurrent races registrations of many globals on
// overlapping keys and checks I5 (a key is held by at most one global) and
// that branch ids are never handed out twice.
func testRegisterBranchConcurrent(t *testing.T, s storage.Store) {
	const (
		globals    = 8
		perGlobal  = 6
		keyspace   = 12
		keysPerReg = 3
	)
	for g := range globals {
		mustCreate(t, s, newGlobal(fmt.Sprintf("g%d", g)))
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
				id, err := s.RegisterBranch(context.Background(), newBranch(xid, resourceA, keys...), base)
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
	locks := mustLocks(t, s, "", 0)
	seen := map[string]bool{}
	for _, l := range locks {
		if seen[l.Key] {
			t.Errorf("I5: key %q listed twice in Locks", l.Key)
		}
		seen[l.Key] = true
		if h := holder[l.Key]; h != l.XID {
			t.Errorf("Locks: key %q held by %s, want %s", l.Key, l.XID, h)
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
		if gl := mustGet(t, s, xid); gl.BranchSeq != int64(len(got)) {
			t.Errorf("BranchSeq(%s) = %d, want %d", xid, gl.BranchSeq, len(got))
		}
		if bs := mustBranches(t, s, xid); len(bs) != len(got) {
			t.Errorf("len(Branches(%s)) = %d, want %d", xid, len(bs), len(got))
		}
	}
	if len(holder) == 0 {
		t.Errorf("no registration succeeded")
	}
}

func testUpdateBranch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("x1"))
	b := newBranch("x1", resourceA, "k1")
	mustRegister(t, s, b)
	mustRegister(t, s, newBranch("x1", resourceB, "k2"))

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
	})
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
	}); !errors.Is(err, errBoom) {
		t.Errorf("UpdateBranch(fn fails) = %v, want %v", err, errBoom)
	}
	checkBranch(t, "branch after failed update", mustBranches(t, s, "x1")[0], want)

	for _, tt := range []struct {
		xid string
		id  int64
	}{{"x1", 3}, {"x1", 0}, {"missing", 1}} {
		if _, err := s.UpdateBranch(ctx, tt.xid, tt.id, func(*storage.Branch) error { return nil }); !errors.Is(err, storage.ErrBranchNotFound) {
			t.Errorf("UpdateBranch(%q, %d) = %v, want %v", tt.xid, tt.id, err, storage.ErrBranchNotFound)
		}
	}
}

// testRegisterBranchRefusedTakesNothing: whatever refuses a registration,
// its keys are free afterwards.
func testRegisterBranchRefusedTakesNothing(t *testing.T, s storage.Store) {
	ctx := context.Background()
	notBegin := newGlobal("committing")
	notBegin.Status = committing
	mustCreate(t, s, notBegin)
	mustCreate(t, s, newGlobal("begin"))
	mustCreate(t, s, newGlobal("released"))
	if err := s.ReleaseLocks(ctx, "released"); err != nil {
		t.Fatalf("ReleaseLocks = %v", err)
	}
	mustCreate(t, s, newGlobal("holder"))
	mustRegister(t, s, newBranch("holder", resourceA, "held"))
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
		{"not begin", ctx, "committing", []string{"k1", "k2"}, base, storage.ErrNotBegin},
		{"locks released", ctx, "released", []string{"k1", "k2"}, base, storage.ErrNotBegin},
		{"past deadline", ctx, "begin", []string{"k1", "k2"}, base.Add(time.Hour), storage.ErrTimedOut},
		{"cancelled", cancelled, "begin", []string{"k1", "k2"}, base, context.Canceled},
		{"conflict", ctx, "begin", []string{"k1", "held", "k2"}, base, protocol.ErrLockConflict},
		// Refused by its global's state, even though a key conflicts too.
		{"not begin and conflict", ctx, "committing", []string{"k1", "held"}, base, storage.ErrNotBegin},
		{"past deadline and conflict", ctx, "begin", []string{"k1", "held"}, base.Add(time.Hour), storage.ErrTimedOut},
	}
	for _, tt := range tests {
		_, err := s.RegisterBranch(tt.ctx, newBranch(tt.xid, resourceA, tt.keys...), tt.now)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: RegisterBranch = %v, want %v", tt.name, err, tt.want)
		}
		if err := s.CheckLocks(ctx, "other", resourceA, []string{"k1", "k2"}); err != nil {
			t.Errorf("%s: CheckLocks(k1, k2) after the refusal = %v, want nil", tt.name, err)
		}
		if ls := mustLocks(t, s, tt.xid, 0); len(ls) != 0 {
			t.Errorf("%s: Locks(%s) = %+v, want none", tt.name, tt.xid, ls)
		}
	}
	mustCreate(t, s, newGlobal("next"))
	mustRegister(t, s, newBranch("next", resourceA, "k1", "k2"))
	checkLocks(t, "Locks(all)", mustLocks(t, s, "", 0), []storage.Lock{
		{Resource: resourceA, Key: "held", XID: "holder", BranchID: 1},
		{Resource: resourceA, Key: "k1", XID: "next", BranchID: 1},
		{Resource: resourceA, Key: "k2", XID: "next", BranchID: 1},
	})
}

// testBeginRegisterBranch: the first registration of a global nobody
// created creates it in the same write; later ones just register.
func testBeginRegisterBranch(t *testing.T, s storage.Store) {
	ctx := context.Background()
	g := newGlobal("lazy")
	g.BranchSeq = 7 // ignored: the first branch is 1
	b := newBranch("lazy", resourceA, "k1")
	id, created, err := s.BeginRegisterBranch(ctx, g, b, base)
	if err != nil || id != 1 || !created || b.ID != 1 {
		t.Fatalf("BeginRegisterBranch(new) = %d, %v, %v (b.ID %d); want 1, true, nil", id, created, err, b.ID)
	}
	want := newGlobal("lazy")
	want.BranchSeq = 1
	checkGlobal(t, "GetGlobal(lazy)", mustGet(t, s, "lazy"), want)
	wantB := newBranch("lazy", resourceA, "k1")
	wantB.ID = 1
	if bs := mustBranches(t, s, "lazy"); len(bs) != 1 {
		t.Fatalf("Branches(lazy) = %d branches, want 1", len(bs))
	} else {
		checkBranch(t, "Branches(lazy)[0]", bs[0], wantB)
	}
	checkLocks(t, "Locks(lazy)", mustLocks(t, s, "lazy", 0),
		[]storage.Lock{{Resource: resourceA, Key: "k1", XID: "lazy", BranchID: 1}})
	// The due index knows the created global.
	due, err := s.DueGlobals(ctx, base.Add(time.Hour), 0)
	if err != nil || !slices.Equal(xids(due), []string{"lazy"}) {
		t.Errorf("DueGlobals after BeginRegisterBranch = %v, %v; want [lazy]", xids(due), err)
	}

	// A stored global is kept as it is: only the branch is added.
	other := newGlobal("lazy")
	other.Name = "other"
	id, created, err = s.BeginRegisterBranch(ctx, other, newBranch("lazy", resourceB, "k1"), base)
	if err != nil || id != 2 || created {
		t.Fatalf("BeginRegisterBranch(stored) = %d, %v, %v; want 2, false, nil", id, created, err)
	}
	want.BranchSeq = 2
	checkGlobal(t, "GetGlobal(lazy) after a second registration", mustGet(t, s, "lazy"), want)
	if _, err := s.RegisterBranch(ctx, newBranch("lazy", resourceA, "k2"), base); err != nil {
		t.Errorf("RegisterBranch(lazy) = %v, want nil", err)
	}
	if err := s.CreateGlobal(ctx, newGlobal("lazy")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGlobal(lazy) = %v, want %v", err, storage.ErrExists)
	}
}

// testBeginRegisterBranchRefused: a refused registration creates nothing.
func testBeginRegisterBranchRefused(t *testing.T, s storage.Store) {
	ctx := context.Background()
	mustCreate(t, s, newGlobal("holder"))
	mustRegister(t, s, newBranch("holder", resourceA, "held"))
	mustCreate(t, s, newGlobal("done"))
	if err := s.FinishGlobal(ctx, "done", rollbacked); err != nil {
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
		{"past deadline", newGlobal("g2"), newBranch("g2", resourceA, "k"), base.Add(time.Hour), storage.ErrTimedOut},
		{"past deadline and conflict", newGlobal("g3"), newBranch("g3", resourceA, "held"), base.Add(time.Hour), storage.ErrTimedOut},
		{"tombstone", newGlobal("done"), newBranch("done", resourceA, "k"), base, storage.ErrNotBegin},
		{"not in Begin", decided, newBranch("decided", resourceA, "k"), base, storage.ErrNotBegin},
		{"other xid", newGlobal("g4"), newBranch("g5", resourceA, "k"), base, protocol.ErrInvalidArgument},
		{"empty xid", newGlobal(""), newBranch("", resourceA, "k"), base, protocol.ErrInvalidArgument},
	}
	for _, tt := range tests {
		id, created, err := s.BeginRegisterBranch(ctx, tt.g, tt.b, tt.now)
		if !errors.Is(err, tt.want) || id != 0 || created {
			t.Errorf("%s: BeginRegisterBranch = %d, %v, %v; want 0, false, %v", tt.name, id, created, err, tt.want)
		}
		if tt.g.XID != "done" && tt.g.XID != "" {
			if g, err := s.GetGlobal(ctx, tt.g.XID); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: GetGlobal(%s) = %+v, %v; want %v (nothing created)", tt.name, tt.g.XID, g, err, storage.ErrNotFound)
			}
		}
		if err := s.CheckLocks(ctx, "other", resourceA, []string{"k"}); err != nil {
			t.Errorf("%s: CheckLocks(k) = %v, want nil", tt.name, err)
		}
	}
	if g := mustGet(t, s, "done"); !g.Finished || g.Status != rollbacked {
		t.Errorf("tombstone after BeginRegisterBranch = %+v, want it unchanged", g)
	}
}

// testBeginRegisterBranchConcurrent: of concurrent first registrations of
// one global, exactly one creates it, and branch ids are not repeated.
func testBeginRegisterBranchConcurrent(t *testing.T, s storage.Store) {
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
			id, created, err := s.BeginRegisterBranch(context.Background(), newGlobal("lazy"),
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
	if g := mustGet(t, s, "lazy"); g.BranchSeq != n {
		t.Errorf("BranchSeq = %d, want %d", g.BranchSeq, n)
	}
	if got := len(mustLocks(t, s, "lazy", 0)); got != n {
		t.Errorf("len(Locks(lazy)) = %d, want %d", got, n)
	}
}
