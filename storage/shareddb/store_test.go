package shareddb

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/internal/mysqltest"
	"github.com/xact-io/xact/internal/pgtest"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/storage"
	"github.com/xact-io/xact/storage/storetest"
)

func TestMain(m *testing.M) { os.Exit(mysqltest.Wrap(pgtest.Wrap(m.Run))()) }

// backend is a database the store runs on in these tests: a fresh, empty
// database per call.
type backend struct {
	name    string
	dialect Dialect
	dsn     func(t testing.TB) string
}

var backends = []backend{
	{"mariadb", MySQL, mysqltest.DSN},
	{"postgres", Postgres, pgtest.DSN},
}

// openMigrated creates the schema in dsn's database and opens a store on
// it, closed when the test ends.
func openMigrated(t testing.TB, d Dialect, dsn string, opts ...Option) *Store {
	t.Helper()
	ctx := context.Background()
	if _, _, err := Migrate(ctx, d, dsn); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	s, err := Open(ctx, d, dsn, opts...)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storage.Store {
				return openMigrated(t, be.dialect, be.dsn(t))
			})
		})
	}
}

func TestContractDurable(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			storetest.RunDurable(t, func(t *testing.T) (storage.Store, func() storage.Store) {
				dsn := be.dsn(t)
				s := openMigrated(t, be.dialect, dsn)
				return s, func() storage.Store {
					r, err := Open(context.Background(), be.dialect, dsn)
					if err != nil {
						t.Fatalf("reopen = %v", err)
					}
					t.Cleanup(func() { r.Close() })
					return r
				}
			})
		})
	}
}

// TestSchemaVersion: Open refuses a database without the schema, or with
// a version it does not serve, naming the command that fixes it; Migrate
// creates it, is safe to run again, and refuses a newer one.
func TestSchemaVersion(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			dsn := be.dsn(t)
			_, err := Open(ctx, be.dialect, dsn)
			if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "xact sql migrate") {
				t.Fatalf("Open(empty database) = %v, want %v naming `xact sql migrate`", err, ErrSchema)
			}
			from, to, err := Migrate(ctx, be.dialect, dsn)
			if err != nil || from != 0 || to != SchemaVersion {
				t.Fatalf("Migrate(empty) = %d, %d, %v; want 0, %d, nil", from, to, err, SchemaVersion)
			}
			if from, to, err := Migrate(ctx, be.dialect, dsn); err != nil || from != SchemaVersion || to != SchemaVersion {
				t.Fatalf("Migrate again = %d, %d, %v; want %d, %d, nil", from, to, err, SchemaVersion, SchemaVersion)
			}
			s, err := Open(ctx, be.dialect, dsn)
			if err != nil {
				t.Fatalf("Open(migrated) = %v", err)
			}
			s.Close()

			db, err := openDB(be.dialect, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer closeDB(db)
			if err := db.Exec("UPDATE xact_schema SET version = ?", SchemaVersion+1).Error; err != nil {
				t.Fatal(err)
			}
			if _, err := Open(ctx, be.dialect, dsn); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "newer") {
				t.Errorf("Open(newer schema) = %v, want %v (newer)", err, ErrSchema)
			}
			if _, _, err := Migrate(ctx, be.dialect, dsn); !errors.Is(err, ErrSchema) {
				t.Errorf("Migrate(newer schema) = %v, want %v", err, ErrSchema)
			}
		})
	}
}

// TestOpenBadDSN: a database that cannot be reached is a clear error at
// Open, not a store that fails later.
func TestOpenBadDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Open(ctx, MySQL, "nobody:wrong@tcp(127.0.0.1:1)/xact?timeout=2s"); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("Open(unreachable) = %v, want a connect error", err)
	}
	if _, err := Open(ctx, Dialect("oracle"), "x"); err == nil || !strings.Contains(err.Error(), "unknown dialect") {
		t.Errorf("Open(oracle) = %v, want unknown dialect", err)
	}
}

// TestTombstoneExpiry: a tombstone is visible for the retention period,
// then gone: GetGlobal does not find it and the XID can be created again.
func TestTombstoneExpiry(t *testing.T) {
	ctx := context.Background()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
			clock := func() time.Time { return now }
			s := openMigrated(t, be.dialect, be.dsn(t), WithTombstoneRetention(time.Minute), withClock(clock))
			g := &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}
			if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishGlobal(ctx, "x1", xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, storage.Durable); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateGlobal(ctx, g, storage.Durable); !errors.Is(err, storage.ErrExists) {
				t.Errorf("CreateGlobal(tombstoned) = %v, want %v", err, storage.ErrExists)
			}
			now = now.Add(time.Minute)
			if _, err := s.GetGlobal(ctx, "x1"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetGlobal(expired tombstone) = %v, want %v", err, storage.ErrNotFound)
			}
			if err := s.CreateGlobal(ctx, g, storage.Durable); err != nil {
				t.Errorf("CreateGlobal(expired tombstone) = %v, want nil", err)
			}
		})
	}
}

// TestReadOnlyDatabase: a database user that may read but not write gets
// a clear error from every write, and nothing is half-written: a refused
// registration leaves neither its branch nor its global behind.
func TestReadOnlyDatabase(t *testing.T) {
	ctx := context.Background()
	cfg := mysqltest.Config(t)
	admin := mysqltest.Open(t, cfg)
	if _, _, err := Migrate(ctx, MySQL, cfg.FormatDSN()); err != nil {
		t.Fatal(err)
	}
	user := "ro_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))
	if len(user) > 32 {
		user = user[:32]
	}
	for _, q := range []string{
		"CREATE USER IF NOT EXISTS '" + user + "'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT ON `" + cfg.DBName + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
	ro := cfg.Clone()
	ro.User, ro.Passwd = user, "pw"
	s, err := Open(ctx, MySQL, ro.FormatDSN())
	if err != nil {
		t.Fatalf("Open(read-only user) = %v; want it open (reads work)", err)
	}
	defer s.Close()

	g := &storage.Global{XID: "x1", Status: xactpb.GlobalStatus_GLOBAL_STATUS_BEGIN}
	if err := s.CreateGlobal(ctx, g, storage.Durable); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("CreateGlobal as a read-only user = %v, want a permission error", err)
	}
	accept := func(*storage.Global) error { return nil }
	b := &storage.Branch{XID: "x1", Resource: "db", LockKeys: []string{"k"}}
	if _, _, err := s.AddBranch(ctx, b, g, accept, storage.Durable); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("AddBranch as a read-only user = %v, want a permission error", err)
	}
	if _, err := s.Hold(ctx, b, func(ctx context.Context) (int64, error) {
		id, _, err := s.AddBranch(ctx, b, g, accept, storage.Durable)
		return id, err
	}); err == nil {
		t.Errorf("Hold as a read-only user = nil, want an error")
	}
	if _, err := s.GetGlobal(ctx, "x1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetGlobal(x1) after refused writes = %v, want %v (nothing written)", err, storage.ErrNotFound)
	}
	if bs, err := s.Branches(ctx, "x1"); err != nil || len(bs) != 0 {
		t.Errorf("Branches(x1) after refused writes = %d, %v; want none", len(bs), err)
	}
	if locks, err := s.Locks(ctx, "", 0); err != nil || len(locks) != 0 {
		t.Errorf("Locks after refused writes = %v, %v; want none", locks, err)
	}
}
