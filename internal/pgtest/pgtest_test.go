package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func currentDB(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	if err := db.QueryRow("SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := shared.admin.QueryRow("SELECT COUNT(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func TestDSNIsEmptyAndPrivate(t *testing.T) {
	dsnA, dsnB := DSN(t), DSN(t)
	for _, dsn := range []string{dsnA, dsnB} {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "postgres" || u.Query().Get("sslmode") != "disable" || u.User.Username() == "" {
			t.Errorf("DSN = %q, want postgres://user@host:port/db?sslmode=disable", dsn)
		}
	}
	a, b := Open(t, dsnA), Open(t, dsnB)
	nameA, nameB := currentDB(t, a), currentDB(t, b)
	if nameA == nameB {
		t.Fatalf("two DSN calls share database %q", nameA)
	}
	if _, err := a.Exec("CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec("INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got, want := n, 0; got != want {
		t.Errorf("tables in a fresh database = %d, want %d", got, want)
	}
	if _, err := b.Exec("SELECT * FROM t"); err == nil {
		t.Error("the table created in one database is visible in the other")
	}
	var enc string
	if err := a.QueryRow("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()").Scan(&enc); err != nil {
		t.Fatal(err)
	}
	if got, want := enc, "UTF8"; got != want {
		t.Errorf("encoding = %q, want %q", got, want)
	}
}

func TestNewDB(t *testing.T) {
	db := NewDB(t)
	var s string
	if err := db.QueryRow("SELECT $1::text || '😀'", "é").Scan(&s); err != nil {
		t.Fatal(err)
	}
	if got, want := s, "é😀"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestDropWhenPassed checks that the database of a passing test is dropped
// even with a connection still open.
func TestDropWhenPassed(t *testing.T) {
	var name string
	var leaked *sql.DB
	t.Run("passes", func(t *testing.T) {
		db := NewDB(t)
		name = currentDB(t, db)
		// A pool the test does not close: DROP ... WITH (FORCE) ends it.
		var err error
		leaked, err = sql.Open("pgx", dsnOf(name))
		if err != nil {
			t.Fatal(err)
		}
		if err := leaked.Ping(); err != nil {
			t.Fatal(err)
		}
	})
	defer leaked.Close()
	if exists(t, name) {
		t.Errorf("database %s of a passed test still exists", name)
	}
}

func dsnOf(name string) string {
	u := *shared.base
	u.Path = "/" + name
	return u.String()
}

// failedTB is a test that has failed, with its cleanups run by hand.
type failedTB struct {
	testing.TB
	cleanups []func()
}

func (f *failedTB) Failed() bool        { return true }
func (f *failedTB) Cleanup(fn func())   { f.cleanups = append(f.cleanups, fn) }
func (f *failedTB) Logf(string, ...any) {}

func TestKeepWhenFailed(t *testing.T) {
	f := &failedTB{TB: t}
	dsn := DSN(f)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	if !exists(t, name) {
		t.Fatalf("database %s of a failed test was dropped", name)
	}
	if _, err := shared.admin.Exec("DROP DATABASE " + quote(name)); err != nil {
		t.Fatal(err)
	}
}

func TestDBName(t *testing.T) {
	for _, name := range []string{"TestX", "TestX/sub_case#01", "Test" + string(make([]byte, 200))} {
		got := dbName(name)
		if len(got) > 63 {
			t.Errorf("dbName(%q) = %q, longer than 63", name, got)
		}
		if dbName(name) == got {
			t.Errorf("dbName(%q) is not unique per call", name)
		}
	}
}

func TestParseEnvDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:5/":                   "postgres://u:p@h:5/postgres",
		"postgres://u@h:5?sslmode=disable":      "postgres://u@h:5/postgres?sslmode=disable",
		"postgresql://u@h:5/admin?sslmode=omit": "postgresql://u@h:5/admin?sslmode=omit",
	} {
		u, err := parseEnvDSN(in)
		if err != nil {
			t.Errorf("parseEnvDSN(%q) = %v", in, err)
			continue
		}
		if got := u.String(); got != want {
			t.Errorf("parseEnvDSN(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"host=h port=5 user=u", "mysql://u@h/", "postgres:///db"} {
		if _, err := parseEnvDSN(in); err == nil {
			t.Errorf("parseEnvDSN(%q) = nil error, want one", in)
		}
	}
}

// TestDetached starts and stops a second, detached server the way
// cmd/postgres does.
func TestDetached(t *testing.T) {
	// Not t.TempDir: as root, the server's user must reach the directory.
	dir, err := os.MkdirTemp("", "xact-pgtest-detached.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	start := time.Now()
	srv, err := Start(ctx, Options{Dir: dir, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initdb and start: %v", time.Since(start))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = StopDetached(dir, 30*time.Second)
		}
	})
	again, err := Attach(dir)
	if err != nil {
		t.Fatalf("Attach(%s) = %v", dir, err)
	}
	if got, want := again.Port(), srv.Port(); got != want {
		t.Errorf("Attach port = %d, want %d", got, want)
	}
	db, err := sql.Open("pgx", again.DSN())
	if err != nil {
		t.Fatal(err)
	}
	var fsync, sync string
	if err := db.QueryRow("SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &sync); err != nil {
		t.Fatal(err)
	}
	if fsync != "on" || sync != "off" {
		t.Errorf("fsync, synchronous_commit = %s, %s; want on, off", fsync, sync)
	}
	db.Close()
	if err := StopDetached(dir, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := Attach(dir); err == nil {
		t.Error("Attach after StopDetached succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, dataDir, "PG_VERSION")); err != nil {
		t.Errorf("data directory gone after stop: %v", err)
	}

	// A restart reuses the data directory, durable this time.
	start = time.Now()
	srv, err = Start(ctx, Options{Dir: dir, Detach: true, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restart: %v", time.Since(start))
	stopped = false
	db, err = sql.Open("pgx", srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("SELECT current_setting('synchronous_commit')").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != "on" {
		t.Errorf("Durable: synchronous_commit = %s, want on", sync)
	}
}

func TestFindBin(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "16", "notaversion"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"postgres", "initdb"} {
			if v == "16" && n == "initdb" {
				continue // incomplete: skipped
			}
			if err := os.WriteFile(filepath.Join(bin, n), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := findBin(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin"); got != want {
		t.Errorf("findBin = %s, want %s", got, want)
	}
	if got, err := findBin(filepath.Join(root, "none"), filepath.Join(root, "9.6", "bin")); err != nil || got != filepath.Join(root, "9.6", "bin") {
		t.Errorf("findBin from PATH = %s, %v", got, err)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := findBin(t.TempDir(), "")
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("findBin(empty) = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"make test", "postgresql", EnvDSN} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRemoveStale(t *testing.T) {
	// A pid that cannot be alive: beyond pid_max.
	dead := filepath.Join(os.TempDir(), stalePrefix+"999999999-test")
	alive := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-test", stalePrefix, os.Getpid()))
	for _, d := range []string{dead, alive} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dead); os.RemoveAll(alive) })
	removeStale()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("stale directory %s not removed", dead)
	}
	if _, err := os.Stat(alive); err != nil {
		t.Errorf("live directory %s removed: %v", alive, err)
	}
}

// TestUnreachableDirAsRoot checks the message when root starts a server in
// a directory the server's user cannot reach (t.TempDir is mode 0700).
func TestUnreachableDirAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: the server runs as this user, who reaches every directory it can create")
		return
	}
	dir := filepath.Join(t.TempDir(), "srv")
	_, err := Start(context.Background(), Options{Dir: dir})
	if err == nil {
		t.Fatal("Start in a directory below a mode 0700 one succeeded as root")
	}
	if !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("Start = %v, want an error saying the server's user cannot reach the directory", err)
	}
}
