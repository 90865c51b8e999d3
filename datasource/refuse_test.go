package datasource

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/datasource/mysqldialect"
	"github.com/xact-io/xact/tm"
)

// TestRefusals: statements whose undo cannot be built, and transaction
// control other than savepoints, are refused with ErrUnsupported before
// they run, in a transaction and on their own. (Savepoints:
// savepoint_test.go.)
func TestRefusals(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(2)
	d.exec("CREATE TABLE nopk (a INT, b INT)", "INSERT INTO nopk VALUES (1, 1)")
	tests := []struct{ name, sql string }{
		{"create table", "CREATE TABLE x (id INT PRIMARY KEY)"},
		{"alter table", "ALTER TABLE account ADD COLUMN y INT"},
		{"truncate", "TRUNCATE account"},
		{"replace", "REPLACE INTO account VALUES (1, 5, NULL)"},
		{"insert select star", "INSERT INTO account SELECT * FROM account"},
		{"insert select without keys", "INSERT INTO nopk (a, b) SELECT 1, 2"},
		{"table without primary key", "UPDATE nopk SET b = 2"},
		{"primary key update", "UPDATE account SET id = 9 WHERE id = 1"},
		{"two statements", "UPDATE account SET balance = 1 WHERE id = 1; UPDATE account SET balance = 1 WHERE id = 2"},
		{"start transaction", "START TRANSACTION"},
		{"commit", "COMMIT"},
		{"rollback", "ROLLBACK"},
		{"savepoint named outside ASCII", "SAVEPOINT `café`"},
		{"lock tables", "LOCK TABLES account WRITE"},
		{"autocommit", "SET autocommit = 0"},
		{"volatile predicate", "DELETE FROM account WHERE id = FLOOR(RAND() * 2)"},
		{"unknown table", "UPDATE nosuch SET a = 1"},
	}
	accounts := d.dump("account")
	nopk := d.dump("nopk")
	for _, tt := range tests {
		for _, path := range []string{"tx", "autocommit"} {
			t.Run(tt.name+"/"+path, func(t *testing.T) {
				var stmtErr error
				err := e.tm.Do(context.Background(), tm.Options{Name: "refuse", Timeout: 10 * time.Second}, func(ctx context.Context) error {
					if path == "autocommit" {
						_, stmtErr = d.db.ExecContext(ctx, tt.sql)
						return stmtErr
					}
					tx, err := d.db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					_, stmtErr = tx.ExecContext(ctx, tt.sql)
					if stmtErr == nil {
						return tx.Commit()
					}
					// The refused statement did not run: the transaction
					// goes on.
					if _, err := tx.ExecContext(ctx, "UPDATE account SET note = 'ok' WHERE id = 2"); err != nil {
						t.Errorf("statement after the refusal: %v", err)
					}
					return stmtErr
				})
				if !errors.Is(stmtErr, ErrUnsupported) || !errors.Is(stmtErr, mysqldialect.ErrUnsupported) {
					t.Errorf("%s = %v, want %v wrapping %v", tt.sql, stmtErr, ErrUnsupported, mysqldialect.ErrUnsupported)
				}
				if !errors.Is(err, ErrUnsupported) {
					t.Errorf("Do = %v", err)
				}
				if got := d.dump("account"); !reflect.DeepEqual(got, accounts) {
					t.Errorf("account = %v, want %v", got, accounts)
				}
				if got := d.dump("nopk"); !reflect.DeepEqual(got, nopk) {
					t.Errorf("nopk = %v, want %v", got, nopk)
				}
			})
		}
	}
}

// TestScope: a transaction's scope is its BeginTx context's.
func TestScope(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(1)
	do := func(fn func(ctx context.Context) error) error {
		return e.tm.Do(context.Background(), tm.Options{Name: "scope", Timeout: 10 * time.Second}, fn)
	}

	t.Run("statement context without XID still belongs to the branch", func(t *testing.T) {
		err := do(func(ctx context.Context) error {
			tx, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(context.Background(), "UPDATE account SET balance = 1 WHERE id = 1"); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("Do = %v", err)
		}
		if got, want := d.balance(1), 100; got != want {
			t.Errorf("balance = %d, want %d (rolled back)", got, want)
		}
	})

	t.Run("write with an XID in a local transaction", func(t *testing.T) {
		tx, err := d.db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		err = do(func(ctx context.Context) error {
			var b int
			if err := tx.QueryRowContext(ctx, "SELECT balance FROM account WHERE id = 1").Scan(&b); err != nil {
				t.Errorf("read: %v", err)
			}
			_, err := tx.ExecContext(ctx, "UPDATE account SET balance = 1 WHERE id = 1")
			return err
		})
		if !errors.Is(err, ErrXIDMismatch) {
			t.Errorf("Do = %v, want %v", err, ErrXIDMismatch)
		}
	})

	t.Run("write with another global's XID", func(t *testing.T) {
		err := do(func(ctx1 context.Context) error {
			tx, err := d.db.BeginTx(ctx1, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			return do(func(ctx2 context.Context) error {
				_, err := tx.ExecContext(tm.WithXID(ctx2, "tc1:other:1"), "UPDATE account SET balance = 1 WHERE id = 1")
				return err
			})
		})
		if !errors.Is(err, ErrXIDMismatch) {
			t.Errorf("Do = %v, want %v", err, ErrXIDMismatch)
		}
	})

	t.Run("no RM", func(t *testing.T) {
		db, err := Open("mysql", d.cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("UPDATE account SET note = 'plain' WHERE id = 1"); err != nil {
			t.Errorf("plain statement: %v", err)
		}
		err = do(func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, "UPDATE account SET balance = 1 WHERE id = 1")
			return err
		})
		if !errors.Is(err, ErrNoRM) {
			t.Errorf("Do = %v, want %v", err, ErrNoRM)
		}
	})
}

// TestNamedValueCheckerForwarded: go-sql-driver/mysql accepts uint64
// arguments with the high bit set through its NamedValueChecker;
// database/sql's default conversion refuses them.
func TestNamedValueCheckerForwarded(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	for _, interp := range []bool{false, true} {
		d := e.newDB(t, []dbOption{interpolate(interp)})
		d.exec("CREATE TABLE u (id BIGINT UNSIGNED PRIMARY KEY, v INT NOT NULL)")
		const big = uint64(1)<<63 + 5
		err := e.tm.Do(context.Background(), tm.Options{Name: "nvc", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			if _, err := d.db.ExecContext(ctx, "INSERT INTO u VALUES (?, ?)", big, 1); err != nil {
				t.Errorf("insert: %v", err)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("Do = %v", err)
		}
		if got := d.dump("u"); len(got) != 0 {
			t.Errorf("u = %v, want empty after rollback", got)
		}
	}
}

// TestConnectionReuse: after failures a pooled connection is not left in
// a transaction or a branch.
func TestConnectionReuse(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil, WithLockWait(50*time.Millisecond, 5*time.Millisecond))
	d.accounts(1)
	d.db.SetMaxOpenConns(1)
	inTx := func() int {
		var n int
		if err := d.db.QueryRow("SELECT @@in_transaction").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	h := hold(t, e, d)
	err := e.tm.Do(context.Background(), tm.Options{Name: "reuse", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		return debit(ctx, d, 1, 1)
	})
	if !errors.Is(err, ErrLockConflict) {
		t.Fatalf("Do = %v, want %v", err, ErrLockConflict)
	}
	if n := inTx(); n != 0 {
		t.Errorf("@@in_transaction = %d after a failed commit, want 0", n)
	}
	h.release <- true
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.Exec("UPDATE account SET balance = 7 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if got := d.balance(1); got != 7 {
		t.Errorf("balance = %d, want 7 (a plain statement commits)", got)
	}
}

func TestResourceID(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"root:secret@tcp(db.example:3307)/orders", "db.example:3307/orders"},
		{"u:p@tcp(10.0.0.1)/shop?parseTime=true", "10.0.0.1:3306/shop"},
		{"u@/bank", "127.0.0.1:3306/bank"},
		{"u:p@unix(/run/mysqld.sock)/bank", "unix:/run/mysqld.sock/bank"},
		{"u:p@tcp([::1]:3306)/x", "[::1]:3306/x"},
	}
	for _, tt := range tests {
		cfg, err := gomysql.ParseDSN(tt.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := ResourceID(cfg); got != tt.want {
			t.Errorf("ResourceID(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	e := newEnv(t)
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "root", "secret", "tcp", "127.0.0.1:1", "bank"
	db, err := Open("mysql", cfg.FormatDSN(), WithRM(e.rm))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	db.Close()

	tests := []struct {
		name string
		dsn  string
		opts []Option
	}{
		{"nil RM", cfg.FormatDSN(), []Option{WithRM(nil)}},
		{"empty resource", cfg.FormatDSN(), []Option{WithResourceID("")}},
		{"negative budget", cfg.FormatDSN(), []Option{WithLockWait(-1, time.Millisecond)}},
		{"zero commit timeout", cfg.FormatDSN(), []Option{WithCommitTimeout(0)}},
		{"no database to name the resource", "root@tcp(127.0.0.1:1)/", []Option{WithRM(e.rm)}},
		{"nil option", cfg.FormatDSN(), []Option{nil}},
	}
	for _, tt := range tests {
		if _, err := Open("mysql", tt.dsn, tt.opts...); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: Open = %v, want %v", tt.name, err, ErrInvalidOption)
		}
	}
	if _, err := NewConnector(nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("NewConnector(nil) = %v, want %v", err, ErrInvalidOption)
	}
	var _ *sql.DB = db
}
