package datasource

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// holder is a global transaction that debited account 1 and holds its
// global lock until released.
type holder struct {
	xid     string
	release chan bool // true: commit, false: roll back
	done    chan error
}

func hold(t *testing.T, e *env, d *database) *holder {
	t.Helper()
	h := &holder{release: make(chan bool), done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		h.done <- e.tm.Do(context.Background(), tm.Options{Name: "holder", Timeout: 20 * time.Second}, func(ctx context.Context) error {
			if err := debit(ctx, d, 1, 30); err != nil {
				close(ready)
				return err
			}
			ready <- xidOf(t, ctx)
			if <-h.release {
				return nil
			}
			return errRollback
		})
	}()
	xid, ok := <-ready
	if !ok {
		t.Fatalf("holder: %v", <-h.done)
	}
	h.xid = xid
	return h
}

// commitWhileHolderRollsBack is the distributed deadlock a rolling-back
// holder meets: a second global updates account 1 (taking its database
// row lock) while the holder has its global lock, the holder then rolls
// back (its compensation needs that row lock), and only then does the
// second commit, asking for the global lock. It returns the holder and
// the second's commit error.
func commitWhileHolderRollsBack(t *testing.T, e *env, d *database) (*holder, error) {
	t.Helper()
	h := hold(t, e, d)
	locked, proceed := make(chan struct{}), make(chan struct{})
	var commitErr error
	done := second(e, func(ctx context.Context) error {
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ?", 30, 1); err != nil {
			return err
		}
		close(locked)
		<-proceed
		commitErr = tx.Commit()
		return commitErr
	})
	<-locked
	h.release <- false
	eventually(t, func() error {
		if g, _ := e.global(h.xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKING &&
			g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACK_RETRYING {
			return fmt.Errorf("holder is %v, want it rolling back", g.GetStatus())
		}
		return nil
	})
	close(proceed)
	<-done
	return h, commitErr
}

// second runs fn in a global transaction in the background.
func second(e *env, fn func(ctx context.Context) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- e.tm.Do(context.Background(), tm.Options{Name: "second", Timeout: 20 * time.Second}, fn)
	}()
	return done
}

// notYet fails if ch delivers within d.
func notYet(t *testing.T, ch <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("second finished while the row was held: %v", err)
	case <-time.After(d):
	}
}

func TestLockConflict(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	ctx := context.Background()

	t.Run("second waits then proceeds", func(t *testing.T) {
		d := e.newDB(t, nil, WithLockWait(10*time.Second, 5*time.Millisecond))
		d.accounts(1)
		h := hold(t, e, d)
		done := second(e, func(ctx context.Context) error { return debit(ctx, d, 1, 30) })
		notYet(t, done, 200*time.Millisecond)
		h.release <- true
		if err := <-h.done; err != nil {
			t.Fatalf("holder: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("second: %v", err)
		}
		if got, want := d.balance(1), 40; got != want {
			t.Errorf("balance = %d, want %d", got, want)
		}
	})

	t.Run("second fails after its budget", func(t *testing.T) {
		d := e.newDB(t, nil, WithLockWait(200*time.Millisecond, 5*time.Millisecond))
		d.accounts(1)
		h := hold(t, e, d)
		var commitErr error
		err := <-second(e, func(ctx context.Context) error {
			commitErr = debit(ctx, d, 1, 30)
			return commitErr
		})
		var lc *LockConflictError
		if !errors.As(commitErr, &lc) {
			t.Fatalf("commit = %v, want a *LockConflictError", commitErr)
		}
		if lc.Holder != h.xid || lc.Table != "account" || lc.Key != "account:1" || lc.Resource != d.resource {
			t.Errorf("conflict = %+v, want account:1 of account on %s held by %s", lc, d.resource, h.xid)
		}
		if lc.Waited < 150*time.Millisecond {
			t.Errorf("waited %v, want about the 200ms budget", lc.Waited)
		}
		for _, target := range []error{ErrLockConflict, protocol.ErrLockConflict} {
			if !errors.Is(err, target) {
				t.Errorf("Do = %v, want it to match %v", err, target)
			}
		}
		h.release <- true
		if err := <-h.done; err != nil {
			t.Fatalf("holder: %v", err)
		}
		if got, want := d.balance(1), 70; got != want {
			t.Errorf("balance = %d, want %d", got, want)
		}
	})

	t.Run("first rolls back while second waits", func(t *testing.T) {
		// The second holds the row's database lock while it waits for the
		// global lock; the first's rollback needs that database lock to
		// compensate the row. The TC says the holder is rolling back, so
		// the second gives up at once instead of after its budget (a
		// minute here: the old behaviour held the rollback that long).
		d := e.newDB(t, nil, WithLockWait(time.Minute, 5*time.Millisecond))
		d.accounts(1)
		h, commitErr := commitWhileHolderRollsBack(t, e, d)
		var lc *LockConflictError
		if !errors.As(commitErr, &lc) || !lc.HolderRollingBack {
			t.Fatalf("second's commit = %v, want a *LockConflictError with HolderRollingBack", commitErr)
		}
		var plc *protocol.LockConflictError
		if !errors.As(commitErr, &plc) || !plc.HolderRollingBack || plc.Holder != h.xid {
			t.Errorf("TC's conflict = %+v, want holder %s rolling back", plc, h.xid)
		}
		if err := <-h.done; !errors.Is(err, errRollback) {
			t.Fatalf("holder = %v, want %v", err, errRollback)
		}
		if g := e.settled(h.xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
			t.Errorf("holder status = %v (%q), want ROLLBACKED", g.GetStatus(), g.GetReason())
		}
		if got, want := d.balance(1), 100; got != want {
			t.Errorf("balance = %d, want %d", got, want)
		}
	})

	t.Run("wait on a rolling-back holder when asked to", func(t *testing.T) {
		// WithLockWaitOnRollback(true): the second keeps waiting, so the
		// holder's rollback waits for the second's budget to end.
		d := e.newDB(t, nil, WithLockWait(300*time.Millisecond, 5*time.Millisecond), WithLockWaitOnRollback(true))
		d.accounts(1)
		h, commitErr := commitWhileHolderRollsBack(t, e, d)
		var lc *LockConflictError
		if !errors.As(commitErr, &lc) || !lc.HolderRollingBack || lc.Waited < 300*time.Millisecond/2 {
			t.Fatalf("second's commit = %v, want a *LockConflictError after waiting its budget", commitErr)
		}
		<-h.done
		if g := e.settled(h.xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
			t.Errorf("holder status = %v (%q), want ROLLBACKED", g.GetStatus(), g.GetReason())
		}
	})

	t.Run("autocommit statement waits holding nothing", func(t *testing.T) {
		// Run directly on the DB, the statement is its own local
		// transaction: on a conflict it is rolled back and run again, so
		// the first's rollback does not wait for it.
		d := e.newDB(t, nil, WithLockWait(10*time.Second, 5*time.Millisecond))
		d.accounts(1)
		h := hold(t, e, d)
		var xid2 string
		done := second(e, func(ctx context.Context) error {
			xid2 = xidOf(t, ctx)
			_, err := d.db.ExecContext(ctx, "UPDATE account SET balance = balance - ? WHERE id = ?", 5, 1)
			return err
		})
		notYet(t, done, 100*time.Millisecond)
		h.release <- false
		if err := <-h.done; !errors.Is(err, errRollback) {
			t.Fatalf("holder = %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("second: %v", err)
		}
		if got, want := d.balance(1), 95; got != want {
			t.Errorf("balance = %d, want %d", got, want)
		}
		if g := e.settled(xid2); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED {
			t.Errorf("second status = %v", g.GetStatus())
		}
	})

	t.Run("select for update waits", func(t *testing.T) {
		d := e.newDB(t, nil, WithLockWait(10*time.Second, 5*time.Millisecond))
		d.accounts(1)
		h := hold(t, e, d)
		var seen int
		done := second(e, func(ctx context.Context) error {
			tx, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := tx.QueryRowContext(ctx, "SELECT balance FROM account WHERE id = ? FOR UPDATE", 1).Scan(&seen); err != nil {
				return err
			}
			return tx.Commit()
		})
		notYet(t, done, 200*time.Millisecond)
		h.release <- true
		<-h.done
		if err := <-done; err != nil {
			t.Fatalf("second: %v", err)
		}
		if seen != 70 {
			t.Errorf("SELECT … FOR UPDATE read %d, want the committed 70", seen)
		}
	})

	t.Run("select for update fails after its budget", func(t *testing.T) {
		d := e.newDB(t, nil, WithLockWait(100*time.Millisecond, 5*time.Millisecond))
		d.accounts(1)
		h := hold(t, e, d)
		err := <-second(e, func(ctx context.Context) error {
			var b int
			return d.db.QueryRowContext(ctx, "SELECT balance FROM account WHERE id = ? FOR UPDATE", 1).Scan(&b)
		})
		var lc *LockConflictError
		if !errors.As(err, &lc) || lc.Holder != h.xid {
			t.Errorf("Do = %v, want a conflict held by %s", err, h.xid)
		}
		h.release <- true
		<-h.done
	})

	t.Run("global lock local transaction", func(t *testing.T) {
		tests := []struct {
			name    string
			budget  time.Duration
			wantErr error
			want    int
		}{
			{"waits", 10 * time.Second, nil, 60},
			{"fails", 100 * time.Millisecond, ErrLockConflict, 70},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := e.newDB(t, nil, WithLockWait(tt.budget, 5*time.Millisecond))
				d.accounts(1)
				h := hold(t, e, d)
				done := make(chan error, 1)
				go func() {
					gctx := WithGlobalLockContext(ctx)
					tx, err := d.db.BeginTx(gctx, nil)
					if err != nil {
						done <- err
						return
					}
					defer tx.Rollback()
					if _, err := tx.ExecContext(gctx, "UPDATE account SET balance = balance - 10 WHERE id = 1"); err != nil {
						done <- err
						return
					}
					done <- tx.Commit()
				}()
				if tt.wantErr == nil {
					notYet(t, done, 200*time.Millisecond)
				} else {
					if err := <-done; !errors.Is(err, tt.wantErr) {
						t.Errorf("commit = %v, want %v", err, tt.wantErr)
					}
				}
				h.release <- true
				if err := <-h.done; err != nil {
					t.Fatalf("holder: %v", err)
				}
				if tt.wantErr == nil {
					if err := <-done; err != nil {
						t.Fatalf("commit: %v", err)
					}
				}
				if got := d.balance(1); got != tt.want {
					t.Errorf("balance = %d, want %d", got, tt.want)
				}
				if n, _ := d.undoLogs(); n != 0 {
					t.Errorf("undo logs = %d, want 0 (a global-lock transaction writes none)", n)
				}
			})
		}
	})
}

// TestGlobalWritesOnly: with WithGlobalWritesOnly a write with the outer
// context (not tm.Do's) is refused before it runs; inside the callback,
// and for reads, nothing changes.
func TestGlobalWritesOnly(t *testing.T) {
	e := newEnv(t)
	d := e.newDB(t, nil, WithGlobalWritesOnly())
	d.accounts(1)
	outer := context.Background()
	err := e.tm.Do(outer, tm.Options{Name: "wrong-ctx", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		_, err := d.db.ExecContext(outer, "UPDATE account SET balance = balance - 10 WHERE id = 1")
		return err
	})
	if !errors.Is(err, ErrNoGlobalTransaction) {
		t.Fatalf("write with the outer context = %v, want ErrNoGlobalTransaction", err)
	}
	// The same through a prepared statement (gorm's PrepareStmt).
	st, err := d.db.PrepareContext(outer, "UPDATE account SET balance = balance - 10 WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = e.tm.Do(outer, tm.Options{Name: "wrong-ctx-prepared", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		_, err := st.ExecContext(outer, 1)
		return err
	})
	if !errors.Is(err, ErrNoGlobalTransaction) {
		t.Fatalf("prepared write with the outer context = %v, want ErrNoGlobalTransaction", err)
	}
	if got := d.balance(1); got != 100 {
		t.Errorf("balance = %d, want 100 (nothing ran)", got)
	}
	var bal int
	if err := d.db.QueryRowContext(outer, "SELECT balance FROM account WHERE id = 1").Scan(&bal); err != nil {
		t.Errorf("read outside global work: %v", err)
	}
	err = e.tm.Do(outer, tm.Options{Name: "right-ctx", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		_, err := d.db.ExecContext(ctx, "UPDATE account SET balance = balance - 10 WHERE id = 1")
		return err
	})
	if err != nil {
		t.Fatalf("write with the callback's context: %v", err)
	}
	if got := d.balance(1); got != 90 {
		t.Errorf("balance = %d, want 90", got)
	}
}
