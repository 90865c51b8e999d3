package datasource

import (
	"context"
	"database/sql/driver"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/protocol"
	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/rm"
	"github.com/xact-io/xact/tm"
	"github.com/xact-io/xact/undo"
)

// debit runs "balance = balance - amount" on account id in a branch.
func debit(ctx context.Context, d *database, id, amount int) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ?, note = ? WHERE id = ?", amount, "debit", id); err != nil {
		return err
	}
	return tx.Commit()
}

// TestDirtyRollbackParks: a writer outside any global transaction changes
// a row between phase one and rollback. The rollback must not overwrite
// it: the branch fails permanently, the global is parked with the reason,
// and the undo log stays for the operator.
func TestDirtyRollbackParks(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(2)
	var xid string
	err := e.tm.Do(context.Background(), tm.Options{Name: "dirty", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		if err := debit(ctx, d, 1, 30); err != nil {
			return err
		}
		d.exec("UPDATE account SET balance = 500 WHERE id = 1")
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Do = %v, want %v", err, errRollback)
	}
	g := e.settled(xid)
	if !g.GetParked() {
		t.Fatalf("global %v not parked (reason %q)", g.GetStatus(), g.GetReason())
	}
	if got := g.GetReason(); !strings.Contains(got, "changed after the branch wrote it") || !strings.Contains(got, "account:1") {
		t.Errorf("reason = %q, want the dirty row named", got)
	}
	_, branches := e.global(xid)
	if len(branches) != 1 || branches[0].GetStatus() != xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE {
		t.Errorf("branches = %v, want one PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE", branches)
	}
	if got, want := d.balance(1), 500; got != want {
		t.Errorf("balance = %d, want %d (the other writer's)", got, want)
	}
	if n, _ := d.undoLogs(); n != 1 {
		t.Errorf("undo logs = %d, want 1 kept for the operator", n)
	}
}

// TestTamperedUndoParks: an undo log that does not belong to its branch
// or no longer fits the schema is not replayed at all.
func TestTamperedUndoParks(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, d *database, log *undo.Log) []byte
		reason string
	}{
		{
			name: "key outside the branch's locks",
			tamper: func(t *testing.T, d *database, log *undo.Log) []byte {
				for i := range log.Records {
					r := &log.Records[i]
					for _, rows := range [][]undo.Row{r.Before, r.After} {
						for _, row := range rows {
							for j := range row {
								if row[j].Name == "id" {
									row[j].Value = undo.Int(2)
								}
							}
						}
					}
				}
				return encode(t, log)
			},
			reason: "outside the branch's lock keys",
		},
		{
			name: "unknown column",
			tamper: func(t *testing.T, d *database, log *undo.Log) []byte {
				for i := range log.Records {
					r := &log.Records[i]
					for _, rows := range [][]undo.Row{r.Before, r.After} {
						for _, row := range rows {
							for j := range row {
								if row[j].Name == "note" {
									row[j].Name = "nope"
								}
							}
						}
					}
				}
				return encode(t, log)
			},
			reason: "nope",
		},
		{
			name: "corrupt bytes",
			tamper: func(t *testing.T, d *database, log *undo.Log) []byte {
				b := encode(t, log)
				b[len(b)/2] ^= 0xff
				return b
			},
			reason: "undo:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.newDB(t, nil)
			d.accounts(2)
			before2 := d.dump("account")[1]
			var xid string
			err := e.tm.Do(context.Background(), tm.Options{Name: "tamper", Timeout: 10 * time.Second}, func(ctx context.Context) error {
				xid = xidOf(t, ctx)
				if err := debit(ctx, d, 1, 30); err != nil {
					return err
				}
				var info []byte
				if err := d.raw.QueryRow("SELECT rollback_info FROM undo_log WHERE xid = ?", xid).Scan(&info); err != nil {
					t.Fatal(err)
				}
				log, err := undo.Decode(info)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := d.raw.Exec("UPDATE undo_log SET rollback_info = ? WHERE xid = ?", tt.tamper(t, d, log), xid); err != nil {
					t.Fatal(err)
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Do = %v", err)
			}
			g := e.settled(xid)
			t.Logf("parked with reason %q", g.GetReason())
			if !g.GetParked() || !strings.Contains(g.GetReason(), tt.reason) {
				t.Errorf("global parked=%v reason=%q, want parked with %q", g.GetParked(), g.GetReason(), tt.reason)
			}
			// Nothing ran: row 1 keeps the branch's change, row 2 is
			// untouched.
			if got, want := d.balance(1), 70; got != want {
				t.Errorf("balance 1 = %d, want %d", got, want)
			}
			if got := d.dump("account")[1]; strings.Join(got, ",") != strings.Join(before2, ",") {
				t.Errorf("row 2 = %v, want %v", got, before2)
			}
		})
	}
}

func encode(t *testing.T, log *undo.Log) []byte {
	t.Helper()
	b, err := undo.Encode(log)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLateCommitAfterRollback (I8): the TC rolls a branch back after it
// registered and before its local commit. The rollback leaves the
// marker; the local commit then fails with ErrBranchRolledBack and
// commits nothing.
func TestLateCommitAfterRollback(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	var hookErr error
	d := e.newDB(t, nil, withAfterRegister(func(xid string, branchID int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := e.tm.Rollback(ctx, xid)
		if err == nil && st != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
			err = errors.New("rollback answered " + st.String())
		}
		hookErr = err
	}))
	d.accounts(1)
	var xid string
	var commitErr error
	err := e.tm.Do(context.Background(), tm.Options{Name: "late", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		commitErr = debit(ctx, d, 1, 30)
		return commitErr
	})
	if hookErr != nil {
		t.Fatalf("rollback in hook: %v", hookErr)
	}
	if !errors.Is(commitErr, ErrBranchRolledBack) {
		t.Fatalf("commit = %v, want %v", commitErr, ErrBranchRolledBack)
	}
	if err == nil {
		t.Fatal("Do = nil, want an error")
	}
	if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
		t.Errorf("status = %v, want ROLLBACKED", g.GetStatus())
	}
	if got, want := d.balance(1), 100; got != want {
		t.Errorf("balance = %d, want %d (nothing committed)", got, want)
	}
	if n, m := d.undoLogs(); n != 0 || m != 1 {
		t.Errorf("undo_log = %d logs, %d markers, want 0 and 1", n, m)
	}
}

// TestDuplicateDelivery (I7): phase-two actions delivered again take no
// further effect.
func TestDuplicateDelivery(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(1)
	h := &handler{c: d.c}
	ctx := context.Background()

	t.Run("rollback before and after the TC's", func(t *testing.T) {
		var xid string
		err := e.tm.Do(ctx, tm.Options{Name: "dup", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			xid = xidOf(t, ctx)
			if err := debit(ctx, d, 1, 30); err != nil {
				return err
			}
			_, branches := e.global(xid)
			a := action(branches[0])
			// An earlier delivery whose answer was lost.
			if err := h.Rollback(ctx, a); err != nil {
				t.Fatalf("Rollback = %v", err)
			}
			if got, want := d.balance(1), 100; got != want {
				t.Errorf("balance after first rollback = %d, want %d", got, want)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("Do = %v", err)
		}
		if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
			t.Fatalf("status = %v (%q)", g.GetStatus(), g.GetReason())
		}
		// And once more after the TC finished.
		a := rm.Action{XID: xid, BranchID: 1, Resource: d.resource, Type: xactpb.BranchType_BRANCH_TYPE_AT, LockKeys: []string{"account:1"}}
		for range 2 {
			if err := h.Rollback(ctx, a); err != nil {
				t.Fatalf("Rollback again = %v", err)
			}
		}
		if got, want := d.balance(1), 100; got != want {
			t.Errorf("balance = %d, want %d", got, want)
		}
		if n, m := d.undoLogs(); n != 0 || m != 1 {
			t.Errorf("undo_log = %d logs, %d markers, want 0 and 1", n, m)
		}
	})

	t.Run("commit again", func(t *testing.T) {
		var xid string
		err := e.tm.Do(ctx, tm.Options{Name: "dup", Timeout: 10 * time.Second}, func(ctx context.Context) error {
			xid = xidOf(t, ctx)
			return debit(ctx, d, 1, 30)
		})
		if err != nil {
			t.Fatalf("Do = %v", err)
		}
		a := rm.Action{XID: xid, BranchID: 1, Resource: d.resource, Type: xactpb.BranchType_BRANCH_TYPE_AT}
		for range 2 {
			if err := h.Commit(ctx, a); err != nil {
				t.Fatalf("Commit again = %v", err)
			}
		}
		if got, want := d.balance(1), 70; got != want {
			t.Errorf("balance = %d, want %d", got, want)
		}
		if n, _ := d.undoLogs(); n != 0 {
			t.Errorf("undo logs = %d, want 0", n)
		}
	})
}

func action(b *xactpb.Branch) rm.Action {
	return rm.Action{
		XID:      b.GetXid(),
		BranchID: b.GetBranchId(),
		Resource: b.GetResourceId(),
		Type:     b.GetBranchType(),
		LockKeys: b.GetLockKeys(),
	}
}

// TestPhaseOneFailureReported: the connection dies between registration
// and the undo-log insert. The branch is reported PHASE_ONE_FAILED, so a
// TM that commits anyway gets a rollback, the branch is dropped, and
// nothing is kept.
func TestPhaseOneFailureReported(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	var killID atomic.Int64
	var d *database
	d = e.newDB(t, nil, withAfterRegister(func(xid string, branchID int64) {
		if id := killID.Load(); id != 0 {
			d.exec("KILL CONNECTION " + strconv.FormatInt(id, 10))
		}
	}))
	d.accounts(1)
	var xid string
	var commitErr error
	err := e.tm.Do(context.Background(), tm.Options{Name: "killed", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		var id int64
		if err := tx.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = 1 WHERE id = 1"); err != nil {
			return err
		}
		killID.Store(id)
		commitErr = tx.Commit()
		killID.Store(0)
		return nil // commit the global anyway
	})
	if commitErr == nil {
		t.Fatal("commit on a killed connection succeeded")
	}
	if !errors.Is(err, tm.ErrRolledBack) {
		t.Errorf("Do = %v, want %v (the branch reported its failure)", err, tm.ErrRolledBack)
	}
	if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
		t.Errorf("status = %v (%q), want ROLLBACKED", g.GetStatus(), g.GetReason())
	}
	if got, want := d.balance(1), 100; got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	// Nothing was committed, so phase two had nothing to do for the
	// branch: no marker either (the killed connection's transaction
	// cannot commit late).
	if n, m := d.undoLogs(); n != 0 || m != 0 {
		t.Errorf("undo_log = %d logs, %d markers, want 0 and 0", n, m)
	}
	// The pool discarded the dead connection.
	if _, err := d.db.Exec("UPDATE account SET note = 'alive' WHERE id = 1"); err != nil {
		t.Errorf("statement after the failure: %v", err)
	}
}

// TestRegisterAfterTimeout: a branch whose global timed out before its
// local commit is refused by the TC; the local transaction rolls back.
func TestRegisterAfterTimeout(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(1)
	var commitErr error
	e.tm.Do(context.Background(), tm.Options{Name: "late", Timeout: 200 * time.Millisecond}, func(ctx context.Context) error {
		// Without the deadline Do puts on ctx, which would make
		// database/sql roll back on its own.
		ctx = context.WithoutCancel(ctx)
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = 1 WHERE id = 1"); err != nil {
			return err
		}
		time.Sleep(400 * time.Millisecond)
		commitErr = tx.Commit()
		return commitErr
	})
	if !errors.Is(commitErr, protocol.ErrTimedOut) && !errors.Is(commitErr, protocol.ErrNotBegin) {
		t.Errorf("commit = %v, want %v or %v", commitErr, protocol.ErrTimedOut, protocol.ErrNotBegin)
	}
	if got, want := d.balance(1), 100; got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	if n, m := d.undoLogs(); n != 0 || m != 0 {
		t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
	}
}

func TestCleanupDeletesOldMarkersOnly(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil, WithCleanup(0, time.Hour))
	d.exec(
		"INSERT INTO undo_log (xid, branch_id, context, rollback_info, log_status, log_created) VALUES " +
			"('old-marker', 1, 'x', '', 1, NOW(6) - INTERVAL 2 HOUR), " +
			"('new-marker', 1, 'x', '', 1, NOW(6)), " +
			"('old-log', 1, 'x', 'log', 0, NOW(6) - INTERVAL 2 DAY)",
	)
	n, err := d.c.Cleanup(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1, nil", n, err)
	}
	var left []string
	rows, err := d.raw.Query("SELECT xid FROM undo_log ORDER BY xid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var x string
		rows.Scan(&x)
		left = append(left, x)
	}
	if got, want := strings.Join(left, " "), "new-marker old-log"; got != want {
		t.Errorf("left %q, want %q", got, want)
	}
}

// TestPhaseTwoAfterRestart: the process that ran phase one is gone when
// the rollback comes; a new process serving the same resource id replays
// the undo log it finds in the database.
func TestPhaseTwoAfterRestart(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	first := rm.New(e.conn, rm.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// d's Connector serves the resource on first.
	saved := e.rm
	e.rm = first
	d := e.newDB(t, nil)
	e.rm = saved
	d.accounts(1)

	var xid string
	err := e.tm.Do(context.Background(), tm.Options{Name: "restart", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		if err := debit(ctx, d, 1, 30); err != nil {
			return err
		}
		// The process dies: its RM and data source go away.
		first.Close()
		d.db.Close()
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Do = %v", err)
	}
	if g, _ := e.global(xid); g.GetStatus() == xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
		t.Fatal("rolled back with no RM serving the resource")
	}
	// The new process: e.rm, already attached, and a new data source on
	// the same database and resource id.
	c, err := NewConnector(mustConnector(t, d), WithRM(e.rm), WithResourceID(d.resource))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED {
		t.Fatalf("status = %v (%q), want ROLLBACKED", g.GetStatus(), g.GetReason())
	}
	if got, want := d.balance(1), 100; got != want {
		t.Errorf("balance = %d, want %d", got, want)
	}
	if n, m := d.undoLogs(); n != 0 || m != 0 {
		t.Errorf("undo_log = %d logs, %d markers, want none", n, m)
	}
}

func mustConnector(t *testing.T, d *database) driver.Connector {
	t.Helper()
	c, err := gomysql.NewConnector(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMissingUndoLogTableDropsBranch is issue 10's broken participant: the
// second database has no undo_log table. Its branch registers, its undo
// insert fails, it reports PHASE_ONE_FAILED and is dropped (its row is
// free at once); the global rolls back, the first database's debit is
// compensated, and nothing is parked.
func TestMissingUndoLogTableDropsBranch(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	a := e.newDB(t, nil)
	a.accounts(1)
	b := e.newDB(t, nil)
	b.accounts(1)
	b.exec("DROP TABLE undo_log")
	var xid string
	var creditErr error
	err := e.tm.Do(context.Background(), tm.Options{Name: "transfer", Timeout: 20 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		if err := debit(ctx, a, 1, 30); err != nil {
			return err
		}
		creditErr = debit(ctx, b, 1, -30)
		return creditErr
	})
	if creditErr == nil || !strings.Contains(creditErr.Error(), "undo_log") {
		t.Fatalf("credit on the database without undo_log = %v, want the undo_log error", creditErr)
	}
	if !errors.Is(err, creditErr) {
		t.Fatalf("Do = %v, want the credit's error (rolled back)", err)
	}
	if g := e.settled(xid); g.GetStatus() != xactpb.GlobalStatus_GLOBAL_STATUS_ROLLBACKED || g.GetParked() {
		t.Fatalf("global = %v parked=%v (%q), want ROLLBACKED", g.GetStatus(), g.GetParked(), g.GetReason())
	}
	if got := a.balance(1); got != 100 {
		t.Errorf("first database's balance = %d, want 100 (debit compensated)", got)
	}
	if got := b.balance(1); got != 100 {
		t.Errorf("second database's balance = %d, want 100 (nothing committed)", got)
	}
	// Both rows are free for the next transaction.
	err = e.tm.Do(context.Background(), tm.Options{Name: "next", Timeout: 20 * time.Second}, func(ctx context.Context) error {
		return debit(ctx, a, 1, 10)
	})
	if err != nil {
		t.Fatalf("next transaction on the first database: %v", err)
	}
}
