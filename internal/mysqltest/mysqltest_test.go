package mysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDBIsEmptyAndPrivate(t *testing.T) {
	a, b := NewDB(t), NewDB(t)
	var nameA, nameB string
	if err := a.QueryRow("SELECT DATABASE()").Scan(&nameA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow("SELECT DATABASE()").Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Fatalf("two NewDB calls share database %q", nameA)
	}
	if _, err := a.Exec("CREATE TABLE t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got, want := n, 0; got != want {
		t.Errorf("tables in a fresh database = %d, want %d", got, want)
	}
	var cs string
	if err := a.QueryRow("SELECT @@character_set_database").Scan(&cs); err != nil {
		t.Fatal(err)
	}
	if got, want := cs, "utf8mb4"; got != want {
		t.Errorf("@@character_set_database = %q, want %q", got, want)
	}
}

func TestConfigIsAdjustable(t *testing.T) {
	cfg := Config(t)
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	db := Open(t, cfg)
	var got time.Time
	if err := db.QueryRow("SELECT CAST(? AS DATETIME)", "2024-01-02 03:04:05").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC); !got.Equal(want) {
		t.Errorf("datetime = %v, want %v", got, want)
	}
}

func TestDBName(t *testing.T) {
	for _, name := range []string{"TestX", "TestX/sub_case#01", "Test" + string(make([]byte, 200))} {
		got := dbName(name)
		if len(got) > 64 {
			t.Errorf("dbName(%q) = %q, longer than 64", name, got)
		}
		if dbName(name) == got {
			t.Errorf("dbName(%q) is not unique per call", name)
		}
	}
}

// TestDetached starts and stops a second, detached server the way
// cmd/mariadb does.
func TestDetached(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := Start(ctx, Options{Dir: dir, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
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
	cfg, err := mysql.ParseDSN(again.DSN())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := mysql.NewConnector(cfg)
	db := sql.OpenDB(c)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := StopDetached(dir, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := Attach(dir); err == nil {
		t.Error("Attach after StopDetached succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "mysql")); err != nil {
		t.Errorf("data directory gone after stop: %v", err)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := binary("xact-no-such-mariadbd")
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("binary(missing) = %v, want ErrNotInstalled", err)
	}
	for _, want := range []string{"make test", EnvDSN} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRemoveStale(t *testing.T) {
	// A pid that cannot be alive: beyond pid_max.
	dead := filepath.Join(os.TempDir(), "xact-mariadb-999999999-test")
	alive := filepath.Join(os.TempDir(), fmt.Sprintf("xact-mariadb-%d-test", os.Getpid()))
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
