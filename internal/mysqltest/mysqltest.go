package mysqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// EnvDSN names the environment variable with the DSN of a server to use
// instead of starting a private one. `make test` starts one server for the
// whole run and sets it.
const EnvDSN = "XACT_TEST_MYSQL_DSN"

// The process-wide server: started on first use, stopped by Main.
var (
	mainCalled atomic.Bool
	shared     struct {
		once  sync.Once
		err   error
		base  *mysql.Config // root config with no database selected
		admin *sql.DB       // creates and drops test databases
		srv   *Server       // nil when EnvDSN is used
		dir   string        // temporary directory of srv
	}
)

// Main runs the tests of a package and stops the private server, if one was
// started, before the process exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { mysqltest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Wrap(m.Run)())
}

// Wrap returns run (a test binary's m.Run, or another helper's Wrap) with
// this package's server available to it and stopped after it, for a
// TestMain that needs more than one database:
//
//	func TestMain(m *testing.M) { os.Exit(mysqltest.Wrap(pgtest.Wrap(m.Run))()) }
func Wrap(run func() int) func() int {
	return func() int {
		mainCalled.Store(true)
		code := run()
		if err := shutdown(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		return code
	}
}

func shutdown() error {
	if shared.admin != nil {
		_ = shared.admin.Close()
	}
	if shared.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	err := shared.srv.Stop(ctx)
	if rmErr := os.RemoveAll(shared.dir); err == nil && rmErr != nil {
		err = fmt.Errorf("mysqltest: %w", rmErr)
	}
	return err
}

// removeStale removes the directories of private servers whose test
// process died without running Main's cleanup (killed by a test
// timeout); their mariadbd died with them (Pdeathsig).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "xact-mariadb-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "xact-mariadb-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

func setup() error {
	shared.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			cfg, err := mysql.ParseDSN(dsn)
			if err != nil {
				shared.err = fmt.Errorf("mysqltest: %s: %w", EnvDSN, err)
				return
			}
			cfg.DBName = ""
			shared.base = cfg
		} else {
			removeStale()
			dir, err := os.MkdirTemp("", fmt.Sprintf("xact-mariadb-%d-", os.Getpid()))
			if err != nil {
				shared.err = fmt.Errorf("mysqltest: %w", err)
				return
			}
			srv, err := Start(context.Background(), Options{Dir: dir})
			if err != nil {
				_ = os.RemoveAll(dir)
				shared.err = err
				return
			}
			shared.srv, shared.dir, shared.base = srv, dir, srv.Config()
		}
		c, err := mysql.NewConnector(shared.base)
		if err != nil {
			shared.err = fmt.Errorf("mysqltest: %w", err)
			return
		}
		shared.admin = sql.OpenDB(c)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := shared.admin.PingContext(ctx); err != nil {
			shared.err = fmt.Errorf("mysqltest: connect to %s: %w", shared.base.Addr, err)
		}
	})
	return shared.err
}

// Config returns a driver configuration for a new, empty database created
// for this test (utf8mb4, utf8mb4_unicode_ci) and dropped when the test
// passes. Tests may change the configuration (ParseTime, Loc,
// InterpolateParams, Params, ...) before opening it. The server is the one
// named by XACT_TEST_MYSQL_DSN, or else a private mariadbd started for this
// test process; the package's TestMain must call Main.
func Config(t testing.TB) *mysql.Config {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("mysqltest: the package's TestMain must call mysqltest.Main(m), which stops the private server")
	}
	if err := setup(); err != nil {
		t.Fatal(err)
	}
	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := shared.admin.ExecContext(ctx, "CREATE DATABASE "+quote(name)+
		" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("mysqltest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mysqltest: kept database %s on %s for inspection", name, shared.base.Addr)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := shared.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quote(name)); err != nil {
			t.Errorf("mysqltest: drop database %s: %v", name, err)
		}
	})
	cfg := shared.base.Clone()
	cfg.DBName = name
	return cfg
}

// DSN returns the DSN of Config(t): a new, empty database for this test.
func DSN(t testing.TB) string {
	t.Helper()
	return Config(t).FormatDSN()
}

// NewDB opens a *sql.DB on a new, empty database for this test and closes
// it when the test ends.
func NewDB(t testing.TB) *sql.DB {
	t.Helper()
	return Open(t, Config(t))
}

// Open opens cfg and closes the pool when the test ends.
func Open(t testing.TB, cfg *mysql.Config) *sql.DB {
	t.Helper()
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("mysqltest: %v", err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// dbName derives a database name from a test name: readable, unique across
// processes sharing one server, and within MySQL's 64-character limit.
func dbName(test string) string {
	var b strings.Builder
	b.WriteString("xt_")
	for _, r := range strings.ToLower(test) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(rnd[:]))
	return b.String()
}

func quote(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
