package datasource

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// TestDirtyRollbackIsAtomic: a branch of two statements, the first on a
// row another writer then changes, the second on a row nobody else
// touches. The rollback replays in reverse, so it restores the clean row
// first and then meets the dirty one; the whole compensation is one local
// transaction, rolled back on the failure: the table is exactly as the
// other writer left it (the clean row keeps the branch's change), the
// branch is parked with its undo log.
func TestDirtyRollbackIsAtomic(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(2)
	var xid string
	var meddled [][]string
	var sum string
	err := e.tm.Do(context.Background(), tm.Options{Name: "dirty-atomic", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		// Record 0: the row that will be dirty. Record 1: the clean row,
		// replayed first.
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance - ?, note = ? WHERE id = ?", 30, "debit", 1); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE account SET balance = balance + ?, note = ? WHERE id = ?", 30, "credit", 2); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		d.exec("UPDATE account SET balance = 500 WHERE id = 1")
		meddled = d.dump("account")
		sum = d.checksum("account")
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Do = %v, want %v", err, errRollback)
	}
	g := e.settled(xid)
	if !g.GetParked() {
		t.Fatalf("global %v not parked (reason %q)", g.GetStatus(), g.GetReason())
	}
	if got := g.GetReason(); !strings.Contains(got, "account:1") {
		t.Errorf("reason = %q, want the dirty row account:1", got)
	}
	_, branches := e.global(xid)
	if len(branches) != 1 || branches[0].GetStatus() != xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE {
		t.Errorf("branches = %v, want one PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE", branches)
	}
	if got := d.dump("account"); !reflect.DeepEqual(got, meddled) {
		t.Errorf("account after the failed rollback = %v, want %v (the clean row's replay must not stay)", got, meddled)
	}
	if got := d.checksum("account"); got != sum {
		t.Errorf("CHECKSUM TABLE after the failed rollback = %s, want %s", got, sum)
	}
	if n, _ := d.undoLogs(); n != 1 {
		t.Errorf("undo logs = %d, want 1 kept for the operator", n)
	}
}

// checksum returns CHECKSUM TABLE of table.
func (d *database) checksum(table string) string {
	d.t.Helper()
	var name, sum string
	if err := d.raw.QueryRow("CHECKSUM TABLE `"+strings.ReplaceAll(table, "`", "``")+"`").Scan(&name, &sum); err != nil {
		d.t.Fatal(err)
	}
	return sum
}
