package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bdb "github.com/dgraph-io/badger/v4"
	"go.uber.org/goleak"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/storetest"
	"github.com/xact-io/xact/tc/ledger"
)

const (
	begin      = xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
	committing = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
	committed  = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
)

// openTest opens a store in a fresh directory, closed when the test ends.
func openTest(tb testing.TB, opts ...Option) *Store {
	tb.Helper()
	return openDir(tb, tb.TempDir(), opts...)
}

func openDir(tb testing.TB, dir string, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		tb.Fatalf("Open(%s) = %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close = %v", err)
		}
	})
	return s
}

// smallTables keeps Badger's memory small and makes memtables rotate
// quickly.
func smallTables(memTable int64) Option {
	return WithBadgerOptions(func(o bdb.Options) bdb.Options {
		return o.WithMemTableSize(memTable).WithValueThreshold(memTable / 16).
			WithBlockCacheSize(1 << 20).WithNumMemtables(2)
	})
}

// withWriteBudget lowers the writes per cleanup or migration transaction.
func withWriteBudget(n int) Option {
	return func(c *config) { c.writeBudget = n }
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store { return openTest(t) })
}

func TestContractDurable(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T) (storage.Store, func() storage.Store) {
		dir := t.TempDir()
		s := openDir(t, dir)
		reopen := func() storage.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			s = openDir(t, dir)
			return s
		}
		return s, reopen
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storage.Store { return openTest(b) })
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	if s2, err := Open(dir); !errors.Is(err, storage.ErrLocked) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second Open(%s) = %v, want %v", dir, err, storage.ErrLocked)
	}
	// The first store is unaffected, and the directory opens again once it
	// is closed.
	ctx := context.Background()
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: begin}, storage.Durable); err != nil {
		t.Fatalf("CreateGlobal after failed second Open = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	s3 := openDir(t, dir)
	if _, err := s3.GetGlobal(ctx, "x1"); err != nil {
		t.Errorf("GetGlobal after reopen = %v, want nil", err)
	}
}

// TestOpenLockedByBadger checks a directory held by a plain Badger
// process (one that does not take the store's own lock file).
func TestOpenLockedByBadger(t *testing.T) {
	dir := t.TempDir()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(1 << 20).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatalf("bdb.Open = %v", err)
	}
	defer db.Close()
	if s, err := Open(dir); !errors.Is(err, storage.ErrLocked) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open(dir held by Badger) = %v, want %v", err, storage.ErrLocked)
	}
}

func TestOpenNotADirectory(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(file); err == nil {
		s.Close()
		t.Fatalf("Open(regular file) = nil error, want one")
	}
}

// TestReopen checks that everything a store holds survives Close and Open:
// globals, branches, locks, the due index and tombstones.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	for i, xid := range []string{"a", "b", "c"} {
		g := &storage.Global{XID: xid, Status: begin, Deadline: now.Add(time.Hour), NextAt: now.Add(time.Duration(i) * time.Second)}
		if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
			t.Fatalf("CreateGlobal(%s) = %v", xid, err)
		}
		if _, err := addBranch(ctx, s, &storage.Branch{XID: xid, Resource: "r", LockKeys: []string{xid + "1", xid + "2"}}); err != nil {
			t.Fatalf("RegisterBranch(%s) = %v", xid, err)
		}
	}
	if _, err := s.UpdateGlobal(ctx, "a", func(g *storage.Global) error {
		g.Status = committing
		g.NextAt = now.Add(time.Minute)
		return nil
	}, storage.Durable); err != nil {
		t.Fatalf("UpdateGlobal = %v", err)
	}
	if err := s.FinishGlobal(ctx, "c", committed, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	s = openDir(t, dir)
	a, err := s.GetGlobal(ctx, "a")
	if err != nil || a.Status != committing || !a.NextAt.Equal(now.Add(time.Minute)) || a.BranchSeq != 1 {
		t.Errorf("GetGlobal(a) after reopen = %+v, %v; want Committing, NextAt +1m, BranchSeq 1", a, err)
	}
	c, err := s.GetGlobal(ctx, "c")
	if err != nil || !c.Finished || c.Status != committed {
		t.Errorf("GetGlobal(c) after reopen = %+v, %v; want a Committed tombstone", c, err)
	}
	due, err := s.DueGlobals(ctx, now.Add(time.Hour), 0)
	if err != nil {
		t.Fatalf("DueGlobals = %v", err)
	}
	var got []string
	for _, g := range due {
		got = append(got, g.XID)
	}
	if want := []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("DueGlobals after reopen = %v, want %v", got, want)
	}
	// The coordinator rebuilds the same locks from the branches.
	lg, err := ledger.Open(ctx, s)
	if err != nil {
		t.Fatalf("ledger.Open = %v", err)
	}
	locks, err := lg.Locks(ctx, "", 0)
	if err != nil {
		t.Fatalf("Locks = %v", err)
	}
	if len(locks) != 4 {
		t.Errorf("len(Locks) after reopen = %d, want 4 (a's and b's)", len(locks))
	}
	_, err = lg.RegisterBranch(ctx, &storage.Branch{XID: "b", Resource: "r", LockKeys: []string{"a1"}}, now)
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) || lc.Holder != "a" {
		t.Errorf("RegisterBranch(b, a's key) after reopen = %v, want a conflict held by a", err)
	}
	if id, err := lg.RegisterBranch(ctx, &storage.Branch{XID: "b", Resource: "r", LockKeys: []string{"new"}}, now); err != nil || id != 2 {
		t.Errorf("RegisterBranch(b) after reopen = %d, %v, want 2, nil", id, err)
	}
}

func TestTombstoneExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t, WithTombstoneRetention(time.Second))
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: begin}, storage.Durable); err != nil {
		t.Fatalf("CreateGlobal = %v", err)
	}
	if err := s.FinishGlobal(ctx, "x1", committed, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	if g, err := s.GetGlobal(ctx, "x1"); err != nil || !g.Finished {
		t.Fatalf("GetGlobal right after finish = %+v, %v, want the tombstone", g, err)
	}
	// Badger's TTL has one-second granularity: the tombstone is gone
	// within two seconds.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.GetGlobal(ctx, "x1")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("GetGlobal = %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("tombstone still there 5s after finish with 1s retention")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The XID can be used again.
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: begin}, storage.Durable); err != nil {
		t.Errorf("CreateGlobal after tombstone expired = %v, want nil", err)
	}
}

// TestCorruptRecords writes undecodable values under each keyspace and
// checks that reads fail with ErrCorrupt instead of panicking.
func TestCorruptRecords(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	garbage := []byte{0x0a, 0xff, 0xff, 0xff} // field 1, bytes, length past the end
	if err := s.db.Update(func(txn *bdb.Txn) error {
		for _, k := range [][]byte{globalKey("g"), tombstoneKey("t"), branchKey("b", 1)} {
			if err := txn.Set(k, garbage); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("writing garbage = %v", err)
	}
	// A due entry pointing at the corrupt global (as loadDue makes for one
	// it cannot read).
	s.due.set("g", time.Unix(1, 0), 0, false)
	calls := []struct {
		name string
		call func() error
	}{
		{"GetGlobal(global)", func() error { _, err := s.GetGlobal(ctx, "g"); return err }},
		{"GetGlobal(tombstone)", func() error { _, err := s.GetGlobal(ctx, "t"); return err }},
		{"UpdateGlobal", func() error {
			_, err := s.UpdateGlobal(ctx, "g", func(*storage.Global) error { return nil }, storage.Durable)
			return err
		}},
		{"AddBranch(global)", func() error {
			_, err := addBranch(ctx, s, &storage.Branch{XID: "g"})
			return err
		}},
		{"FinishGlobal", func() error { return s.FinishGlobal(ctx, "g", committed, storage.Durable) }},
		{"ListGlobals", func() error { _, err := s.ListGlobals(ctx, storage.Filter{}); return err }},
		{"Branches", func() error { _, err := s.Branches(ctx, "b"); return err }},
		{"UpdateBranch", func() error {
			_, err := s.UpdateBranch(ctx, "b", 1, func(*storage.Branch) error { return nil }, storage.Durable)
			return err
		}},
		{"AddBranch(with keys)", func() error {
			_, err := addBranch(ctx, s, &storage.Branch{XID: "g", Resource: "r", LockKeys: []string{"k"}})
			return err
		}},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s over a corrupt record = %v, want %v", c.name, err, ErrCorrupt)
		}
	}
	// A due global whose record is damaged is left out of DueGlobals, and
	// out of the due index: a scan must not stall on it.
	if due, err := s.DueGlobals(ctx, time.Unix(2, 0), 0); err != nil || len(due) != 0 {
		t.Errorf("DueGlobals over a corrupt record = %v, %v; want none, nil", due, err)
	}
	if xids := s.due.due(time.Unix(2, 0), 0); len(xids) != 0 {
		t.Errorf("due index after DueGlobals met a corrupt record = %v, want empty", xids)
	}
}

// TestCleanupInChunks finishes a global with more branches than one
// transaction may delete, leaving another alone.
func TestCleanupInChunks(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, withWriteBudget(3))
	for _, xid := range []string{"f", "r"} {
		if err := s.CreateGlobal(ctx, &storage.Global{XID: xid, Status: begin}, storage.Durable); err != nil {
			t.Fatalf("CreateGlobal = %v", err)
		}
		for b := range 5 {
			var keys []string
			for k := range 4 {
				keys = append(keys, fmt.Sprintf("%s-%d-%d", xid, b, k))
			}
			if _, err := addBranch(ctx, s, &storage.Branch{XID: xid, Resource: "r", LockKeys: keys}); err != nil {
				t.Fatalf("AddBranch = %v", err)
			}
		}
	}
	if err := s.FinishGlobal(ctx, "f", committed, storage.Durable); err != nil {
		t.Fatalf("FinishGlobal = %v", err)
	}
	if got, err := locksOf(ctx, s, ""); err != nil || len(got) != 20 {
		t.Errorf("locks after finishing f = %d, %v; want r's 20", len(got), err)
	}
	if bs, err := s.Branches(ctx, "r"); err != nil || len(bs) != 5 {
		t.Errorf("Branches(r) = %d, %v, want 5", len(bs), err)
	}
	if bs, err := s.Branches(ctx, "f"); err != nil || len(bs) != 0 {
		t.Errorf("Branches(f) = %d, %v, want 0", len(bs), err)
	}
	if g, err := s.GetGlobal(ctx, "f"); err != nil || !g.Finished {
		t.Errorf("GetGlobal(f) = %+v, %v, want a tombstone", g, err)
	}
}

// TestRegisterWriteFails checks what a registration whose write fails
// leaves in the lock table: nothing if its transaction did not commit; its
// locks if it committed and only the sync failed (the caller cannot know
// whether the branch is stored, so its rows stay protected): the store
// reports storage.ErrNotDurable with the branch's id.
func TestRegisterWriteFails(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: begin}, storage.Durable); err != nil {
		t.Fatalf("CreateGlobal = %v", err)
	}
	errDisk := errors.New("EIO")
	s.commit.sync = func() error { return errDisk } // the committer reads it after the next wait's kick

	id, _, err := s.AddBranch(ctx, &storage.Branch{XID: "x1", Resource: "r"}, nil, admitAll, storage.Durable)
	if !errors.Is(err, errDisk) || !errors.Is(err, storage.ErrNotDurable) || id != 1 {
		t.Fatalf("AddBranch with a failing sync = %d, %v; want 1 and %v, %v", id, err, storage.ErrNotDurable, errDisk)
	}
	// Through the ledger, on a fresh store: the rows stay locked.
	s2 := openTest(t)
	for _, xid := range []string{"x1", "x2"} {
		if err := s2.CreateGlobal(ctx, &storage.Global{XID: xid, Status: begin}, storage.Durable); err != nil {
			t.Fatalf("CreateGlobal = %v", err)
		}
	}
	lg := ledger.New(s2, ledger.NewTable())
	s2.commit.sync = func() error { return errDisk }
	_, err = lg.RegisterBranch(ctx, &storage.Branch{XID: "x1", Resource: "r", LockKeys: []string{"k"}}, time.Now())
	if !errors.Is(err, errDisk) {
		t.Fatalf("RegisterBranch with a failing sync = %v, want %v", err, errDisk)
	}
	if err := lg.CheckLocks(ctx, "x2", "r", []string{"k"}); err == nil {
		t.Errorf("CheckLocks(k) after a committed registration whose sync failed = nil, want held by x1")
	}
	// The failure is sticky: the next registration does not commit, and
	// gives its keys back.
	_, err = lg.RegisterBranch(ctx, &storage.Branch{XID: "x2", Resource: "r", LockKeys: []string{"m"}}, time.Now())
	if !errors.Is(err, errDisk) || errors.Is(err, storage.ErrNotDurable) {
		t.Fatalf("RegisterBranch after a failed sync = %v, want %v and not %v", err, errDisk, storage.ErrNotDurable)
	}
	if err := lg.CheckLocks(ctx, "x1", "r", []string{"m"}); err != nil {
		t.Errorf("CheckLocks(m) after a registration that did not commit = %v, want nil", err)
	}
	if locks, err := lg.Locks(ctx, "x2", 0); err != nil || len(locks) != 0 {
		t.Errorf("Locks(x2) = %+v, %v, want none", locks, err)
	}
}

// TestWALRotation writes through several memtable rotations and checks
// that the store followed them and lost nothing.
func TestWALRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, smallTables(1<<20), WithValueLogGC(0, 0))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	first := s.wal.active
	const n = 3000
	reason := strings.Repeat("r", 1000)
	for i := range n {
		g := &storage.Global{XID: fmt.Sprintf("x%05d", i), Status: begin, Reason: reason}
		if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
			t.Fatalf("CreateGlobal(%d) = %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if s.wal.active < first+2 {
		t.Errorf("WAL tracker at file %d after ~3 MB of writes with 1 MB memtables, want >= %d", s.wal.active, first+2)
	}
	s = openDir(t, dir, smallTables(1<<20))
	all, err := s.ListGlobals(ctx, storage.Filter{})
	if err != nil || len(all) != n {
		t.Errorf("ListGlobals after reopen = %d globals, %v, want %d", len(all), err, n)
	}
}

// TestValueLogSync writes a record past Badger's value threshold, which
// Badger puts in the value log, and checks that the store syncs it.
func TestValueLogSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := WithBadgerOptions(func(o bdb.Options) bdb.Options { return o.WithValueThreshold(1 << 10) })
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x1", Status: begin}, storage.Durable); err != nil {
		t.Fatalf("CreateGlobal = %v", err)
	}
	big := bytes.Repeat([]byte{7}, 4<<10)
	if _, err := addBranch(ctx, s, &storage.Branch{XID: "x1", AppData: big}); err != nil {
		t.Fatalf("RegisterBranch = %v", err)
	}
	if s.vlogDirty.Load() {
		t.Errorf("vlogDirty after the big write was acknowledged = true, want false (synced)")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	s = openDir(t, dir, opt)
	bs, err := s.Branches(ctx, "x1")
	if err != nil || len(bs) != 1 || !bytes.Equal(bs[0].AppData, big) {
		t.Errorf("Branches after reopen = %d, %v, want the 4 KiB branch", len(bs), err)
	}
}

// syncBuffer is a bytes.Buffer safe for Badger's concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogger(t *testing.T) {
	var buf syncBuffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := openTest(t, WithLogger(l))
	if err := s.CreateGlobal(context.Background(), &storage.Global{XID: "x"}, storage.Durable); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.Contains(got, "component=badger") {
		t.Errorf("log with WithLogger = %q, want Badger's messages tagged component=badger", got)
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Open(t.TempDir(), WithValueLogGC(time.Millisecond, 0.5))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	ctx := context.Background()
	for i := range 20 {
		if err := s.CreateGlobal(ctx, &storage.Global{XID: fmt.Sprint(i)}, storage.Durable); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // let the GC loop run
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

// TestMissingRecordsAtRunTime: branch records that vanish while the store
// runs (a table block an iterator stops at) are reported by Branches as
// damage, never returned as fewer branches; so are branches whose global
// record vanished.
func TestMissingRecordsAtRunTime(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for _, xid := range []string{"x1", "x2"} {
		if err := s.CreateGlobal(ctx, &storage.Global{XID: xid, Status: begin}, storage.Durable); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := addBranch(ctx, s, &storage.Branch{XID: xid, Resource: "r"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range [][]byte{branchKey("x1", 2), globalKey("x2")} {
		if err := s.db.Update(func(txn *bdb.Txn) error { return txn.Delete(k) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, xid := range []string{"x1", "x2"} {
		if bs, err := s.Branches(ctx, xid); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("Branches(%s) with records missing = %d branches, %v; want %v", xid, len(bs), err, storage.ErrCorrupt)
		}
	}
	// A global with no branch and none registered is fine.
	if err := s.CreateGlobal(ctx, &storage.Global{XID: "x3", Status: begin}, storage.Durable); err != nil {
		t.Fatal(err)
	}
	if bs, err := s.Branches(ctx, "x3"); err != nil || len(bs) != 0 {
		t.Errorf("Branches(x3) = %v, %v; want none", bs, err)
	}
	// The next Open refuses the directory, naming both.
	dir := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), `"x1": branch records 2 missing`) || !strings.Contains(err.Error(), `"x2": branch records without their global record`) {
		t.Errorf("Open after records went missing = %v; want both named", err)
	}
}

// admitAll admits every branch: these tests write records, not
// registrations (the registration rule is tc/ledger's).
func admitAll(*storage.Global) error { return nil }

// addBranch stores b durably, as a registration does once it is admitted.
func addBranch(ctx context.Context, s *Store, b *storage.Branch) (int64, error) {
	id, _, err := s.AddBranch(ctx, b, nil, admitAll, storage.Durable)
	return id, err
}

// locksOf lists the locks (of xid, or all) that a coordinator opening s
// would rebuild from its branches.
func locksOf(ctx context.Context, s *Store, xid string) ([]storage.Lock, error) {
	t, err := ledger.LoadTable(ctx, s)
	if err != nil {
		return nil, err
	}
	return t.Locks(ctx, xid, 0)
}
