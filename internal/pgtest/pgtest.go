package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
)

// EnvDSN names the environment variable with the URL of a server to use
// instead of starting a private one
// (postgres://USER[:PASSWORD]@HOST:PORT/[DB][?PARAMS]; the user must be
// allowed to create databases). `make test` starts one server for the
// whole run and sets it.
const EnvDSN = "XACT_TEST_POSTGRES_DSN"

// The process-wide server: started on first use, stopped by Main.
var (
	mainCalled atomic.Bool
	shared     struct {
		once  sync.Once
		err   error
		base  *url.URL // the admin database (postgres unless EnvDSN names another)
		admin *sql.DB  // creates and drops test databases
		srv   *Server  // nil when EnvDSN is used
		dir   string   // temporary directory of srv
	}
)

// Main runs the tests of a package and stops the private server, if one was
// started, before the process exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
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
		err = fmt.Errorf("pgtest: %w", rmErr)
	}
	return err
}

// stalePrefix names the directories of the private servers of test
// processes: xact-postgres-PID-RANDOM in the temporary directory.
const stalePrefix = "xact-postgres-"

// removeStale removes the directories of private servers whose test
// process died without running Main's cleanup (killed by a test timeout);
// their postgres died with them (Pdeathsig).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), stalePrefix+"*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), stalePrefix+"%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// parseEnvDSN returns the URL of the admin database of the server named by
// EnvDSN: its database, or postgres if it names none.
func parseEnvDSN(dsn string) (*url.URL, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" || u.Host == "" {
		return nil, fmt.Errorf("pgtest: %s=%q: want a URL postgres://user@host:port/[db][?params]", EnvDSN, u.Redacted())
	}
	if strings.Trim(u.Path, "/") == "" {
		u.Path = "/postgres"
	}
	u.RawPath = ""
	return u, nil
}

func setup() error {
	shared.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			u, err := parseEnvDSN(dsn)
			if err != nil {
				shared.err = err
				return
			}
			shared.base = u
		} else {
			removeStale()
			dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", stalePrefix, os.Getpid()))
			if err != nil {
				shared.err = fmt.Errorf("pgtest: %w", err)
				return
			}
			srv, err := Start(context.Background(), Options{Dir: dir})
			if err != nil {
				_ = os.RemoveAll(dir)
				shared.err = err
				return
			}
			shared.srv, shared.dir = srv, dir
			shared.base, _ = url.Parse(srv.DSN())
		}
		db, err := sql.Open("pgx", shared.base.String())
		if err != nil {
			shared.err = fmt.Errorf("pgtest: %w", err)
			return
		}
		shared.admin = db
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			shared.err = fmt.Errorf("pgtest: connect to %s: %w", shared.base.Redacted(), err)
		}
	})
	return shared.err
}

// DSN returns the URL of a new, empty database created for this test
// (encoding UTF8) and dropped when the test passes — with its connections,
// should any still be open — or kept for inspection when it fails:
// postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable for a private
// server. The server is the one named by XACT_TEST_POSTGRES_DSN, or else a
// private one started for this test process; the package's TestMain must
// call Main.
func DSN(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m), which stops the private server")
	}
	if err := setup(); err != nil {
		t.Fatal(err)
	}
	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// template0: no one can be connected to it, which would make CREATE
	// DATABASE fail, and it has nothing added to template1.
	if _, err := shared.admin.ExecContext(ctx, "CREATE DATABASE "+quote(name)+
		" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: kept database %s on %s for inspection", name, shared.base.Host)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := shared.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quote(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u := *shared.base
	u.Path, u.RawPath = "/"+name, ""
	return u.String()
}

// NewDB opens a *sql.DB (driver pgx) on a new, empty database for this
// test and closes it when the test ends.
func NewDB(t testing.TB) *sql.DB {
	t.Helper()
	return Open(t, DSN(t))
}

// Open opens dsn with the database/sql driver pgx and closes the pool when
// the test ends.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// dbName derives a database name from a test name: readable, unique across
// processes sharing one server, and within PostgreSQL's 63-byte limit.
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

// quote quotes an SQL identifier.
func quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
