package datasource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/xact-io/xact/datasource/mysqldialect/errno"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
	"github.com/xact-io/xact/undo"
)

// spStep is one statement of a savepoint script and the MySQL error
// number the database answers it with (0 for success).
type spStep struct {
	sql   string
	args  []any
	errno uint16
}

// runScript runs steps in tx, directly or each as a prepared statement,
// and checks every answer.
func runScript(ctx context.Context, tx *sql.Tx, prepared bool, steps []spStep) error {
	for _, s := range steps {
		var err error
		if prepared {
			var st *sql.Stmt
			if st, err = tx.PrepareContext(ctx, s.sql); err == nil {
				_, err = st.ExecContext(ctx, s.args...)
				st.Close()
			}
		} else {
			_, err = tx.ExecContext(ctx, s.sql, s.args...)
		}
		if got := errno.Of(err); got != s.errno || (err != nil && got == 0) {
			return fmt.Errorf("%s: %v, want error number %d", s.sql, err, s.errno)
		}
	}
	return nil
}

// resetAccounts empties the account table and gives it n accounts of
// balance 100.
func (d *database) resetAccounts(n int) {
	d.t.Helper()
	d.exec("DELETE FROM account")
	var vals []string
	for i := 1; i <= n; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 100, NULL)", i))
	}
	d.exec("INSERT INTO account VALUES " + strings.Join(vals, ", "))
}

// reference runs steps in a plain local transaction, commits, and returns
// the account table; the table is reset to n accounts before and after.
func (d *database) reference(n int, steps []spStep) [][]string {
	d.t.Helper()
	d.resetAccounts(n)
	tx, err := d.raw.Begin()
	if err != nil {
		d.t.Fatal(err)
	}
	defer tx.Rollback()
	if err := runScript(context.Background(), tx, false, steps); err != nil {
		d.t.Fatalf("reference: %v", err)
	}
	if err := tx.Commit(); err != nil {
		d.t.Fatal(err)
	}
	want := d.dump("account")
	d.resetAccounts(n)
	return want
}

// branchOf returns, for the one branch xid has on d, the lock keys it
// registered and the lock keys of each record of its undo log. Call it
// after the local commit, before the global transaction ends.
func (e *env) branchOf(d *database, xid string) (locks, records []string) {
	e.t.Helper()
	_, branches := e.global(xid)
	if len(branches) != 1 {
		e.t.Fatalf("%s has %d branches, want 1", xid, len(branches))
	}
	locks = slices.Clone(branches[0].GetLockKeys())
	slices.Sort(locks)
	var info []byte
	if err := d.raw.QueryRow("SELECT rollback_info FROM undo_log WHERE xid = ?", xid).Scan(&info); err != nil {
		e.t.Fatalf("undo log of %s: %v", xid, err)
	}
	log, err := undo.Decode(info)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range log.Records {
		keys, err := r.LockKeys()
		if err != nil {
			e.t.Fatal(err)
		}
		records = append(records, strings.Join(keys, "+"))
	}
	return locks, records
}

// checkSavepointScript runs steps as one branch (directly and as prepared
// statements, with both interpolateParams settings) and checks that the
// branch keeps only the undo records and lock keys of the changes that
// survived, that a global commit leaves exactly what a plain transaction
// running the same steps leaves, and that a global rollback restores the
// table exactly, without a dirty-check failure.
func checkSavepointScript(t *testing.T, e *env, accounts int, steps []spStep, wantLocks, wantRecords []string) {
	for _, interp := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpolateParams=%v", interp), func(t *testing.T) {
			d := e.newDB(t, []dbOption{interpolate(interp)})
			d.accounts(accounts)
			want := d.reference(accounts, steps)
			seeded := d.dump("account")
			for _, prepared := range []bool{false, true} {
				for _, fail := range []bool{false, true} {
					t.Run(fmt.Sprintf("prepared=%v/rollback=%v", prepared, fail), func(t *testing.T) {
						d.resetAccounts(accounts)
						var xid string
						err := e.tm.Do(context.Background(), tm.Options{Name: "savepoint", Timeout: 10 * time.Second}, func(ctx context.Context) error {
							xid = xidOf(t, ctx)
							tx, err := d.db.BeginTx(ctx, nil)
							if err != nil {
								return err
							}
							defer tx.Rollback()
							if err := runScript(ctx, tx, prepared, steps); err != nil {
								return err
							}
							if err := tx.Commit(); err != nil {
								return err
							}
							locks, records := e.branchOf(d, xid)
							if !reflect.DeepEqual(locks, wantLocks) || !reflect.DeepEqual(records, wantRecords) {
								t.Errorf("branch locks %q, undo records of rows %q; want %q, %q", locks, records, wantLocks, wantRecords)
							}
							if fail {
								return errRollback
							}
							return nil
						})
						if fail && !errors.Is(err, errRollback) || !fail && err != nil {
							t.Fatalf("Do = %v", err)
						}
						g := e.settled(xid)
						wantStatus, wantNow := xactpb.GlobalStatus_GLOBAL_STATUS_COMMITTED, want
						if fail {
							wantStatus, wantNow = xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED, seeded
						}
						if g.GetStatus() != wantStatus || g.GetParked() {
							t.Errorf("global %s: %v parked=%v (%q), want %v", xid, g.GetStatus(), g.GetParked(), g.GetReason(), wantStatus)
						}
						if got := d.dump("account"); !reflect.DeepEqual(got, wantNow) {
							t.Errorf("account =\n%v\nwant\n%v", got, wantNow)
						}
						if n, m := d.undoLogs(); n != 0 || m != 0 {
							t.Errorf("undo_log has %d logs and %d markers, want none", n, m)
						}
					})
				}
			}
		})
	}
}

// TestSavepointRollbackTo: changes made after a savepoint and rolled back
// to it (a row changed twice, an insert, a delete, a row touched only
// there) leave no undo record and no lock key; the changes before and
// after survive.
func TestSavepointRollbackTo(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	const debit = "UPDATE account SET balance = balance - ? WHERE id = ?"
	steps := []spStep{
		{sql: debit, args: []any{10, 1}},
		{sql: "SAVEPOINT sp1"},
		{sql: debit, args: []any{20, 1}},
		{sql: debit, args: []any{5, 1}}, // the same row again: its record's before image is no savepoint state
		{sql: "INSERT INTO account VALUES (?, ?, ?)", args: []any{9, 1, "new"}},
		{sql: "DELETE FROM account WHERE id = ?", args: []any{2}},
		{sql: "UPDATE account SET note = ? WHERE id = ?", args: []any{"sp", 3}},
		{sql: "ROLLBACK TO SAVEPOINT sp1"},
		{sql: debit, args: []any{-1, 1}},
		{sql: "UPDATE account SET note = ? WHERE id = ?", args: []any{"after", 4}},
	}
	checkSavepointScript(t, e, 4, steps,
		[]string{"account:1", "account:4"},
		[]string{"account:1", "account:1", "account:4"})
}

// TestSavepointNames: nested savepoints, RELEASE, re-used and
// case-insensitive names (plain and backquoted), and unknown names, whose
// error comes from the database as it is and leaves the transaction
// going. Only the changes of accounts 1 and 4 survive.
func TestSavepointNames(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	w := func(id int) spStep {
		return spStep{sql: "UPDATE account SET balance = balance + ?, note = ? WHERE id = ?", args: []any{id, fmt.Sprint("w", id), id}}
	}
	const noSavepoint = errno.SPDoesNotExist
	steps := []spStep{
		w(1),
		{sql: "SAVEPOINT a"},
		w(2),
		{sql: "SAVEPOINT b"},
		w(3),
		{sql: "SAVEPOINT c"},
		{sql: "RELEASE SAVEPOINT b"}, // b and c
		{sql: "ROLLBACK TO c", errno: noSavepoint},
		{sql: "ROLLBACK TO SAVEPOINT b", errno: noSavepoint},
		{sql: "ROLLBACK TO A"}, // undoes w2, w3
		{sql: "SAVEPOINT `a`"}, // replaces a
		w(4),
		{sql: "SAVEPOINT B"},
		w(5),
		{sql: "SAVEPOINT A"}, // replaces a again, now after b
		w(6),
		{sql: "ROLLBACK WORK TO `b`"}, // undoes w5, w6; removes a
		{sql: "ROLLBACK TO a", errno: noSavepoint},
		{sql: "RELEASE SAVEPOINT nosuch", errno: noSavepoint},
		{sql: "ROLLBACK TO SAVEPOINT nosuch", errno: noSavepoint},
	}
	checkSavepointScript(t, e, 6, steps,
		[]string{"account:1", "account:4"},
		[]string{"account:1", "account:4"})
}

// TestSavepointLocks: a row written only after a savepoint that was
// rolled back to needs no global lock, in a branch and in a global-lock
// transaction: the commit does not wait for the global transaction that
// holds it. A row written before the savepoint still does.
func TestSavepointLocks(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	const budget = 200 * time.Millisecond
	for _, mode := range []string{"branch", "global lock"} {
		for _, lockedFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/held row written before the savepoint=%v", mode, lockedFirst), func(t *testing.T) {
				d := e.newDB(t, nil, WithLockWait(budget, 5*time.Millisecond))
				d.accounts(2)
				h := hold(t, e, d) // holds account 1 (debited by 30)
				first, second := 2, 1
				if lockedFirst {
					first, second = 1, 2
				}
				work := func(ctx context.Context) error {
					tx, err := d.db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					return runScriptThenCommit(ctx, tx, []spStep{
						{sql: "UPDATE account SET balance = balance + 1 WHERE id = ?", args: []any{first}},
						{sql: "SAVEPOINT s"},
						{sql: "UPDATE account SET balance = balance + 1 WHERE id = ?", args: []any{second}},
						{sql: "ROLLBACK TO SAVEPOINT s"},
					})
				}
				var err error
				if mode == "branch" {
					err = e.tm.Do(context.Background(), tm.Options{Name: "savepoint-locks", Timeout: 10 * time.Second}, work)
				} else {
					err = work(WithGlobalLockContext(context.Background()))
				}
				if lockedFirst {
					var lc *LockConflictError
					if !errors.As(err, &lc) || lc.Key != "account:1" {
						t.Errorf("commit = %v, want a lock conflict on account:1", err)
					}
				} else if err != nil {
					t.Errorf("commit = %v, want it not to wait for account:1, written only after the savepoint", err)
				}
				h.release <- true
				if err := <-h.done; err != nil {
					t.Fatalf("holder: %v", err)
				}
				want := map[int]int{1: 70, 2: 101}
				if lockedFirst {
					want[2] = 100
				}
				for id, b := range want {
					if got := d.balance(id); got != b {
						t.Errorf("balance of %d = %d, want %d", id, got, b)
					}
				}
				if n, _ := d.undoLogs(); n != 0 {
					t.Errorf("undo logs = %d, want 0", n)
				}
			})
		}
	}
}

func runScriptThenCommit(ctx context.Context, tx *sql.Tx, steps []spStep) error {
	if err := runScript(ctx, tx, false, steps); err != nil {
		return err
	}
	return tx.Commit()
}

// TestSavepointOutsideTransaction: a savepoint statement run directly on
// the *sql.DB with a global context is refused before it runs; without
// one it reaches MySQL, which takes SAVEPOINT as a no-op outside a
// transaction. In a plain local transaction savepoints pass through, even
// with a context that names a global transaction.
func TestSavepointOutsideTransaction(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(1)
	for _, q := range []string{"SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "RELEASE SAVEPOINT s"} {
		err := e.tm.Do(context.Background(), tm.Options{Name: "savepoint", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			_, err := d.db.ExecContext(ctx, q)
			return err
		})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "outside a transaction") {
			t.Errorf("%s in a global transaction = %v, want %v (outside a transaction)", q, err, ErrUnsupported)
		}
		if _, err := d.db.ExecContext(WithGlobalLockContext(context.Background()), q); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s with a global-lock context = %v, want %v", q, err, ErrUnsupported)
		}
	}
	if _, err := d.db.Exec("SAVEPOINT s"); err != nil {
		t.Errorf("SAVEPOINT without a global context = %v, want MySQL's no-op", err)
	}
	if _, err := d.db.Exec("ROLLBACK TO SAVEPOINT s"); errno.Of(err) != errno.SPDoesNotExist {
		t.Errorf("ROLLBACK TO without a global context = %v, want MySQL's error %d", err, errno.SPDoesNotExist)
	}

	err := e.tm.Do(context.Background(), tm.Options{Name: "savepoint", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		bg := context.Background()
		tx, err := d.db.BeginTx(bg, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, s := range []struct {
			ctx context.Context
			sql string
		}{
			{bg, "UPDATE account SET balance = 1 WHERE id = 1"},
			{ctx, "SAVEPOINT s"},
			{bg, "UPDATE account SET balance = 2 WHERE id = 1"},
			{ctx, "ROLLBACK TO s"},
			{ctx, "RELEASE SAVEPOINT s"},
		} {
			if _, err := tx.ExecContext(s.ctx, s.sql); err != nil {
				return fmt.Errorf("%s: %w", s.sql, err)
			}
		}
		return tx.Commit()
	})
	if err != nil {
		t.Errorf("savepoints in a plain local transaction = %v", err)
	}
	if got := d.balance(1); got != 1 {
		t.Errorf("balance = %d, want 1", got)
	}
}

// TestGormNestedTransaction: gorm nests a transaction in another with a
// savepoint and rolls back to it when the inner function fails. Inside a
// global transaction the outer one is a branch; the failed inner one
// leaves nothing behind, the successful one stays. A global rollback
// restores the table exactly (the failed inner transaction changed a row
// twice: its records would fail the dirty check had they been kept).
func TestGormNestedTransaction(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableWithReturning=%v", disable), func(t *testing.T) {
			d := e.newDB(t, []dbOption{func(c *gomysql.Config) { c.ParseTime = true }})
			d.exec("CREATE TABLE orders (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, item VARCHAR(32) NOT NULL, qty INT NOT NULL, created_at DATETIME(3) NULL)")
			d.exec("INSERT INTO orders (item, qty, created_at) VALUES ('seed', 1, '2024-01-01 00:00:00.000'), ('gone', 2, NULL)")
			rec := &recorder{Interface: logger.Discard}
			gdb, err := gorm.Open(gormmysql.New(gormmysql.Config{Conn: d.db, DisableWithReturning: disable}), &gorm.Config{Logger: rec})
			if err != nil {
				t.Fatal(err)
			}
			errInner := errors.New("inner transaction fails")
			work := func(ctx context.Context) error {
				return gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					if err := tx.Create(&order{Item: "apple", Qty: 3}).Error; err != nil {
						return err
					}
					err := tx.Transaction(func(tx *gorm.DB) error {
						if err := tx.Create(&order{Item: "pear", Qty: 1}).Error; err != nil {
							return err
						}
						for range 2 {
							if err := tx.Model(&order{}).Where("item = ?", "seed").Update("qty", gorm.Expr("qty + ?", 10)).Error; err != nil {
								return err
							}
						}
						if err := tx.Where("item = ?", "gone").Delete(&order{}).Error; err != nil {
							return err
						}
						return errInner
					})
					if !errors.Is(err, errInner) {
						return fmt.Errorf("inner transaction = %v, want %v", err, errInner)
					}
					return tx.Transaction(func(tx *gorm.DB) error {
						if err := tx.Create(&order{Item: "plum", Qty: 2}).Error; err != nil {
							return err
						}
						return tx.Model(&order{}).Where("item = ?", "seed").Update("qty", gorm.Expr("qty + ?", 1)).Error
					})
				})
			}
			seeded := d.dump("orders")

			rec.sql = nil
			var xid string
			err = e.tm.Do(context.Background(), tm.Options{Name: "gorm-nested", Timeout: 10 * time.Second}, func(ctx context.Context) error {
				xid = xidOf(t, ctx)
				if err := work(ctx); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Do = %v", err)
			}
			if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED || g.GetParked() {
				t.Errorf("global %s: %v parked=%v (%q), want ROLLBACKED", xid, g.GetStatus(), g.GetParked(), g.GetReason())
			}
			if got := d.dump("orders"); !reflect.DeepEqual(got, seeded) {
				t.Errorf("after rollback orders =\n%v\nwant\n%v", got, seeded)
			}
			if !slices.ContainsFunc(rec.sql, func(s string) bool { return strings.HasPrefix(s, "ROLLBACK TO SAVEPOINT") }) {
				t.Errorf("gorm sent no ROLLBACK TO SAVEPOINT:\n%s", strings.Join(rec.sql, "\n"))
			}

			if err := e.tm.Do(context.Background(), tm.Options{Name: "gorm-nested", Timeout: 10 * time.Second}, work); err != nil {
				t.Fatalf("Do = %v", err)
			}
			var got []order
			if err := gdb.Order("item").Find(&got).Error; err != nil {
				t.Fatal(err)
			}
			var items []string
			for _, o := range got {
				items = append(items, fmt.Sprintf("%s:%d", o.Item, o.Qty))
			}
			if got, want := strings.Join(items, " "), "apple:3 gone:2 plum:2 seed:2"; got != want {
				t.Errorf("after commit orders = %s, want %s", got, want)
			}
			if n, m := d.undoLogs(); n != 0 || m != 0 {
				t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
			}
		})
	}
}
