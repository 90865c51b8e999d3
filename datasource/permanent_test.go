package datasource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/xact-io/xact/protocol/xactpb"
	"github.com/xact-io/xact/tm"
)

// TestRefusedCompensationParks: the server refuses a compensating
// statement for what it is (here the column shrank after phase one, so
// the before image no longer fits): retrying cannot help, so the branch
// is parked at the first attempt with the server's reason, and nothing
// is changed.
func TestRefusedCompensationParks(t *testing.T) {
	leakCheck(t)
	e := newEnv(t)
	d := e.newDB(t, nil)
	d.accounts(1)
	d.exec("UPDATE account SET note = 'abcdefgh' WHERE id = 1")
	var xid string
	err := e.tm.Do(context.Background(), tm.Options{Name: "shrunk", Timeout: 10 * time.Second}, func(ctx context.Context) error {
		xid = xidOf(t, ctx)
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, "UPDATE account SET note = ? WHERE id = ?", "ab", 1); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		d.exec("ALTER TABLE account MODIFY note VARCHAR(3) NULL")
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Do = %v, want %v", err, errRollback)
	}
	g := e.settled(xid)
	if !g.GetParked() {
		t.Fatalf("global %v not parked (reason %q)", g.GetStatus(), g.GetReason())
	}
	if got := g.GetReason(); !strings.Contains(got, "1406") {
		t.Errorf("reason = %q, want the server's error 1406 (data too long)", got)
	}
	_, branches := e.global(xid)
	if len(branches) != 1 || branches[0].GetStatus() != xactpb.BranchStatus_BRANCH_STATUS_PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE {
		t.Fatalf("branches = %v, want one PHASE_TWO_ROLLBACK_FAILED_UNRETRYABLE", branches)
	}
	if got := branches[0].GetAttempts(); got != 1 {
		t.Errorf("attempts = %d, want 1: a refused statement is not retried", got)
	}
	var note string
	if err := d.raw.QueryRow("SELECT note FROM account WHERE id = 1").Scan(&note); err != nil || note != "ab" {
		t.Errorf("note = %q, %v; want the committed %q untouched", note, err, "ab")
	}
	if n, _ := d.undoLogs(); n != 1 {
		t.Errorf("undo logs = %d, want 1 kept for the operator", n)
	}
}

func TestPermanentServerErrors(t *testing.T) {
	for _, tt := range []struct {
		number uint16
		want   bool
	}{
		{1064, true}, {1054, true}, {1146, true}, {1406, true}, {1264, true}, {1366, true}, {1292, true}, {1048, true},
		{1205, false}, // lock wait timeout
		{1213, false}, // deadlock
		{2013, false}, // lost connection
		{1040, false}, // too many connections
	} {
		err := fmt.Errorf("undo: %w", &gomysql.MySQLError{Number: tt.number, Message: "x"})
		if got := permanent(err); got != tt.want {
			t.Errorf("permanent(error %d) = %v, want %v", tt.number, got, tt.want)
		}
	}
}
