package ledger_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/internal/pgtest"
	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/embedded"
	"github.com/xact-io/xact/storage/memory"
	"github.com/xact-io/xact/storage/shareddb"
	"github.com/xact-io/xact/tc/ledger"
)

// Helpers of the ledger tests: the stores they run on, fixtures,
// must-calls and comparisons.

// Statuses used by the tests, shortened.
const (
	begin      = xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN
	committing = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTING
	committed  = xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED
	rollbacked = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED

	registered  = xactpb.BranchStatus_BRANCH_STATUS_REGISTERED
	phaseOneOK  = xactpb.BranchStatus_BRANCH_STATUS_PHASE_ONE_DONE
	resourceA   = "db-a:3306/orders"
	resourceB   = "db-b:3306/stock"
	testTimeout = time.Minute
)

// base is the tests' "now".
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)

// stores are the stores every test runs on. open returns a fresh, empty
// store, closed when the test ends, and a function that closes it and
// opens its data again (for memory, whose data dies with it, the same
// store: a coordinator that restarts while its store lives on).
var stores = []struct {
	name   string
	shared bool // a shared database's store: its own lock manager
	open   func(t *testing.T) (storage.Store, func() storage.Store)
}{
	{"memory", false, func(t *testing.T) (storage.Store, func() storage.Store) {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s, func() storage.Store { return s }
	}},
	{"mariadb", true, func(t *testing.T) (storage.Store, func() storage.Store) {
		return openShared(t, shareddb.MySQL, mysqltest.DSN(t))
	}},
	{"postgres", true, func(t *testing.T) (storage.Store, func() storage.Store) {
		return openShared(t, shareddb.Postgres, pgtest.DSN(t))
	}},
	{"badger", false, func(t *testing.T) (storage.Store, func() storage.Store) {
		dir := t.TempDir()
		s := openBadger(t, dir)
		return s, func() storage.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			s = openBadger(t, dir)
			return s
		}
	}},
}

// openShared opens a shared-database store (its own lock manager) on a
// fresh database; reopening opens a second store on the same database, as
// a restarted or another coordinator does.
func openShared(t *testing.T, d shareddb.Dialect, dsn string) (storage.Store, func() storage.Store) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := shareddb.Migrate(ctx, d, dsn); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	open := func() storage.Store {
		s, err := shareddb.Open(ctx, d, dsn)
		if err != nil {
			t.Fatalf("shareddb.Open = %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open()
	return s, func() storage.Store {
		s.Close()
		s = open()
		return s
	}
}

func TestMain(m *testing.M) { os.Exit(mysqltest.Wrap(pgtest.Wrap(m.Run))()) }

func openBadger(t *testing.T, dir string) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir)
	if err != nil {
		t.Fatalf("embedded.Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	return s
}

func mustOpen(t testing.TB, s storage.Store) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), s)
	if err != nil {
		t.Fatalf("ledger.Open = %v", err)
	}
	return l
}

// run runs fn on a ledger of each store.
func run(t *testing.T, fn func(t *testing.T, l *ledger.Ledger)) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s, _ := st.open(t)
			fn(t, mustOpen(t, s))
		})
	}
}

// runReopen runs fn on a ledger of each store, with a function that
// reopens the store and opens a new ledger of it (which loads its lock
// table from the stored branches).
func runReopen(t *testing.T, fn func(t *testing.T, l *ledger.Ledger, reopen func() *ledger.Ledger)) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s, reopen := st.open(t)
			fn(t, mustOpen(t, s), func() *ledger.Ledger { return mustOpen(t, reopen()) })
		})
	}
}

// newGlobal returns a global in Begin that began at base.
func newGlobal(xid string) *storage.Global {
	return &storage.Global{
		XID:       xid,
		Name:      "order-" + xid,
		Status:    begin,
		Timeout:   testTimeout,
		BeganAt:   base,
		Deadline:  base.Add(testTimeout),
		NextAt:    base.Add(testTimeout),
		UpdatedAt: base,
	}
}

func newBranch(xid, resource string, keys ...string) *storage.Branch {
	return &storage.Branch{
		XID:          xid,
		Resource:     resource,
		Type:         xactpb.BranchType_BRANCH_TYPE_AT,
		Status:       registered,
		LockKeys:     keys,
		AppData:      []byte("app-data"),
		RegisteredAt: base.Add(time.Second),
	}
}

func mustCreate(t testing.TB, l *ledger.Ledger, g *storage.Global) {
	t.Helper()
	if err := l.CreateGlobal(context.Background(), g, storage.Durable); err != nil {
		t.Fatalf("CreateGlobal(%q) = %v, want nil", g.XID, err)
	}
}

func mustGet(t testing.TB, l *ledger.Ledger, xid string) *storage.Global {
	t.Helper()
	g, err := l.GetGlobal(context.Background(), xid)
	if err != nil {
		t.Fatalf("GetGlobal(%q) = %v, want nil", xid, err)
	}
	return g
}

func mustRegister(t testing.TB, l *ledger.Ledger, b *storage.Branch) int64 {
	t.Helper()
	id, err := l.RegisterBranch(context.Background(), b, base)
	if err != nil {
		t.Fatalf("RegisterBranch(%q, %q, %q) = %v, want nil", b.XID, b.Resource, b.LockKeys, err)
	}
	return id
}

func mustBranches(t testing.TB, l *ledger.Ledger, xid string) []*storage.Branch {
	t.Helper()
	bs, err := l.Branches(context.Background(), xid)
	if err != nil {
		t.Fatalf("Branches(%q) = %v, want nil", xid, err)
	}
	return bs
}

func mustLocks(t testing.TB, l *ledger.Ledger, xid string, limit int) []storage.Lock {
	t.Helper()
	ls, err := l.Locks(context.Background(), xid, limit)
	if err != nil {
		t.Fatalf("Locks(%q, %d) = %v, want nil", xid, limit, err)
	}
	return ls
}

// mustUpdateBranch sets a branch's LocksReleased through the ledger.
func mustUpdateBranch(t testing.TB, l *ledger.Ledger, xid string, id int64, released bool) *storage.Branch {
	t.Helper()
	b, err := l.UpdateBranch(context.Background(), xid, id, func(b *storage.Branch) error {
		b.LocksReleased = released
		return nil
	}, storage.Durable)
	if err != nil {
		t.Fatalf("UpdateBranch(%s/%d, LocksReleased = %v) = %v", xid, id, released, err)
	}
	return b
}

// normGlobal drops location and monotonic reading of g's times so that
// reflect.DeepEqual compares instants.
func normGlobal(g *storage.Global) *storage.Global {
	c := g.Clone()
	for _, t := range []*time.Time{&c.BeganAt, &c.Deadline, &c.NextAt, &c.UpdatedAt} {
		*t = t.UTC().Round(0)
	}
	if len(c.History) == 0 {
		c.History = nil
	}
	return c
}

func checkGlobal(t testing.TB, what string, got, want *storage.Global) {
	t.Helper()
	if g, w := normGlobal(got), normGlobal(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

// checkBranch compares branches, their times as instants.
func checkBranch(t testing.TB, what string, got, want *storage.Branch) {
	t.Helper()
	norm := func(b *storage.Branch) *storage.Branch {
		c := b.Clone()
		c.RegisteredAt = c.RegisteredAt.UTC().Round(0)
		if len(c.LockKeys) == 0 {
			c.LockKeys = nil
		}
		if len(c.AppData) == 0 {
			c.AppData = nil
		}
		return c
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func checkLocks(t testing.TB, what string, got, want []storage.Lock) {
	t.Helper()
	sorted := func(ls []storage.Lock) []storage.Lock {
		out := slices.Clone(ls)
		slices.SortFunc(out, func(a, b storage.Lock) int {
			if c := strings.Compare(a.Resource, b.Resource); c != 0 {
				return c
			}
			return strings.Compare(a.Key, b.Key)
		})
		return out
	}
	g, w := sorted(got), sorted(want)
	if len(g) == 0 && len(w) == 0 {
		return
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", what, g, w)
	}
}

func checkConflict(t testing.TB, what string, err error, want *protocol.LockConflictError) {
	t.Helper()
	var lc *protocol.LockConflictError
	if !errors.As(err, &lc) {
		t.Errorf("%s = %v, want *protocol.LockConflictError %+v", what, err, want)
		return
	}
	if !errors.Is(err, protocol.ErrLockConflict) {
		t.Errorf("errors.Is(%s error, protocol.ErrLockConflict) = false, want true", what)
	}
	if *lc != *want {
		t.Errorf("%s conflict = %+v, want %+v", what, *lc, *want)
	}
}
