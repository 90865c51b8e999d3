package datasource

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/tm"
)

// TestLockWaitTimeout: a statement of a branch times out waiting for a row
// lock (1205). A server started with innodb_rollback_on_timeout has rolled
// the whole transaction back, so the wrapper aborts it (later statements
// would run outside it, without undo); by default only the statement is
// undone and the transaction goes on. The test server runs with the
// default, so the ON case sets the wrapper's cached reading; the last case
// reads the real setting.
func TestLockWaitTimeout(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(2)
	ctx := context.Background()
	for _, tt := range []struct {
		name      string
		cached    int32
		wantAbort bool
	}{
		{"server keeps the transaction", 1, false},
		{"server rolled it back", 2, true},
		{"setting read from the server (OFF)", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d.c.rollbackOnTimeout.Store(tt.cached)
			hold, err := d.raw.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Rollback()
			if _, err := hold.ExecContext(ctx, "SELECT * FROM account WHERE id = 2 FOR UPDATE"); err != nil {
				t.Fatal(err)
			}
			err = e.tm.Do(ctx, tm.Options{Name: "timeout", Timeout: 30 * time.Second}, func(ctx context.Context) error {
				tx, err := d.db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				if _, err := tx.ExecContext(ctx, "SET SESSION innodb_lock_wait_timeout = 1"); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - 1 WHERE id = 1"); err != nil {
					return err
				}
				_, err = tx.ExecContext(ctx, "UPDATE account SET balance = balance - 1 WHERE id = 2")
				if errno.Of(err) != errno.LockWaitTimeout {
					t.Fatalf("UPDATE of the held row = %v, want error 1205", err)
				}
				_, err = tx.ExecContext(ctx, "UPDATE account SET balance = balance + 1 WHERE id = 1")
				if tt.wantAbort != errors.Is(err, ErrAborted) || !tt.wantAbort && err != nil {
					t.Errorf("statement after the timeout = %v, want aborted=%v", err, tt.wantAbort)
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Do = %v, want %v", err, errRollback)
			}
			hold.Rollback()
			if got := d.balance(1); got != 100 {
				t.Errorf("balance 1 = %d after the global rollback, want 100", got)
			}
			if tt.cached == 0 {
				if got := d.c.rollbackOnTimeout.Load(); got != 1 {
					t.Errorf("cached innodb_rollback_on_timeout = %d, want 1 (OFF, read from the server)", got)
				}
			}
		})
	}
}
